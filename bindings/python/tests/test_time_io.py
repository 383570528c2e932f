"""Sleeping, fd waits and blocking calls."""

import os
import threading
import time

import pytest

import goroutine as gr


def test_500_concurrent_sleeps():
    def sleeper(i):
        gr.sleep(0.1)
        return i

    def main():
        t = time.monotonic()
        gs = [gr.go(sleeper, i) for i in range(500)]
        out = [g.join() for g in gs]
        return out, time.monotonic() - t

    out, took = gr.run(main)
    assert out == list(range(500))
    assert 0.1 <= took < 1.0, took


def test_sleep_ordering():
    order = []

    def s(d):
        gr.sleep(d)
        order.append(d)

    def main():
        for d in (0.05, 0.01, 0.03, 0.0):
            gr.go(s, d)

    gr.run(main)
    assert order == [0.0, 0.01, 0.03, 0.05]


def test_wait_readable_writable_and_timeout():
    def main():
        r, w = os.pipe()
        try:
            assert gr.wait_writable(w, timeout=1) is True
            t = time.monotonic()
            assert gr.wait_readable(r, timeout=0.05) is False
            assert time.monotonic() - t >= 0.04
            gr.go(lambda: (gr.sleep(0.02), os.write(w, b"x")))
            assert gr.wait_readable(r) is True
            assert os.read(r, 1) == b"x"
        finally:
            os.close(r)
            os.close(w)
        with pytest.raises(OSError):
            gr.wait_readable(r, timeout=0.01)

    gr.run(main)


def test_blocking_does_not_stall_others():
    ticks = []

    def ticker():
        for _ in range(30):
            gr.sleep(0.01)
            ticks.append(time.monotonic())

    def main():
        tk = gr.go(ticker)
        t = time.monotonic()
        r = gr.blocking(time.sleep, 0.2)
        end = time.monotonic()
        tk.join()
        return r, t, end

    r, start, end = gr.run(main)
    assert r is None and end - start >= 0.19
    during = [t for t in ticks if start < t < end]
    # ~19 expected; a stalled thread would give 0. Loose for a loaded 2-vCPU machine.
    assert len(during) >= 4, (len(during), [round(b - a, 3) for a, b in zip(ticks, ticks[1:])])


def test_blocking_value_exception_and_concurrency():
    def main():
        assert gr.blocking(lambda a, b=1: a + b, 2, b=3) == 5
        with pytest.raises(ZeroDivisionError):
            gr.blocking(lambda: 1 / 0)
        t = time.monotonic()
        gs = [gr.go(gr.blocking, time.sleep, 0.1) for _ in range(8)]
        for g in gs:
            g.join()
        return time.monotonic() - t

    assert gr.run(main) < 0.6  # in parallel on helper threads (one after another: 0.8)
    assert gr.blocking(lambda: threading.current_thread().name) == threading.current_thread().name
