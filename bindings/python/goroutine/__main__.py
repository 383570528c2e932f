"""``python -m goroutine script.py [args]`` / ``python -m goroutine -m module [args]``:
runs a script (or a module, as ``python -m``) with the standard library patched
(``goroutine.monkey.patch_all()``, before the script imports anything), inside
``gr.run``: the script's own code is the main goroutine, and every blocking call it or
its libraries make parks only the goroutine that makes it.

When the script's code returns, what the interpreter does at exit for threads is done
inside the run: the ``threading`` exit callbacks (``concurrent.futures`` shuts its
pools down there), then ``gr.run`` waits for the remaining goroutines, those of
non-daemon threads included, and leaves daemon ones behind. The exit status is the
script's, as with ``python script.py``.
"""

from __future__ import annotations

import os
import runpy
import sys

USAGE = "usage: python -m goroutine [-m module | script.py] [args...]"


def _threading_exit() -> None:
    """The first half of threading._shutdown: its exit callbacks, newest first."""
    import threading

    callbacks = getattr(threading, "_threading_atexits", None)
    if not callbacks:
        return
    threading._SHUTTING_DOWN = True  # type: ignore[attr-defined]
    while callbacks:
        callbacks.pop()()


def _main_goroutine(run_target: str, is_module: bool) -> None:
    try:
        if is_module:
            runpy.run_module(run_target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(run_target, run_name="__main__")
    finally:
        _threading_exit()


def main(argv: list) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        sys.exit(2 if not argv else 0)
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            sys.exit(2)
        target, is_module = argv[1], True
        sys.argv = [argv[1]] + argv[2:]  # runpy puts the module's path in argv[0]
    else:
        target, is_module = argv[0], False
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(target))

    from . import monkey

    monkey.patch_all()
    import goroutine as gr

    gr.run(_main_goroutine, target, is_module)


if __name__ == "__main__":
    main(sys.argv[1:])
