"""The loader and the interpreter checks (in fresh interpreters)."""

import os
import subprocess
import sys

import pytest

import goroutine as gr
from conftest import run_python


def test_typed_package():
    assert os.path.exists(os.path.join(os.path.dirname(gr.__file__), "py.typed"))
    assert gr.__version__.count(".") == 2


def test_system_library_is_this_abi(monkeypatch):
    """The name the loader falls back to is the soname of the library this package
    runs on, and follows the ABI rule (0.MINOR while the major version is 0)."""
    major, minor, _ = gr.__version__.split(".")
    assert gr._lib.SYSTEM_LIBRARY == "libgoroutine.so." + (major + "." + minor if major == "0" else major)
    monkeypatch.delenv("GOROUTINE_LIBRARY", raising=False)
    assert gr._lib._candidates()[-1] == (gr._lib.SYSTEM_LIBRARY, "the system library")
    dynamic = subprocess.run(["readelf", "-d", os.path.realpath(gr._lib.path)], capture_output=True,
                             text=True, check=True).stdout
    assert "Library soname: [%s]" % gr._lib.SYSTEM_LIBRARY in dynamic, dynamic


def test_bad_library_path_is_a_clear_import_error():
    r = run_python("import goroutine", env={"GOROUTINE_LIBRARY": "/nonexistent/libgoroutine.so"})
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "GOROUTINE_LIBRARY" in r.stderr


@pytest.mark.parametrize("version", [(3, 14, 0, "final", 0), (3, 10, 9, "final", 0)])
def test_unsupported_versions_are_refused(version):
    r = run_python("import sys; sys.version_info = %r\nimport goroutine" % (version,))
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "supports CPython 3.11 to 3.13" in r.stderr


def test_debug_311_is_refused():
    r = run_python(
        "import sys; sys.version_info = (3, 11, 7, 'final', 0); sys.gettotalrefcount = lambda: 0\n"
        "import goroutine"
    )
    assert r.returncode != 0 and "debug build" in r.stderr


def test_interpreter_exit_with_parked_goroutines():
    """Goroutines abandoned by a KeyboardInterrupt do not crash the interpreter's exit."""
    r = run_python(
        """
        import goroutine as gr, _thread, threading
        def main():
            gr.go(lambda: gr.sleep(10))
            gr.go(gr.Chan().recv)
            threading.Timer(0.1, _thread.interrupt_main).start()
            gr.sleep(10)
        try:
            gr.run(main)
        except KeyboardInterrupt:
            print("interrupted")
        print(gr.run(lambda: "again"))
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["interrupted", "again"]
