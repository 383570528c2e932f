# libgoroutine: Go-style goroutines for C, built by cargo as target/release/libgoroutine.so.
#
#   make / make build   build the library (cargo build --release) and the libc hook
#                       layer, libgoroutine_hook.so (make hook, mk/hook.mk)
#   make header         regenerate include/goroutine.h from src/ffi (commit the result)
#   make demo           build and run c_examples/tour.c: goroutines against threads,
#                       measured live on this machine (under a minute)
#   make test           every suite (Rust tests, the C programs in tests/c/, the examples,
#                       the hook layer, the install test, the docs checks, the Python
#                       suite), each to the end, then one line per suite and the skips
#                       (mk/test.mk)
#   make stress         the long tests (marked #[ignore]), 60 s of fuzzing, make valgrind
#   make bench          the benchmark suite and its report (mk/bench.mk; QUICK=1: < 3 min)
#   make bench-check    callgrind instruction counts vs the committed baseline (> 10%: fails)
#   make sanitize       the C tests under ASan+UBSan and TSan; make valgrind: under memcheck
#   make fuzz           the libFuzzer harness (mk/fuzz.mk)
#   make clean          remove target/
#   make install        install the library, header, pkg-config and CMake files;
#   make uninstall      PREFIX=/usr/local DESTDIR= LIBDIR=$(PREFIX)/lib ... (mk/install.mk)
#
# Variables: CARGO, CC, CFLAGS, CARGO_TARGET_DIR (as cargo uses it).

CARGO      ?= cargo
CC         := gcc
CFLAGS     ?= -O2 -g -Wall -Wextra
PYTHON     ?= python3
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BUILD_LIBDIR := $(abspath $(TARGET_DIR)/release)

.PHONY: all build soname-link header demo stress clean

all: build

build:
	$(CARGO) build --release
	@$(MAKE) --no-print-directory soname-link
	@$(MAKE) --no-print-directory hook

# The link named by the library's soname (libgoroutine.so.ABI, build.rs: MAJOR, or
# 0.MINOR while MAJOR is 0), which cargo does not create, beside the libgoroutine.so
# in LINK_LIBDIR (default: this build's): programs linked against that one then run
# from there. bench/Makefile and bench/httpd.sh use it too.
LINK_LIBDIR ?= $(BUILD_LIBDIR)
soname-link:
	@soname=$$(objdump -p $(LINK_LIBDIR)/libgoroutine.so | awk '/SONAME/ {print $$2}'); \
	if [ -n "$$soname" ] && [ "$$soname" != libgoroutine.so ]; then \
		ln -sf libgoroutine.so $(LINK_LIBDIR)/$$soname; fi

header:
	GR_WRITE_HEADER=1 $(CARGO) build --release

demo: build
	@mkdir -p $(TARGET_DIR)/c_examples
	$(CC) $(CFLAGS) -pthread -rdynamic -I include -o $(TARGET_DIR)/c_examples/tour c_examples/tour.c \
		-L $(BUILD_LIBDIR) -lgoroutine -Wl,-rpath,$(BUILD_LIBDIR)
	$(TARGET_DIR)/c_examples/tour

# More parts of stress come from the mk/*.mk files (`stress: their-target`).
stress: build
	$(CARGO) test --release --no-fail-fast -- --ignored
	REPEAT=20 bindings/python/run_tests.sh

clean:
	$(CARGO) clean

include mk/test.mk mk/install.mk mk/hook.mk mk/bench.mk mk/fuzz.mk mk/sanitize.mk
