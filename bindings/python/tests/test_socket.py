"""gr.socket: an echo server and many clients on 127.0.0.1, timeouts, close."""

import ctypes
import gc
import os
import socket as stdsocket
import threading
import time

import pytest

import goroutine as gr
from goroutine import _lib
from goroutine import socket as gsocket


def _listener():
    srv = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM)
    srv.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    return srv


def test_is_a_socket_subclass():
    s = gsocket.socket()
    try:
        assert isinstance(s, stdsocket.socket)
        assert s.gettimeout() is None and s.getblocking()
        s.settimeout(1.5)
        assert s.gettimeout() == 1.5
        s.setblocking(False)
        assert s.gettimeout() == 0.0
    finally:
        s.close()
    assert gsocket.AF_INET == stdsocket.AF_INET and gsocket.gethostname is stdsocket.gethostname


def test_echo_server_and_100_clients():
    def handle(conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    def server(srv, n):
        hs = []
        for _ in range(n):
            conn, _addr = srv.accept()
            hs.append(gr.go(handle, conn))
        for h in hs:
            h.join()

    def client(port, i):
        with gsocket.create_connection(("127.0.0.1", port)) as c:
            c.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
            for k in range(20):
                msg = b"%d:%d:" % (i, k) + b"x" * (k * 50)
                c.sendall(msg)
                got = b""
                while len(got) < len(msg):
                    chunk = c.recv(65536)
                    assert chunk
                    got += chunk
                assert got == msg
        return i

    def main():
        srv = _listener()
        port = srv.getsockname()[1]
        s = gr.go(server, srv, 100)
        cs = [gr.go(client, port, i) for i in range(100)]
        res = [c.join() for c in cs]
        s.join()
        srv.close()
        return res

    assert gr.run(main) == list(range(100))


def test_recv_into_recvfrom_send_and_makefile():
    def main():
        a, b = gsocket.socketpair()
        with a, b:
            gr.go(lambda: (gr.sleep(0.01), b.send(b"hello")))
            buf = bytearray(10)
            n = a.recv_into(buf)
            assert buf[:n] == b"hello"
            b.sendall(memoryview(b"line one\nline two\n"))
            f = a.makefile("rb")
            assert f.readline() == b"line one\n"
            assert f.readline() == b"line two\n"
            f.close()
            u1 = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM)
            u2 = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM)
            with u1, u2:
                u1.bind(("127.0.0.1", 0))
                gr.go(lambda: (gr.sleep(0.01), u2.sendto(b"dgram", u1.getsockname())))
                data, addr = u1.recvfrom(100)
                assert data == b"dgram"

    gr.run(main)


def test_timeouts():
    def main():
        a, b = gsocket.socketpair()
        with a, b:
            a.settimeout(0.05)
            t = time.monotonic()
            with pytest.raises(TimeoutError):
                a.recv(10)
            assert time.monotonic() - t >= 0.04
            a.setblocking(False)
            with pytest.raises(BlockingIOError):
                a.recv(10)
        srv = _listener()
        with srv:
            srv.settimeout(0.05)
            with pytest.raises(TimeoutError):
                srv.accept()
        # connection refused is an error, not a hang
        port = _listener()
        p = port.getsockname()[1]
        port.close()
        with pytest.raises(ConnectionRefusedError):
            gsocket.create_connection(("127.0.0.1", p), timeout=1)

    gr.run(main)


def test_close_wakes_a_waiting_reader():
    def main():
        a, b = gsocket.socketpair()
        reader = gr.go(a.recv, 10)
        gr.sleep(0.01)
        a.close()
        with pytest.raises(OSError):
            reader.join(timeout=1)
        b.close()

    gr.run(main)


def test_sockets_from_a_plain_thread_block_only_it():
    srv = _listener()
    port = srv.getsockname()[1]

    def plain_client():
        with gsocket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"ping")
            assert c.recv(4) == b"pong"

    t = threading.Thread(target=plain_client)

    def main():
        t.start()
        conn, _ = srv.accept()
        with conn:
            assert conn.recv(4) == b"ping"
            conn.sendall(b"pong")

    gr.run(main)
    t.join()
    srv.close()


def test_socket_operations_errors_and_flags():
    """The operations the runtime implements (recv, recv_into, send, sendall) raise
    what the standard socket raises, honour flags and timeouts, and move data larger
    than any buffer."""

    def main():
        a, b = gsocket.socketpair()
        with a, b:
            b.sendall(b"peek")
            assert a.recv(4, stdsocket.MSG_PEEK) == b"peek"
            assert a.recv(100) == b"peek"
            with pytest.raises(ValueError):
                a.recv(-1)
            with pytest.raises(ValueError):
                a.recv_into(bytearray(2), 5)
            with pytest.raises(TypeError):
                a.sendall("text")
            # larger than the per-thread read buffer, and than the socket buffer:
            # sendall parks while the reader drains it
            big = bytes(range(256)) * 8192  # 2 MiB
            got = bytearray()

            def reader():
                while len(got) < len(big):
                    got.extend(b.recv(1 << 20))

            r = gr.go(reader)
            a.sendall(memoryview(big))
            r.join(timeout=10)
            assert got == big
            # the same with a timeout on the sending socket (each wait has one)
            a.settimeout(5)
            got.clear()
            r = gr.go(reader)
            a.sendall(big)
            r.join(timeout=10)
            assert got == big
            # a full buffer on a non-blocking socket: BlockingIOError, as sendall
            # and send say there
            a.setblocking(False)
            with pytest.raises(BlockingIOError):
                while True:
                    a.send(b"x" * 65536)
            with pytest.raises(BlockingIOError):
                a.sendall(b"y" * 65536)
        with pytest.raises(OSError) as ei:
            a.recv(1)  # closed
        assert ei.value.errno == 9  # EBADF
        c, d = gsocket.socketpair()
        d.close()
        with c:
            with pytest.raises(BrokenPipeError):
                for _ in range(10):
                    c.sendall(b"z" * 1024)

    gr.run(main)


# -- adoption: a goroutine socket's fd stays registered with epoll between waits
# (no epoll_ctl per wait), so every way the fd can leave the socket must go through
# the runtime: close, the finalizer of a socket dropped unclosed, detach.


def _register(sock, peer):
    """Makes `sock` wait once in the netpoller (so its fd is in the epoll set), and
    leaves it with nothing queued."""
    reader = gr.go(sock.recv, 10)
    gr.sleep(0.01)
    peer.sendall(b"x")
    assert reader.join(timeout=2) == b"x"


def _wakes_on_pipe_at(fd):
    """A pipe put at number `fd`: a goroutine parked on its read end in the netpoller
    must wake when it is written. Were the netpoller to take the new file for the old
    one (still registered), the wait would run to its 2 s timeout."""
    r, w = os.pipe()
    try:
        if r != fd:
            os.dup2(r, fd)
        waiter = gr.go(_lib.block_io, fd, _lib.READ, 2_000_000_000)
        gr.sleep(0.02)
        os.write(w, b"!")
        assert waiter.join(timeout=3) == _lib.READ
    finally:
        for f in {r, w, fd}:
            os.close(f)


def test_a_socket_dropped_unclosed_is_closed_through_the_runtime():
    def main():
        a, b = gsocket.socketpair()
        with b:
            _register(a, b)
            fd = a.fileno()
            with pytest.warns(ResourceWarning, match="unclosed"):
                del a
                gc.collect()
            with pytest.raises(OSError):
                os.fstat(fd)  # closed by the finalizer
            _wakes_on_pipe_at(fd)

    gr.run(main)


def test_a_detached_socket_may_be_closed_with_close2():
    def main():
        a, b = gsocket.socketpair()
        with a, b:
            _register(a, b)
            fd = a.detach()
            os.close(fd)
            _wakes_on_pipe_at(fd)

    gr.run(main)


def test_a_short_read_on_a_tcp_socket_notes_the_drain_and_data_still_flows():
    """A short read of an adopted TCP socket is noted (gr_io_read_drained says so),
    and the next recv takes the note and waits for the socket's edge first (no recv
    that says EAGAIN; seen here as the note gone after a recv that timed out with
    nothing sent); ping-pong of sizes around the buffer's loses nothing and never
    hangs."""
    read_drained = _lib.pydll.gr_io_read_drained
    read_drained.argtypes = [ctypes.c_int]

    def main():
        srv = _listener()
        with srv, gsocket.create_connection(srv.getsockname()) as c:
            conn, _ = srv.accept()
            with conn:
                c.sendall(b"hello")
                assert conn.recv(100) == b"hello"
                assert read_drained(conn.fileno()) == 1
                assert read_drained(conn.fileno()) == 0  # the note is taken once
                c.sendall(b"full")
                assert conn.recv(4) == b"full"  # a full read notes nothing
                assert read_drained(conn.fileno()) == 0
                c.sendall(b"again")
                assert conn.recv(100) == b"again"  # short: noted
                conn.settimeout(0.05)
                with pytest.raises(TimeoutError):
                    conn.recv(100)  # took the note, then waited for an edge
                assert read_drained(conn.fileno()) == 0
                conn.settimeout(5)
                for s in (c, conn):  # no Nagle delay when the echo comes in pieces
                    s.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)

                def echo():
                    while True:
                        data = conn.recv(256)
                        if not data:
                            return
                        conn.sendall(data)

                e = gr.go(echo)
                for i in range(1, 600):
                    msg = bytes([i % 251]) * i
                    c.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        got += c.recv(len(msg) - len(got))
                    assert got == msg
                c.shutdown(gsocket.SHUT_WR)
                e.join(timeout=5)
        # a plain (not adopted) TCP socket notes nothing
        with stdsocket.create_server(("127.0.0.1", 0)) as s2:
            with stdsocket.create_connection(s2.getsockname()) as c2:
                d2, _ = s2.accept()
                with d2:
                    c2.sendall(b"hi")
                    assert d2.recv(100) == b"hi"
                    assert read_drained(d2.fileno()) == 0

    gr.run(main)
