"""goroutine.monkey itself: what is patched, idempotence, originals outside goroutines,
the warning about copies taken before patching, the patched primitives' semantics
inside goroutines, and ``python -m goroutine``. Each test runs in a fresh interpreter
(patching is for the whole process)."""

import os
import subprocess
import sys
import textwrap

from conftest import run_python
from test_monkey import make_cert

PRELUDE = """
import goroutine.monkey as monkey
monkey.patch_all()
import goroutine as gr
"""


def check(code, timeout=60, **kw):
    r = run_python(PRELUDE + textwrap.dedent(code), timeout=timeout, **kw)
    assert r.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr)
    return r


def test_areas_idempotence_and_originals():
    check(
        """
        import os, select, selectors, socket, ssl, subprocess, threading, time, _thread, queue
        import goroutine.socket, goroutine.ssl
        for area in monkey.AREAS:
            assert monkey.is_patched(area), area
        assert socket.socket is goroutine.socket.socket
        assert ssl.SSLContext.sslsocket_class is goroutine.ssl.SSLSocket
        assert monkey.is_patched("time.sleep") and monkey.is_patched("selectors.EpollSelector.select")
        assert not monkey.is_patched("time.monotonic")
        orig_sleep = monkey.get_original("time", "sleep")
        assert orig_sleep is not time.sleep and orig_sleep.__module__ == "time"
        assert monkey.get_original("time", "monotonic") is time.monotonic
        sleep_now = time.sleep
        monkey.patch_all(); monkey.patch_time(); monkey.patch_threading()
        assert time.sleep is sleep_now and monkey.get_original("time", "sleep") is orig_sleep
        assert threading.Lock is _thread.allocate_lock and queue.SimpleQueue is queue._PySimpleQueue
        """
    )


def test_outside_goroutines_the_originals_behave_as_before():
    check(
        """
        import os, select, socket, threading, time
        # before gr.run: blocking calls block, and work
        t = time.monotonic(); time.sleep(0.05); assert time.monotonic() - t >= 0.05
        a, b = socket.socketpair()
        b.sendall(b"x"); assert a.recv(1) == b"x"
        assert select.select([a], [], [], 0.05) == ([], [], [])
        a.settimeout(0.05)
        try:
            a.recv(1)
            raise AssertionError("no timeout")
        except socket.timeout:
            pass
        r, w = os.pipe(); os.write(w, b"abc"); assert os.read(r, 10) == b"abc"
        os.set_blocking(r, False)
        try:
            os.read(r, 1)
            raise AssertionError("a non-blocking read waited")
        except BlockingIOError:
            pass
        # a lock shared by plain threads (blocking acquires, timeouts)
        lock = threading.Lock(); lock.acquire()
        got = []
        th = threading.Thread(target=lambda: got.append(lock.acquire(timeout=5)))
        th.start(); time.sleep(0.05); lock.release(); th.join(5)
        assert got == [True] and not th.is_alive()
        assert lock.acquire(timeout=0.01) is False
        assert threading.current_thread() is threading.main_thread()
        assert threading.get_ident() == threading.main_thread().ident
        """
    )


def test_a_lock_shared_by_a_goroutine_and_a_plain_thread():
    check(
        """
        import threading, time
        lock = threading.Lock()
        log = []
        def plain():
            with lock:
                log.append("thread in"); time.sleep(0.1); log.append("thread out")
        def main():
            th = threading.Thread(target=plain)   # outside goroutines: an OS thread
            return th
        th = gr.run(main)
        th.start(); time.sleep(0.02)
        def waiter():
            ticks = []
            def tick():
                for _ in range(5): gr.sleep(0.01); ticks.append(1)
            t = gr.go(tick)
            with lock:   # held by the OS thread: this goroutine parks, tick runs
                log.append("goroutine in")
            t.join()
            return len(ticks)
        assert gr.run(waiter) == 5
        th.join()
        assert log == ["thread in", "thread out", "goroutine in"], log
        """
    )


def test_locks_of_the_runtime_under_contention():
    """The patched Lock and RLock (runtime builtins): goroutines that contend park and
    are handed the lock in turn, timeouts expire while others run, a lock taken by
    one goroutine may be released by another, a plain thread waits on a goroutine's
    lock (and a signal interrupts that wait, as with the real lock), repr and
    LockType as before."""
    check(
        """
        import _thread, signal, threading, time
        assert isinstance(threading.Lock(), _thread.LockType)
        assert "unlocked" in repr(threading.Lock()) and "owner=None" in repr(threading.RLock())
        def main():
            lock = threading.Lock(); count = [0]; order = []
            def worker(i):
                for _ in range(3):
                    with lock:
                        v = count[0]; gr.sleep(0.001); count[0] = v + 1
                order.append(i)
            for g in [gr.go(worker, i) for i in range(20)]: g.join()
            assert count[0] == 60 and sorted(order) == list(range(20))
            # held by one goroutine, released by another; a timed wait meanwhile
            lock.acquire()
            ticks = []
            ticker = gr.go(lambda: [ticks.append(gr.sleep(0.005)) for _ in range(5)])
            t = time.monotonic()
            assert lock.acquire(timeout=0.05) is False and time.monotonic() - t >= 0.05
            ticker.join(); assert len(ticks) == 5
            waiter = gr.go(lock.acquire, True, 5)
            gr.go(lock.release).join()
            assert waiter.join() is True and lock.locked()
            lock.release()
            # RLock through a Condition (_release_save / _acquire_restore)
            rl = threading.RLock(); cond = threading.Condition(rl); box = []
            def consumer():
                with cond:
                    with cond:  # twice: the wait releases both levels
                        cond.wait_for(lambda: box, timeout=5)
                        return box[0], rl._recursion_count()
            c = gr.go(consumer); gr.sleep(0.01)
            with cond:
                box.append("v"); cond.notify()
            assert c.join() == ("v", 2)
            assert rl._recursion_count() == 0 and not rl._is_owned()
            # a plain thread waiting on a goroutine's lock
            lock.acquire()
            got = []
            th = threading.Thread(target=lambda: got.append(lock.acquire(timeout=5)))
            return th, lock, got
        th, lock, got = gr.run(main)
        th.start(); time.sleep(0.05)
        assert got == []
        lock.release(); th.join(5)
        assert got == [True]
        lock.release()
        # a signal interrupts a plain thread's wait, and its handler's exception
        # comes out of acquire
        class Interrupted(Exception):
            pass
        def on_alarm(signum, frame):
            raise Interrupted()
        signal.signal(signal.SIGALRM, on_alarm)
        held = threading.Lock(); held.acquire()
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t = time.monotonic()
        try:
            held.acquire(timeout=10); raise AssertionError("not interrupted")
        except Interrupted:
            pass
        assert time.monotonic() - t < 5
        """
    )


def test_thread_pools_when_concurrent_futures_came_first():
    """concurrent.futures' thread pools imported before patching: executors started
    by several goroutines at once still work."""
    r = run_python(
        """
        import concurrent.futures.thread, time
        import goroutine.monkey; goroutine.monkey.patch_all()
        import goroutine as gr
        def use_pool(i):
            with concurrent.futures.ThreadPoolExecutor(4) as ex:
                return sum(ex.map(lambda x: (time.sleep(0.05), x)[1], range(8)))
        def main():
            t = time.monotonic()
            out = [g.join() for g in [gr.go(use_pool, i) for i in range(4)]]
            return out, time.monotonic() - t
        out, took = gr.run(main)
        assert out == [28] * 4 and took < 1.0, (out, took)
        print("ok")
        """,
        timeout=30,
    )
    assert r.returncode == 0 and "ok" in r.stdout, (r.stdout, r.stderr)


def test_waiting_on_an_os_thread_is_not_a_deadlock():
    """A goroutine alone, waiting on a queue that an OS thread fills 1.5 s later (the
    runtime cannot see that thread): gr.run must not call that a deadlock."""
    check(
        """
        import queue, threading, time
        q = queue.Queue()
        threading.Thread(target=lambda: (time.sleep(1.5), q.put("late"))).start()
        assert gr.run(q.get) == "late"
        """
    )


def test_locks_conditions_and_friends_in_goroutines():
    check(
        """
        import threading, time, queue
        def main():
            lock = threading.Lock()
            assert lock.acquire() and lock.locked()
            assert lock.acquire(False) is False
            t = time.monotonic(); assert lock.acquire(timeout=0.05) is False
            assert time.monotonic() - t >= 0.05
            lock.release()
            try:
                lock.release(); raise AssertionError
            except RuntimeError:
                pass
            try:
                lock.acquire(False, 1); raise AssertionError
            except ValueError:
                pass
            # RLock: per goroutine
            rl = threading.RLock()
            with rl:
                with rl:
                    other = gr.go(rl.acquire, True, 0.05)
                    assert other.join() is False   # another goroutine is another owner
            try:
                rl.release(); raise AssertionError
            except RuntimeError:
                pass
            # Condition, Semaphore, Barrier, Event across goroutines
            cond = threading.Condition(); items = []
            def consumer():
                with cond:
                    cond.wait_for(lambda: items, timeout=5)
                    return items.pop()
            c = gr.go(consumer); gr.sleep(0.02)
            with cond:
                items.append("x"); cond.notify()
            assert c.join() == "x"
            sem = threading.BoundedSemaphore(2); inside = []; peak = []
            def worker():
                with sem:
                    inside.append(1); peak.append(len(inside)); gr.sleep(0.02); inside.pop()
            for g in [gr.go(worker) for _ in range(6)]: g.join()
            assert max(peak) == 2
            barrier = threading.Barrier(3)
            assert sorted(g.join() for g in [gr.go(barrier.wait) for _ in range(3)]) == [0, 1, 2]
            q = queue.SimpleQueue(); gr.go(lambda: (gr.sleep(0.02), q.put(7))); assert q.get(timeout=5) == 7
            # thread ids and current_thread per goroutine; threading.local per goroutine
            ids = {g.join() for g in [gr.go(threading.get_ident) for _ in range(3)]}
            assert len(ids) == 3 and threading.get_ident() not in ids
            assert threading.current_thread() is threading.main_thread()
            t1 = gr.go(threading.current_thread).join()
            assert t1 is not threading.main_thread() and not t1.daemon
            loc = threading.local(); loc.v = "main"
            assert gr.go(lambda: getattr(loc, "v", None)).join() is None
            # a Timer
            fired = []
            tm = threading.Timer(0.02, lambda: fired.append(1)); tm.start(); tm.join()
            assert fired == [1]
        gr.run(main)
        """
    )


def test_daemon_threads_are_left_behind_and_others_waited_for():
    r = check(
        """
        import threading, time
        def forever():
            while True:
                time.sleep(0.01)
        done = []
        def main():
            threading.Thread(target=forever, daemon=True).start()
            threading.Thread(target=lambda: (time.sleep(0.1), done.append(1))).start()
        t = time.monotonic()
        gr.run(main)
        took = time.monotonic() - t
        assert done == [1], done
        assert took < 1.0, took
        print("ok")
        """
    )
    assert "ok" in r.stdout


def test_fds_processes_and_selectors_in_goroutines():
    check(
        """
        import os, select, selectors, socket, subprocess, time
        def main():
            # a large write to a pipe whose reader is another goroutine
            r, w = os.pipe()
            data = os.urandom(300000)
            writer = gr.go(os.write, w, data)
            got = b""
            while len(got) < len(data):
                got += os.read(r, 65536)
            assert got == data and writer.join() == len(data)
            # poll / epoll / the default selector on several fds, with a timeout
            a, b = socket.socketpair(); c, d = socket.socketpair()
            p = select.poll(); p.register(a, select.POLLIN | select.POLLPRI); p.register(c, select.POLLIN)
            t = time.monotonic(); assert p.poll(50) == []; assert time.monotonic() - t >= 0.045
            gr.go(lambda: (gr.sleep(0.02), d.send(b"!")))
            assert [fd for fd, ev in p.poll(5000)] == [c.fileno()]
            c.recv(1)
            ep = select.epoll(); ep.register(a.fileno(), select.EPOLLIN)
            gr.go(lambda: (gr.sleep(0.02), b.send(b"?")))
            assert [fd for fd, ev in ep.poll(5)] == [a.fileno()]
            ep.close(); a.recv(1)
            with selectors.DefaultSelector() as sel:
                sel.register(a, selectors.EVENT_READ); sel.register(c, selectors.EVENT_READ)
                assert sel.select(0.03) == []
                gr.go(lambda: (gr.sleep(0.02), b.send(b".")))
                assert [k.fileobj for k, ev in sel.select(5)] == [a]
            # child processes: waitpid on a pidfd, not a child, communicate timeout
            pid = os.posix_spawnp("sleep", ["sleep", "0.1"], os.environ)
            t = time.monotonic(); assert os.waitpid(pid, 0) == (pid, 0); assert time.monotonic() - t >= 0.09
            try:
                os.waitpid(1, 0); raise AssertionError
            except ChildProcessError:
                pass
            p = subprocess.Popen(["sleep", "5"], stdout=subprocess.PIPE)
            try:
                p.communicate(timeout=0.1); raise AssertionError
            except subprocess.TimeoutExpired:
                pass
            p.kill(); p.communicate()
            assert p.returncode == -9
            # name lookups on a helper thread
            assert socket.gethostbyname("localhost").startswith("127.")
            assert socket.getaddrinfo("localhost", 80, socket.AF_INET)[0][4][0].startswith("127.")
        gr.run(main)
        """
    )


def test_tls_between_goroutines_handshake_timeout_unwrap(tmp_path):
    cert, key = make_cert(str(tmp_path))
    check(
        """
        import ctypes, socket, ssl, time
        import goroutine.ssl
        from goroutine import _lib
        CERT, KEY = %r, %r
        note, drained = _lib.pydll.gr_io_note_short_read, _lib.pydll.gr_io_read_drained
        note.argtypes = drained.argtypes = [ctypes.c_int]
        def adopted(s):
            # Only an adopted TCP socket takes the note (gr_io_note_short_read); the
            # second call forgets it again, so that no later read waits for an edge.
            return note(s.fileno()) == 1 and drained(s.fileno()) == 1
        def main():
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(CERT, KEY)
            cctx = ssl.create_default_context(cafile=CERT)
            ls = socket.create_server(("127.0.0.1", 0))
            def server():
                c, _ = ls.accept()
                s = sctx.wrap_socket(c, server_side=True)     # the handshake parks
                assert adopted(s)     # kept in the epoll set: no epoll_ctl per wait
                f = s.makefile("rb")
                line = f.readline()
                s.sendall(line.upper() * 1000)                # larger than one TLS record
                f.close()
                s.unwrap().close()                            # close_notify both ways
            srv = gr.go(server)
            c = cctx.wrap_socket(socket.create_connection(ls.getsockname()), server_hostname="127.0.0.1")
            assert isinstance(c, goroutine.ssl.SSLSocket) and isinstance(c, ssl.SSLSocket)
            assert adopted(c)
            c.settimeout(0.05)
            t = time.monotonic()
            try:
                c.recv(10); raise AssertionError("no timeout")
            except socket.timeout:
                assert time.monotonic() - t >= 0.045
            c.settimeout(None)
            c.sendall(b"hello\\n")
            want = b"HELLO\\n" * 1000
            got = b""
            while len(got) < len(want):
                got += c.recv(65536)
            assert got == want
            c.unwrap().close()
            srv.join()
            ls.close()
        gr.run(main)
        """ % (cert, key)
    )


def test_copies_taken_before_patching_are_named():
    r = run_python(
        """
        import sys, types, warnings
        mod = types.ModuleType("early"); mod.__file__ = "/early.py"
        exec("from time import sleep\\nfrom socket import socket, create_connection", mod.__dict__)
        sys.modules["early"] = mod
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import goroutine.monkey as monkey
            monkey.patch_all()
        msgs = [str(x.message) for x in w if issubclass(x.category, monkey.MonkeyPatchWarning)]
        assert len(msgs) == 1, msgs
        for name in ("early.sleep", "early.socket", "early.create_connection"):
            assert name in msgs[0], msgs
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            monkey.patch_all()
        assert not w, [str(x.message) for x in w]   # said once
        print("ok")
        """
    )
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_python_m_goroutine(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, threading, time
            from concurrent.futures import ThreadPoolExecutor
            import goroutine as gr
            assert gr.self_id() != 0, "not in a goroutine"
            t = time.monotonic()
            ts = [threading.Thread(target=time.sleep, args=(0.2,)) for _ in range(10)]
            for th in ts: th.start()
            for th in ts: th.join()
            took = time.monotonic() - t
            ex = ThreadPoolExecutor(4)      # never shut down: the exit does it
            print(list(ex.map(lambda x: x * 2, range(4))))
            threading.Thread(target=lambda: [time.sleep(0.01) for _ in iter(int, 1)], daemon=True).start()
            print("argv", sys.argv[1:], "took", took < 0.6, __name__)
            sys.exit(3)
            """
        )
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__import__("goroutine").__file__)))
    r = subprocess.run([sys.executable, "-m", "goroutine", str(script), "a", "b"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "[0, 2, 4, 6]" in r.stdout and "argv ['a', 'b'] took True __main__" in r.stdout, (r.stdout, r.stderr)
    r = subprocess.run([sys.executable, "-m", "goroutine"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "usage" in r.stderr
