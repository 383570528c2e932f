"""Channels of Python objects, select, wait groups and mutexes."""

import ctypes
import gc
import sys
import threading
import time
import weakref

import pytest

import goroutine as gr


def test_ping_pong_unbuffered():
    def pong(ping, pong_ch, n):
        for _ in range(n):
            pong_ch.send(ping.recv() + 1)

    def main():
        a, b = gr.Chan(), gr.Chan()
        gr.go(pong, a, b, 1000)
        v = 0
        for _ in range(1000):
            a.send(v)
            v = b.recv()
        return v

    assert gr.run(main) == 1000


def test_ten_producers_sum():
    def producer(ch, base, wg):
        for i in range(1000):
            ch.send(base + i)
        wg.done()

    def main():
        ch = gr.Chan(16)
        wg = gr.WaitGroup()
        wg.add(10)
        for p in range(10):
            gr.go(producer, ch, p * 1000, wg)
        gr.go(lambda: (wg.wait(), ch.close()))
        total = count = 0
        for v in ch:
            total += v
            count += 1
        return total, count

    assert gr.run(main) == (sum(range(10_000)), 10_000)


def test_any_python_object_and_refcounts():
    class Obj:
        pass

    def main():
        ch = gr.Chan(4)
        o = Obj()
        ref = weakref.ref(o)
        before = sys.getrefcount(o)
        ch.send(o)
        assert sys.getrefcount(o) == before + 1  # the channel holds one reference
        ch.send(None)
        ch.send((1, "two", [3.0]))
        assert len(ch) == 3 and ch.cap == 4
        assert ch.recv() is o
        assert sys.getrefcount(o) == before
        assert ch.recv() is None
        assert ch.recv() == (1, "two", [3.0])
        # values left in a dropped channel are released
        ch.send(o)
        del ch
        gc.collect()
        assert sys.getrefcount(o) == before
        del o
        return ref

    ref = gr.run(main)
    assert ref() is None


def test_channel_builtins_refuse_bad_handles_and_arguments():
    """chan_send / chan_recv (the builtins behind Chan.send and Chan.recv) take the
    channel's handle as an int: anything else, a channel whose elements are not
    objects, or a wrong argument count raises, and the object offered keeps its
    references."""
    from goroutine import _lib

    send, recv = _lib.chan_send, _lib.chan_recv
    o = object()
    before = sys.getrefcount(o)
    with pytest.raises(TypeError):
        send("not a handle", o, 1)
    with pytest.raises(TypeError):
        send(1, o)
    with pytest.raises(TypeError):
        recv(1, 1)
    c4 = _lib.chan_new(4, 1)  # 4-byte elements: not a channel of objects
    try:
        with pytest.raises(gr.ContextError):
            send(c4, o, 0)
        with pytest.raises(gr.ContextError):
            recv(c4, 0, None)
    finally:
        assert _lib.chan_close(c4) == 0
        _lib.pydll.gr_chan_free(ctypes.c_void_p(c4))
    assert sys.getrefcount(o) == before
    # select's cases are the tuples recv_case() and send_case() make, nothing else
    # (not even a tuple like one: its handle would be trusted)
    for bad in ([object()], [(1,)], ["abc"], [(id(o), _lib.RECV, None, None)]):
        with pytest.raises(TypeError):
            gr.select(bad, timeout=0)
    with pytest.raises(TypeError):
        _lib.select(((1,),), 0)  # the builtin itself refuses a short case
    ch = gr.Chan(1)
    case = ch.send_case(o)
    assert (case.chan, case.op, case.value) == (ch, _lib.SEND, o)
    assert gr.select([ch.recv_case(), case], timeout=0) == (1, None)
    assert gr.select([ch.recv_case(), case], timeout=0) == (0, o)
    del case
    assert sys.getrefcount(o) == before


def test_close_semantics():
    def main():
        ch = gr.Chan(2)
        ch.send(1)
        ch.send(2)
        ch.close()
        with pytest.raises(gr.ChanClosed):
            ch.send(3)
        with pytest.raises(gr.ChanClosed):
            ch.close()
        assert ch.recv() == 1  # buffered values survive close
        assert list(ch) == [2]
        with pytest.raises(gr.ChanClosed):
            ch.recv()
        with pytest.raises(gr.ChanClosed):
            ch.try_recv()

        # close wakes every waiting receiver and sender
        u = gr.Chan()
        rs = [gr.go(u.recv) for _ in range(3)]
        s = gr.go(gr.Chan().send, 1)  # another channel: stays blocked until the end
        gr.yield_()
        u.close()
        for r in rs:
            with pytest.raises(gr.ChanClosed):
                r.join()
        w = gr.Chan()
        snd = gr.go(w.send, "x")
        gr.yield_()
        w.close()
        with pytest.raises(gr.ChanClosed):
            snd.join()
        return s

    with pytest.raises(gr.Deadlock):
        gr.run(main)


def test_try_send_try_recv():
    def main():
        ch = gr.Chan(1)
        assert ch.try_recv() == (None, False)
        assert ch.try_send("a") is True
        assert ch.try_send("b") is False
        assert ch.try_recv() == ("a", True)
        u = gr.Chan()
        assert u.try_send(1) is False  # nobody receives
        r = gr.go(u.recv)
        gr.yield_()
        assert u.try_send(5) is True
        assert r.join() == 5

    gr.run(main)


def test_select_recv_send_and_timeout():
    def main():
        a, b, c = gr.Chan(), gr.Chan(), gr.Chan(1)
        t = time.monotonic()
        assert gr.select([a.recv_case(), b.recv_case()], timeout=0.05) is None
        assert 0.04 <= time.monotonic() - t < 1.0
        assert gr.select([a.recv_case()], timeout=0) is None

        gr.go(lambda: (gr.sleep(0.01), b.send("bee")))
        assert gr.select([a.recv_case(), b.recv_case()]) == (1, "bee")

        assert gr.select([c.send_case("sea"), a.recv_case()]) == (0, None)
        assert c.recv() == "sea"

        seen = set()
        x, y = gr.Chan(10), gr.Chan(10)
        for i in range(10):
            x.send(("x", i))
            y.send(("y", i))
        for _ in range(20):
            i, (name, _) = gr.select([x.recv_case(), y.recv_case()])
            seen.add((i, name))
        assert seen == {(0, "x"), (1, "y")}  # both chosen (random among ready)

        d = gr.Chan()
        d.close()
        with pytest.raises(gr.ChanClosed) as ei:
            gr.select([a.recv_case(), d.recv_case()])
        assert ei.value.index == 1
        with pytest.raises(ValueError):
            gr.select([])
        assert gr.select([], timeout=0.01) is None

    gr.run(main)


def test_select_send_value_refcount():
    def main():
        a = gr.Chan()
        v = object()
        before = sys.getrefcount(v)
        assert gr.select([a.send_case(v)], timeout=0.01) is None
        assert sys.getrefcount(v) == before
        r = gr.go(a.recv)
        gr.yield_()
        assert gr.select([a.send_case(v)]) == (0, None)
        assert r.join() is v

    gr.run(main)


def test_waitgroup():
    def main():
        wg = gr.WaitGroup()
        out = []

        def w(i):
            gr.sleep(0.001 * (i % 3))
            out.append(i)
            wg.done()

        wg.add(20)
        for i in range(20):
            gr.go(w, i)
        wg.wait()
        assert sorted(out) == list(range(20))
        with pytest.raises(ValueError):
            wg.done()

    gr.run(main)


def test_mutex():
    def main():
        m = gr.Mutex()
        counter = [0]

        def inc():
            for _ in range(100):
                with m:
                    v = counter[0]
                    gr.yield_()  # would lose updates without the mutex
                    counter[0] = v + 1

        gs = [gr.go(inc) for _ in range(10)]
        for g in gs:
            g.join()
        assert m.try_lock() is True
        assert m.try_lock() is False
        m.unlock()
        with pytest.raises(RuntimeError):
            m.unlock()
        return counter[0]

    assert gr.run(main) == 1000


def test_channel_from_plain_thread():
    """A plain Python thread can feed goroutines: its send blocks that thread only."""

    def main():
        ch = gr.Chan()

        def feeder():
            for i in range(100):
                ch.send(i)
            ch.close()

        t = threading.Thread(target=feeder)
        t.start()
        total = sum(ch)
        t.join()
        return total

    assert gr.run(main) == sum(range(100))
