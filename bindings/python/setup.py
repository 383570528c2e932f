"""Builds libgoroutine with cargo and bundles it in the package.

The Rust crate is at the repository root (../../Cargo.toml from here). ``pip install
./bindings/python`` runs ``cargo build --release`` there (CARGO and CARGO_TARGET_DIR are
honoured) and copies target/release/libgoroutine.so into goroutine/_native/, which is
where the loader looks after GOROUTINE_LIBRARY. The wheel holds no Python extension: it
is tagged py3-none-<platform>.
"""

import os
import re
import shutil
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))


def find_manifest():
    d = HERE
    for _ in range(4):
        d = os.path.dirname(d)
        m = os.path.join(d, "Cargo.toml")
        if os.path.exists(m):
            return m
    return None


def crate_version(manifest):
    if manifest:
        with open(manifest) as f:
            m = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M)
            if m:
                return m.group(1)
    return "0.0.0"


def find_cargo():
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    if not cargo:
        home = os.path.expanduser("~/.cargo/bin/cargo")
        if os.path.exists(home):
            cargo = home
    return cargo


class BuildWithCargo(build_py):
    def run(self):
        super().run()
        manifest = find_manifest()
        if manifest is None:
            sys.exit("goroutine: cannot find the Rust crate (Cargo.toml two levels above bindings/python); "
                     "build from a checkout of the libgoroutine repository")
        cargo = find_cargo()
        if cargo is None:
            sys.exit("goroutine: building needs Rust's cargo (https://rustup.rs) on PATH, or CARGO set")
        root = os.path.dirname(manifest)
        self.announce("building libgoroutine with cargo", level=2)
        subprocess.check_call([cargo, "build", "--release", "--lib", "--manifest-path", manifest], cwd=root)
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
        if not os.path.isabs(target):
            target = os.path.join(root, target)
        lib = os.path.join(target, "release", "libgoroutine.so")
        dest = os.path.join(self.build_lib, "goroutine", "_native")
        os.makedirs(dest, exist_ok=True)
        shutil.copyfile(lib, os.path.join(dest, "libgoroutine.so"))


class PlatformWheel(bdist_wheel):
    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _python, _abi, plat = super().get_tag()
        return "py3", "none", plat


setup(version=crate_version(find_manifest()), cmdclass={"build_py": BuildWithCargo, "bdist_wheel": PlatformWheel})
