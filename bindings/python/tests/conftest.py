"""Shared fixtures. The suite runs against the installed package, or the source tree
(bindings/python) with GOROUTINE_LIBRARY pointing at target/release/libgoroutine.so.

Also the skips (the same rule as tests/common/mod.rs for the Rust tests): a test that
needs an optional tool or module calls `need_tool(tool, package)` or
`need_module(module, pypi_name)` (`from conftest import need_tool`), which skips it with
one line `SKIP <test>: needs <what> (... package ...)`, or fails it when GR_REQUIRE_ALL=1
(CI installs everything). Every skip of the run, these and any other, is appended to
the skip log that `make test`'s summary lists: $GR_SKIP_LOG, else target/tmp/skips.log."""

import importlib
import os
import shutil
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


def _require_all():
    return os.environ.get("GR_REQUIRE_ALL") == "1"


def _missing(what, package):
    """Skips (or, under GR_REQUIRE_ALL=1, fails) the running test."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
    line = "SKIP %s: needs %s (%s)" % (test, what, package)
    if _require_all():
        pytest.fail(line + " [GR_REQUIRE_ALL=1: a skip is a failure]", pytrace=False)
    pytest.skip(line)


def need_tool(tool, package):
    """The path of `tool` on PATH; skips the test when it is missing (`package`: the
    Debian package that provides it)."""
    path = shutil.which(tool)
    if path is None:
        _missing(tool, "Debian package " + package)
    return path


def need_module(module, pypi_name):
    """The imported `module`; skips the test when it cannot be imported (`pypi_name`:
    the PyPI package that provides it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    _missing("Python module " + module, "PyPI package " + pypi_name)


def _skip_log():
    log = os.environ.get("GR_SKIP_LOG")
    if log:
        return log
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    return os.path.join(REPO, target, "tmp", "skips.log")


def pytest_runtest_logreport(report):
    """Every skipped test goes to the skip log, with the interpreter it ran on."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    # need_*'s own "SKIP <test>: " prefix names the test that raised it, which for a
    # skip in a shared fixture is the first test that used it: name this one.
    if reason.startswith("SKIP ") and ": needs " in reason:
        reason = reason[reason.index(": needs ") + 2:]
    line = "SKIP %s: %s [CPython %d.%d]\n" % (report.nodeid, reason, *sys.version_info[:2])
    log = _skip_log()
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as f:
        f.write(line)


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
