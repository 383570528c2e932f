"""Structured cancellation (issue 17): gr.cancel_scope(), gr.timeout(seconds),
gr.Group(), and that a cancel reaches a goroutine parked in each parking call, the
builtins' and the monkey-patched standard library's (in a child process, since
patching is for the whole process).

Bounds: a cancelled goroutine must wake "at once"; the bounds here (WAKE, 0.5 s
after the cancel) only catch a wait that was not woken by the cancel at all (each
such wait is 5-10 s long), on a loaded 2-vCPU machine."""

import errno
import os
import threading
import time

import pytest

import goroutine as gr
from conftest import run_python

#: How long after a cancel a parked goroutine may take to raise (generous).
WAKE = 0.5
#: What the cancelled waits would last if the cancel did not reach them.
LONG = 10.0


def cancel_after(scope, seconds):
    """Cancels `scope` from another goroutine `seconds` from now; returns a list that
    gets the monotonic time of the cancel."""
    at = []

    def canceller():
        gr.sleep(seconds)
        at.append(time.monotonic())
        scope.cancel()

    gr.go(canceller)
    return at


# ---------------------------------------------------------------------------------
# one parking call of each kind, cancelled while parked


def _sockpair_recv():
    a, b = gr.socket.socketpair()
    with a, b:
        a.recv(10)


def _chan_send():
    gr.Chan().send(1)


def _select():
    gr.select([gr.Chan().recv_case(), gr.Chan().recv_case()])


def _sleep_quietly():
    # The joined goroutine is in the scope too: it ends with the scope's error,
    # which nobody retrieves.
    try:
        gr.sleep(LONG)
    except (gr.Cancelled, gr.DeadlineExceeded):
        pass


def _join():
    gr.go(_sleep_quietly).join()


def _wait_group():
    wg = gr.WaitGroup()
    wg.add(1)
    wg.wait()


def _wait_readable():
    r, w = os.pipe()
    try:
        gr.wait_readable(r)
    finally:
        os.close(r)
        os.close(w)


def _timer_chan():
    gr.Timer(LONG).chan.recv()


def _blocking():
    gr.blocking(time.sleep, 0.3)


def _cond_wait(timeout=None):
    m = gr.Mutex()
    c = gr.Cond(m)
    m.lock()
    try:
        c.wait(timeout)
    finally:
        # As pthread_cond_wait on a cancel: the mutex is held again when the
        # error comes out.
        assert not m.try_lock(), "Cond.wait raised without the mutex held again"
        m.unlock()


def _sem_acquire():
    s = gr.Semaphore(2)
    assert s.acquire(1)
    try:
        s.acquire(2)
    finally:
        # The cancelled request took nothing: the one token left is still free.
        assert s.try_acquire(1), "a cancelled Semaphore.acquire kept tokens"


PARKING_CALLS = {
    "sleep": lambda: gr.sleep(LONG),
    "chan_recv": lambda: gr.Chan().recv(),
    "chan_send": _chan_send,
    "select": _select,
    "select_timeout": lambda: gr.select([gr.Chan().recv_case()], timeout=LONG),
    "join": _join,
    "join_timeout": lambda: gr.go(_sleep_quietly).join(timeout=LONG),
    "wait_group": _wait_group,
    "socket_recv": _sockpair_recv,
    "wait_readable": _wait_readable,
    "timer_chan": _timer_chan,
    "blocking": _blocking,
    "cond_wait": _cond_wait,
    "cond_wait_timeout": lambda: _cond_wait(LONG),
    "semaphore_acquire": _sem_acquire,
}


@pytest.mark.parametrize("call", sorted(PARKING_CALLS))
def test_cancel_reaches_a_parked_call(call):
    def main():
        with gr.cancel_scope() as s:
            at = cancel_after(s, 0.05)
            PARKING_CALLS[call]()
            raise AssertionError("the parking call returned instead of raising")
        woke = time.monotonic()
        assert s.cancelled_caught and s.cancelled and s.cancel_called
        return woke - at[0]

    assert 0 <= gr.run(main) < WAKE


@pytest.mark.parametrize("call", sorted(PARKING_CALLS))
def test_deadline_reaches_a_parked_call(call):
    def main():
        t0 = time.monotonic()
        with pytest.raises(gr.DeadlineExceeded) as e:
            with gr.timeout(0.05) as s:
                PARKING_CALLS[call]()
        assert isinstance(e.value, TimeoutError) and e.value.errno == errno.ETIMEDOUT
        assert s.deadline_exceeded and not s.cancelled_caught
        return time.monotonic() - t0

    took = gr.run(main)
    assert 0.045 <= took < 0.05 + WAKE


def test_cancel_before_parking_raises_at_once_and_nothing_after_runs():
    def main():
        reached = []
        with gr.cancel_scope() as s:
            s.cancel()
            gr.sleep(0)  # a yield is not a cancellation point
            reached.append(1)
            gr.sleep(LONG)
            reached.append(2)
        # Non-parking calls are unaffected, and outside the scope parking works.
        gr.sleep(0.001)
        return reached, s.cancelled_caught

    t0 = time.monotonic()
    assert gr.run(main) == ([1], True)
    assert time.monotonic() - t0 < WAKE


def test_cancel_called_before_the_block_applies_on_entry():
    def main():
        s = gr.cancel_scope()
        s.cancel()
        with s:
            gr.sleep(LONG)
        return s.cancelled_caught

    assert gr.run(main) is True


def test_scope_that_is_not_cancelled_changes_nothing():
    def main():
        with gr.cancel_scope() as s:
            gr.sleep(0.01)
            ch = gr.Chan(1)
            ch.send(5)
            v = ch.recv()
        with gr.timeout(5) as t:
            gr.sleep(0.01)
        s.cancel()  # after the block: nothing happens
        gr.sleep(0.01)
        return v, s.cancelled, t.cancelled, s.cancelled_caught

    assert gr.run(main) == (5, False, False, False)


def test_timeout_expired_without_parking_raises_nothing():
    # As trio's fail_after: only a parking call raises.
    def main():
        with gr.timeout(0.0) as t:
            x = sum(range(10))
        return x, t.deadline_exceeded

    assert gr.run(main) == (45, True)


def test_timeout_none_and_inf_never_expire():
    def main():
        for s in (None, float("inf")):
            with gr.timeout(s) as t:
                gr.sleep(0.01)
            assert not t.cancelled
        with pytest.raises(ValueError):
            gr.timeout(float("nan"))
        return True

    assert gr.run(main)


def test_cancelled_is_not_an_exception_so_except_exception_lets_it_through():
    def main():
        with gr.cancel_scope() as s:
            s.cancel()
            try:
                gr.sleep(LONG)
            except Exception:  # noqa: BLE001 - what library code does
                return "swallowed"
        return "left" if s.cancelled_caught else "?"

    assert not issubclass(gr.Cancelled, Exception)
    assert issubclass(gr.DeadlineExceeded, TimeoutError)
    assert gr.run(main) == "left"


def test_goroutines_started_in_a_scope_are_cancelled_with_it():
    def main():
        with gr.cancel_scope() as s:
            h = gr.go(gr.sleep, LONG)
            cancel_after(s, 0.02)
            gr.sleep(LONG)
        # h raised the scope's Cancelled; its join is outside the scope.
        with pytest.raises(gr.Cancelled):
            h.join(timeout=WAKE)
        return s.cancelled_caught

    assert gr.run(main) is True


def test_cancel_from_a_plain_thread():
    def main():
        with gr.cancel_scope() as s:
            threading.Timer(0.05, s.cancel).start()
            gr.Chan().recv()
        return s.cancelled_caught

    assert gr.run(main) is True


def test_scope_outside_goroutines_is_refused():
    with pytest.raises(RuntimeError, match="inside goroutines"):
        with gr.cancel_scope():
            pass
    with pytest.raises(RuntimeError):
        with gr.Group():
            pass


def test_scope_is_entered_once_and_left_in_order():
    def main():
        s = gr.cancel_scope()
        with s:
            pass
        with pytest.raises(RuntimeError):
            with s:
                pass
        outer, inner = gr.cancel_scope(), gr.cancel_scope()
        outer.__enter__()
        inner.__enter__()
        with pytest.raises(RuntimeError, match="innermost first"):
            outer.__exit__(None, None, None)
        inner.__exit__(None, None, None)
        outer.__exit__(None, None, None)
        # The goroutine is back to no context: parking works and is not cancelled.
        outer.cancel()
        gr.sleep(0.001)
        return gr._lib.ctx_current()

    assert not gr.run(main)


# ---------------------------------------------------------------------------------
# nesting


@pytest.mark.parametrize("which", ["outer", "inner"])
def test_nested_cancel_scopes(which):
    # The outer scope's cancel goes through the inner scope to the outer one, which
    # swallows it; the inner scope's stays inside it.
    def main():
        after_inner = []
        with gr.cancel_scope() as outer:
            with gr.cancel_scope() as inner:
                cancel_after(outer if which == "outer" else inner, 0.02)
                gr.sleep(LONG)
            gr.sleep(0.01)  # parks normally unless the outer scope is cancelled
            after_inner.append(1)
        return after_inner, inner.cancelled, inner.cancelled_caught, outer.cancelled, outer.cancelled_caught

    expected = ([], True, False, True, True) if which == "outer" else ([1], True, True, False, False)
    assert gr.run(main) == expected


def test_both_cancelled_the_outer_one_catches():
    def main():
        with gr.cancel_scope() as outer:
            with gr.cancel_scope() as inner:
                inner.cancel()
                outer.cancel()
                gr.sleep(LONG)
        return inner.cancelled_caught, outer.cancelled_caught

    assert gr.run(main) == (False, True)


@pytest.mark.parametrize("outer_s, inner_s", [(0.05, LONG), (LONG, 0.05)])
def test_nested_timeouts_earliest_wins(outer_s, inner_s):
    def main():
        t0 = time.monotonic()
        with pytest.raises(gr.DeadlineExceeded):
            with gr.timeout(outer_s) as outer:
                with gr.timeout(inner_s) as inner:
                    gr.sleep(LONG)
        return time.monotonic() - t0, outer.deadline_exceeded, inner.deadline_exceeded

    took, outer_hit, inner_hit = gr.run(main)
    assert 0.045 <= took < 0.05 + WAKE
    assert inner_hit and outer_hit == (outer_s < inner_s)


def test_deadline_inside_a_cancel_scope_and_cancel_inside_a_timeout():
    def main():
        with gr.cancel_scope() as s:
            with pytest.raises(gr.DeadlineExceeded):
                with gr.timeout(0.02):
                    gr.sleep(LONG)
            gr.sleep(0.001)  # still usable
        t0 = time.monotonic()
        with gr.timeout(LONG):
            with gr.cancel_scope() as c:
                cancel_after(c, 0.02)
                gr.Chan().recv()
            gr.sleep(0.001)
        return s.cancelled, c.cancelled_caught, time.monotonic() - t0 < WAKE

    assert gr.run(main) == (False, True, True)


# ---------------------------------------------------------------------------------
# groups


def test_group_waits_for_all_members_and_returns_quietly():
    def main():
        done = []

        def member(i):
            gr.sleep(0.01 * (i % 3))
            done.append(i)
            return i * i

        with gr.Group() as g:
            hs = [g.go(member, i) for i in range(20)]
        assert sorted(done) == list(range(20))
        return [h.join() for h in hs]

    assert gr.run(main) == [i * i for i in range(20)]


def test_group_third_member_fails_cancels_the_other_99():
    def main():
        cancelled = []

        def sleeper(i):
            try:
                gr.sleep(LONG)
            except gr.Cancelled:
                cancelled.append(i)
                raise

        def failing():
            gr.sleep(0.02)
            raise ValueError("member 3 failed")

        t0 = time.monotonic()
        with pytest.raises(ValueError, match="member 3 failed") as e:
            with gr.Group() as g:
                g.go(sleeper, 0)
                g.go(sleeper, 1)
                g.go(failing)
                for i in range(2, 99):
                    g.go(sleeper, i)
        took = time.monotonic() - t0
        assert not isinstance(e.value, BaseExceptionGroup)
        return sorted(cancelled), took

    cancelled, took = gr.run(main)
    assert cancelled == list(range(99))
    assert took < 0.02 + WAKE


def test_group_several_failures_raise_an_exception_group():
    def main():
        gate: gr.Chan = gr.Chan()

        def fail(exc):
            with pytest.raises(gr.ChanClosed):
                gate.recv()
            happened.append(type(exc))
            raise exc

        with pytest.raises(ExceptionGroup) as e:
            with gr.Group() as g:
                # Both fail before either's cancel could reach the other: one close
                # wakes both, and neither parks after the first failure. (Two sleeps
                # of the same length did not always end in the same timer run.)
                g.go(fail, KeyError("a"))
                g.go(fail, OSError(5, "b"))
                g.go(gr.sleep, LONG)
                gr.sleep(0.02)  # both are parked on the gate
                gate.close()
        return e.value

    happened: list = []
    eg = gr.run(main)
    assert sorted(happened, key=lambda t: t.__name__) == [KeyError, OSError]
    assert [type(x) for x in eg.exceptions] == happened  # in the order they happened
    assert "2 goroutines" in str(eg)


def test_group_base_exception_group_when_one_is_not_an_exception():
    class Stop(BaseException):
        pass

    def main():
        def fail(exc):
            raise exc

        with pytest.raises(BaseExceptionGroup) as e:
            with gr.Group() as g:
                g.go(fail, Stop())
                g.go(fail, ValueError())
        return e.value

    eg = gr.run(main)
    assert not isinstance(eg, ExceptionGroup)
    assert sorted(type(x).__name__ for x in eg.exceptions) == ["Stop", "ValueError"]


def test_group_block_failure_cancels_members_and_is_raised():
    def main():
        cancelled = []

        def sleeper():
            try:
                gr.sleep(LONG)
            except gr.Cancelled:
                cancelled.append(1)
                raise

        t0 = time.monotonic()
        with pytest.raises(ZeroDivisionError):
            with gr.Group() as g:
                for _ in range(5):
                    g.go(sleeper)
                gr.sleep(0.01)
                1 / 0
        return len(cancelled), time.monotonic() - t0

    n, took = gr.run(main)
    assert n == 5 and took < WAKE


def test_group_member_failure_cancels_the_block_too():
    def main():
        def failing():
            gr.sleep(0.02)
            raise ValueError("x")

        reached = []
        with pytest.raises(ValueError):
            with gr.Group() as g:
                g.go(failing)
                gr.Chan().recv()  # cancelled by the member's failure
                reached.append(1)
        return reached

    assert gr.run(main) == []


def test_group_cancel_ends_quietly():
    def main():
        with gr.Group() as g:
            for _ in range(10):
                g.go(gr.sleep, LONG)
            g.go(lambda: (gr.sleep(0.02), g.cancel()))
            gr.sleep(LONG)
        return "quiet"

    t0 = time.monotonic()
    assert gr.run(main) == "quiet"
    assert time.monotonic() - t0 < WAKE


def test_group_inside_a_timeout_raises_the_deadline_once():
    def main():
        with pytest.raises(gr.DeadlineExceeded) as e:
            with gr.timeout(0.05):
                with gr.Group() as g:
                    for _ in range(10):
                        g.go(gr.sleep, LONG)
        return type(e.value)

    t0 = time.monotonic()
    assert gr.run(main) is gr.DeadlineExceeded
    assert time.monotonic() - t0 < 0.05 + WAKE


def test_group_inside_a_cancelled_scope_leaves_it_to_that_scope():
    def main():
        with gr.cancel_scope() as s:
            with gr.Group() as g:
                for _ in range(5):
                    g.go(gr.sleep, LONG)
                cancel_after(s, 0.02)
        return s.cancelled_caught

    assert gr.run(main) is True


def test_group_member_own_timeout_is_a_failure():
    def main():
        def member():
            with gr.timeout(0.02):
                gr.sleep(LONG)

        with pytest.raises(gr.DeadlineExceeded):
            with gr.Group() as g:
                g.go(member)
                g.go(gr.sleep, LONG)
        return True

    assert gr.run(main)


def test_group_members_may_start_members_and_all_are_waited_for():
    def main():
        done = []

        def member(depth, g):
            gr.sleep(0.005)
            if depth < 3:
                g.go(member, depth + 1, g)
                g.go(member, depth + 1, g)
            done.append(depth)

        with gr.Group() as g:
            g.go(member, 0, g)
        with pytest.raises(RuntimeError):
            g.go(member, 0, g)
        return sorted(done)

    assert gr.run(main) == [0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3]


def test_group_join_of_a_member_in_the_block():
    def main():
        with gr.Group() as g:
            h = g.go(lambda: 7)
            return h.join()

    assert gr.run(main) == 7


# ---------------------------------------------------------------------------------
# the monkey-patched standard library


MONKEY = r"""
import goroutine.monkey
goroutine.monkey.patch_all()
import json, queue, select, socket, threading, time
import goroutine as gr

WAKE = %r

def cancelled_wait(fn):
    with gr.cancel_scope() as s:
        at = []
        def canceller():
            time.sleep(0.05)
            at.append(time.monotonic())
            s.cancel()
        threading.Thread(target=canceller).start()
        fn()
        return "returned"
    return round(time.monotonic() - at[0], 3) if s.cancelled_caught else "not caught"

def deadline_wait(fn):
    t0 = time.monotonic()
    try:
        with gr.timeout(0.05):
            fn()
    except TimeoutError as e:
        return [type(e).__name__, round(time.monotonic() - t0, 3)]
    return "returned"

def recv():
    a, b = socket.socketpair()
    with a, b:
        a.recv(10)

def readline():
    a, b = socket.socketpair()
    with a, b, a.makefile("rb") as f:
        f.readline()

def select_one():
    a, b = socket.socketpair()
    with a, b:
        select.select([a], [], [], 10)

CALLS = {
    "time.sleep": lambda: time.sleep(10),
    "socket.recv": recv,
    "socket.makefile.readline": readline,
    "threading.Event.wait": lambda: threading.Event().wait(),
    "threading.Lock.acquire": lambda: (lambda l: (l.acquire(), l.acquire()))(threading.Lock()),
    "queue.Queue.get": lambda: queue.Queue().get(),
    "select.select": select_one,
}

def main():
    out = {}
    for name, fn in CALLS.items():
        out[name] = [cancelled_wait(fn), deadline_wait(fn)]
    return out

print("RESULT " + json.dumps(gr.run(main)))
""" % (WAKE,)


def test_cancel_reaches_the_patched_standard_library():
    r = run_python(MONKEY, timeout=120)
    lines = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stdout + r.stderr
    import json

    got = json.loads(lines[-1][len("RESULT "):])
    for name, (cancel, deadline) in got.items():
        assert isinstance(cancel, float) and 0 <= cancel < WAKE, (name, cancel)
        assert deadline[0] == "DeadlineExceeded" and 0.045 <= deadline[1] < 0.05 + WAKE, (name, deadline)


def test_group_limit_runs_at_most_n_members_at_once():
    def main():
        running = [0, 0]  # now, most at once

        def member():
            running[0] += 1
            running[1] = max(running[1], running[0])
            gr.sleep(0.01)
            running[0] -= 1

        t0 = time.monotonic()
        with gr.Group(limit=4) as g:
            for _ in range(20):
                g.go(member)
        return running[1], time.monotonic() - t0

    most, took = gr.run(main)
    assert most == 4
    assert took >= 0.045  # 20 members of 10 ms, 4 at a time: 5 rounds


def test_group_limit_wait_is_cancelled_with_the_group():
    def main():
        started = []
        with gr.Group(limit=1) as g:
            g.go(gr.sleep, LONG)
            gr.go(lambda: (gr.sleep(0.05), g.cancel()))
            t0 = time.monotonic()
            with pytest.raises(gr.Cancelled):
                g.go(started.append, 1)  # parks: the one slot is taken
            waited = time.monotonic() - t0
        return started, waited

    started, waited = gr.run(main)
    assert started == []
    assert 0.04 <= waited < WAKE


def test_group_limit_must_be_positive():
    with pytest.raises(ValueError):
        gr.Group(limit=0)
