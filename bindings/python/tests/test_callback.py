"""A park inside a ctypes callback entered from C inside a goroutine.

3.11 runs such a callback on the OS thread's own thread state (not the goroutine's):
parking there would corrupt it, so the park raises ContextError. 3.12+ run it on the
goroutine's own state, where parking is safe."""

import ctypes
import sys

import pytest

import goroutine as gr

CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))


def _qsort_with(cmp_body):
    libc = ctypes.CDLL(None)
    arr = (ctypes.c_int * 8)(5, 3, 7, 1, 8, 2, 6, 4)
    libc.qsort(arr, len(arr), ctypes.sizeof(ctypes.c_int), CMP(cmp_body))
    return list(arr)


def test_park_in_callback():
    outcomes = []

    def cmp(a, b):
        try:
            gr.yield_()
            outcomes.append("parked")
        except gr.ContextError:
            outcomes.append("refused")
        return a[0] - b[0]

    other = []

    def main():
        g = gr.go(lambda: [other.append(i) or gr.yield_() for i in range(50)])
        r = _qsort_with(cmp)
        g.join()
        return r

    assert gr.run(main) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert outcomes
    if sys.version_info[:2] == (3, 11):
        assert set(outcomes) == {"refused"}
    else:
        assert set(outcomes) == {"parked"}
    assert other == list(range(50))


def test_callback_without_parking_is_fine():
    def main():
        return _qsort_with(lambda a, b: a[0] - b[0])

    assert gr.run(main) == [1, 2, 3, 4, 5, 6, 7, 8]
