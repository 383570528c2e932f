"""Ctrl-C reaches the program as KeyboardInterrupt within 200 ms, whatever the
goroutines are doing."""

import signal
import sys
import time

import pytest

from conftest import run_python

CHILD = r"""
import sys, time
import goroutine as gr

MODE = sys.argv[1] if len(sys.argv) > 1 else "chan"

def spinner():
    while True:
        gr.yield_()

def sleeper():
    while True:
        gr.sleep(0.005)

def pingpong(a, b):
    while True:
        b.send(a.recv())

def main():
    if MODE == "chan":
        gr.go(sleeper)
        print("ready", flush=True)
        gr.Chan().recv()
    elif MODE == "join":
        g = gr.go(sleeper)
        print("ready", flush=True)
        g.join()
    elif MODE == "busy":
        for _ in range(3):
            gr.go(spinner)
        print("ready", flush=True)
        gr.Chan().recv()
    elif MODE == "pingpong":
        a, b = gr.Chan(), gr.Chan()
        gr.go(pingpong, a, b)
        gr.go(pingpong, b, a)
        a.send(1)
        print("ready", flush=True)
        gr.Chan().recv()
    elif MODE == "single":
        print("ready", flush=True)
        spinner()

try:
    gr.run(main)
except KeyboardInterrupt:
    print("KI %.6f" % time.monotonic(), flush=True)
    sys.exit(0)
print("no interrupt", flush=True)
sys.exit(1)
"""


def _interrupt_latency(mode, tmp_path):
    import os
    import subprocess

    import goroutine

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(goroutine.__file__))
    p = subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        line = p.stdout.readline().strip()
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert line.startswith("KI "), (line, err)
    assert p.returncode == 0, err
    assert "Fatal" not in err and "Segmentation" not in err, err
    return float(line.split()[1]) - t0


@pytest.mark.parametrize("mode", ["chan", "join", "busy", "pingpong", "single"])
def test_ctrl_c_raises_keyboardinterrupt_within_200ms(mode, tmp_path):
    # The bound is 200 ms; runs take ~50 ms at most. A machine shared with other heavy
    # jobs can deschedule the child for longer, so a slow attempt is tried again
    # (twice at most): a broken delivery fails every attempt (or hangs: no line).
    latencies = []
    for attempt in range(3):
        latencies.append(_interrupt_latency(mode, tmp_path))
        if latencies[-1] < 0.2:
            break
    assert min(latencies) < 0.2, latencies
