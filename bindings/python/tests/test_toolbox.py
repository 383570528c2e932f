"""gr.Timer / gr.Ticker with .chan, gr.RWMutex, gr.Cond, gr.Semaphore (issue 17)."""

import threading
import time

import pytest

import goroutine as gr

MS = 1_000_000


# ------------------------------------------------------------------- timers


def test_timer_fires_once_with_its_time():
    def main():
        t0 = time.monotonic_ns()
        t = gr.Timer(0.03)
        v = t.chan.recv()
        t1 = time.monotonic_ns()
        assert t0 + 30 * MS <= v <= t1
        assert t.chan.try_recv() == (None, False)
        assert t.stop() is False  # fired and received
        return True

    assert gr.run(main)


def test_timer_stop_and_reset_follow_go_1_23():
    def main():
        t = gr.Timer(0.05)
        assert t.stop() is True  # pending
        gr.sleep(0.1)
        assert len(t.chan) == 0  # never fired
        t.reset(0)
        while len(t.chan) == 0:
            gr.sleep(0.001)
        before = time.monotonic_ns()
        assert t.reset(0.01) is True  # fired, unread: the old value is gone
        assert t.chan.recv() >= before + 10 * MS
        return True

    assert gr.run(main)


def test_timer_in_select_beside_an_object_channel():
    def main():
        c = gr.Chan()
        t = gr.Timer(0.02)
        i, v = gr.select([c.recv_case(), t.chan.recv_case()])
        assert i == 1 and isinstance(v, int) and v > 0
        t.reset(3600)

        def sender():
            c.send("x")

        gr.go(sender)
        assert gr.select([c.recv_case(), t.chan.recv_case()]) == (0, "x")
        assert gr.select([t.chan.recv_case()], timeout=0) is None
        return True

    assert gr.run(main)


def test_ticker_ticks_and_drops_for_a_slow_reader():
    def main():
        tk = gr.Ticker(0.01)
        last = 0
        for _ in range(3):
            v = tk.chan.recv()
            assert v > last
            last = v
        gr.sleep(0.1)  # ten periods unread: one kept
        assert len(tk.chan) == 1
        drained = time.monotonic_ns()
        assert tk.chan.try_recv()[1] is True
        assert tk.chan.recv() > drained  # a new tick, not a backlog
        assert tk.stop() is True
        assert gr.select([tk.chan.recv_case()], timeout=0.05) is None
        with pytest.raises(ValueError):
            gr.Ticker(0)
        return True

    assert gr.run(main)


def test_ticker_reset_changes_the_period_and_stop_ends_the_ticks():
    def main():
        tk = gr.Ticker(3600)
        t0 = time.monotonic_ns()
        assert tk.reset(0.01) is True  # it was armed: that firing will not come
        times = [tk.chan.recv() for _ in range(3)]
        assert t0 + 10 * MS <= times[0] < times[1] < times[2] < t0 + 2000 * MS, times
        assert tk.stop() is True
        assert gr.select([tk.chan.recv_case()], timeout=0.05) is None
        with pytest.raises(ValueError):
            tk.reset(0)
        return True

    assert gr.run(main)


# ------------------------------------------------------------------- RWMutex


def test_rwmutex_readers_together_writer_alone():
    m = gr.RWMutex()
    state = {"readers": 0, "max": 0, "writer": False, "bad": 0}

    def reader():
        with m.reader:
            if state["writer"]:
                state["bad"] += 1
            state["readers"] += 1
            state["max"] = max(state["max"], state["readers"])
            gr.sleep(0.01)
            state["readers"] -= 1

    def writer():
        with m:
            if state["readers"] or state["writer"]:
                state["bad"] += 1
            state["writer"] = True
            gr.sleep(0.005)
            state["writer"] = False

    def main():
        gs = [gr.go(reader) for _ in range(5)]
        gs += [gr.go(writer) for _ in range(3)]
        gs += [gr.go(reader) for _ in range(5)]
        for g in gs:
            g.join()

    gr.run(main)
    assert state["bad"] == 0
    assert state["max"] >= 2
    assert m.try_lock() and not m.try_rlock()
    m.unlock()
    with pytest.raises(RuntimeError):
        m.unlock()
    with pytest.raises(RuntimeError):
        m.runlock()


def test_rwmutex_writer_not_starved():
    m = gr.RWMutex()
    stop = []

    def reader():
        while not stop:
            with m.reader:
                gr.sleep(0.002)

    def main():
        for _ in range(3):
            gr.go(reader)
        gr.sleep(0.02)
        t0 = time.monotonic()
        with m:
            waited = time.monotonic() - t0
        stop.append(1)
        return waited

    assert gr.run(main) < 2.0


# ------------------------------------------------------------------- Cond


def test_cond_signal_broadcast_timeout():
    mu = gr.Mutex()
    cv = gr.Cond(mu)
    woken = []

    def waiter(i):
        with mu:
            assert cv.wait() is True
            woken.append(i)

    def main():
        gs = [gr.go(waiter, i) for i in range(4)]
        gr.sleep(0.02)
        cv.signal()
        gr.sleep(0.02)
        assert len(woken) == 1
        cv.broadcast()
        for g in gs:
            g.join()
        assert sorted(woken) == [0, 1, 2, 3]
        with mu:
            t0 = time.monotonic()
            assert cv.wait(0.03) is False
            assert time.monotonic() - t0 >= 0.03
            assert not mu.try_lock()  # held again
        with pytest.raises(RuntimeError):
            cv.wait()
        return True

    assert gr.run(main)


def test_cond_from_a_plain_thread():
    mu = gr.Mutex()
    cv = gr.Cond(mu)
    ready = []

    def signaller():
        gr.sleep(0.02)
        with mu:
            ready.append(1)
            cv.signal()

    def plain():
        with mu:
            while not ready:
                assert cv.wait(5)

    def main():
        gr.go(signaller)
        th = threading.Thread(target=plain)
        th.start()
        gr.blocking(th.join)

    gr.run(main)
    assert ready


# ------------------------------------------------------------------- Semaphore


def test_semaphore_fifo_with_weights():
    s = gr.Semaphore(10)
    order = []

    def want(n, tag):
        assert s.acquire(n)
        order.append(tag)

    def main():
        assert s.acquire(10)
        big = gr.go(want, 10, "big")
        gr.sleep(0.01)
        small = gr.go(want, 1, "small")
        gr.sleep(0.01)
        s.release(1)
        gr.sleep(0.02)
        assert order == []  # the big request is first and does not fit
        assert not s.try_acquire(1)
        s.release(9)
        big.join()
        s.release(10)
        small.join()
        assert order == ["big", "small"]
        assert s.acquire(10, timeout=0.02) is False  # 1 still taken
        s.release(1)
        with s:
            pass
        with pytest.raises(ValueError):
            s.acquire(11)
        with pytest.raises(ValueError):
            s.release(1)
        return True

    assert gr.run(main)
