"""Shared fixtures. The suite runs against the installed package, or the source tree
(bindings/python) with GOROUTINE_LIBRARY pointing at target/release/libgoroutine.so."""

import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(PKG_ROOT))

try:
    import goroutine  # noqa: F401
except ImportError:
    sys.path.insert(0, PKG_ROOT)
    import goroutine  # noqa: F401


def pytest_report_header(config):
    import goroutine as gr

    return [
        "goroutine %s, library %s" % (gr.__version__, gr._lib.path),
        "python %s (%s)" % (sys.version.split()[0], sys.executable),
    ]


def run_python(code, timeout=30, env=None, **kw):
    """Runs `code` in a fresh interpreter that imports the same goroutine package."""
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(goroutine.__file__))] + [p for p in e.get("PYTHONPATH", "").split(os.pathsep) if p])
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, env=e, **kw)


@pytest.fixture
def gr():
    import goroutine

    return goroutine
