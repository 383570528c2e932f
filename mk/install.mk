# make install / make uninstall: libgoroutine installed the way a C library is.
# Included by the top-level Makefile (`include mk/install.mk`).
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [LIBDIR=$(PREFIX)/lib] ...
#   make uninstall (same variables): removes exactly the files install wrote
#
# What goes where (with the defaults):
#
#   $(LIBDIR)/libgoroutine.so.MAJOR.MINOR.PATCH    the shared library (soname libgoroutine.so.ABI)
#   $(LIBDIR)/libgoroutine.so.ABI -> ...            the soname link the loader looks for
#   $(LIBDIR)/libgoroutine.so -> ...so.ABI          the link `-lgoroutine` finds
#   $(LIBDIR)/libgoroutine.a                        the static library
#   $(LIBDIR)/libgoroutine_hook.so.MAJOR.MINOR.PATCH, .so.ABI, .so
#                                                   the libc hook layer (mk/hook.mk)
#   $(INCLUDEDIR)/goroutine.h                       the header
#   $(PKGCONFIGDIR)/goroutine.pc                    pkg-config --cflags --libs goroutine
#   $(PKGCONFIGDIR)/goroutine-hook.pc               ... goroutine-hook (with the hook layer)
#   $(CMAKEDIR)/goroutineConfig.cmake               find_package(goroutine) ->
#   $(CMAKEDIR)/goroutineConfigVersion.cmake          goroutine::goroutine (and goroutine::static,
#                                                     goroutine::hook)
#
# install depends on `build` (cargo build --release) and copies what it built.
# `sudo make install` runs that cargo as root, which usually has no Rust toolchain:
# build first as yourself, then `sudo make install NO_BUILD=1` installs what is in
# target/release without running cargo. DESTDIR stages the whole tree elsewhere (for
# packagers and for tests/install.rs); the installed files never contain DESTDIR.
#
# ABI is the ABI version: MAJOR, or 0.MINOR while MAJOR is 0 (GR_ABI below).
#
# The GNU lower-case names (prefix, libdir, includedir) work as well.

PREFIX       ?= $(or $(prefix),/usr/local)
EXEC_PREFIX  ?= $(or $(exec_prefix),$(PREFIX))
LIBDIR       ?= $(or $(libdir),$(EXEC_PREFIX)/lib)
INCLUDEDIR   ?= $(or $(includedir),$(PREFIX)/include)
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR     ?= $(LIBDIR)/cmake/goroutine
DESTDIR      ?=
INSTALL      ?= install

# Where cargo put the library (the same rule as the Makefile's TARGET_DIR).
GR_BUILT = $(or $(TARGET_DIR),$(CARGO_TARGET_DIR),target)/release

# The version, from Cargo.toml's [package] (the first `version = "..."` line).
GR_VERSION := $(shell sed -n 's/^version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
GR_VERSION_WORDS := $(subst ., ,$(GR_VERSION))
GR_MAJOR := $(word 1,$(GR_VERSION_WORDS))
# The ABI version in the sonames: MAJOR, or 0.MINOR while MAJOR is 0 (build.rs says why).
GR_ABI := $(if $(filter 0,$(GR_MAJOR)),0.$(word 2,$(GR_VERSION_WORDS)),$(GR_MAJOR))
GR_SONAME := libgoroutine.so.$(GR_ABI)
GR_REALNAME := libgoroutine.so.$(GR_VERSION)
HOOK_SONAME := libgoroutine_hook.so.$(GR_ABI)
HOOK_REALNAME := libgoroutine_hook.so.$(GR_VERSION)

# Paths from the CMake package's directory to the library and header directories, so
# that the package finds its files wherever the tree is (DESTDIR staging, a moved
# prefix); GNU realpath computes them.
GR_CMAKE_TO_LIB = $(shell realpath -m --relative-to='$(CMAKEDIR)' '$(LIBDIR)')
GR_CMAKE_TO_INC = $(shell realpath -m --relative-to='$(CMAKEDIR)' '$(INCLUDEDIR)')
# In the .pc file, directories under the prefix are written as ${prefix}/...
GR_PC_EXEC_PREFIX = $(patsubst $(PREFIX)%,$${prefix}%,$(EXEC_PREFIX))
GR_PC_LIBDIR = $(patsubst $(EXEC_PREFIX)/%,$${exec_prefix}/%,$(LIBDIR))
GR_PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))

# Every file install writes, for uninstall.
GR_INSTALLED = \
	$(DESTDIR)$(LIBDIR)/$(GR_REALNAME) \
	$(DESTDIR)$(LIBDIR)/$(GR_SONAME) \
	$(DESTDIR)$(LIBDIR)/libgoroutine.so \
	$(DESTDIR)$(LIBDIR)/libgoroutine.a \
	$(DESTDIR)$(LIBDIR)/$(HOOK_REALNAME) \
	$(DESTDIR)$(LIBDIR)/$(HOOK_SONAME) \
	$(DESTDIR)$(LIBDIR)/libgoroutine_hook.so \
	$(DESTDIR)$(INCLUDEDIR)/goroutine.h \
	$(DESTDIR)$(PKGCONFIGDIR)/goroutine.pc \
	$(DESTDIR)$(PKGCONFIGDIR)/goroutine-hook.pc \
	$(DESTDIR)$(CMAKEDIR)/goroutineConfig.cmake \
	$(DESTDIR)$(CMAKEDIR)/goroutineConfigVersion.cmake

.PHONY: install uninstall install-check-vars

install-check-vars:
	@case '$(PREFIX)$(LIBDIR)$(INCLUDEDIR)$(PKGCONFIGDIR)$(CMAKEDIR)' in \
	*' '*) echo 'make install: directory names with spaces are not supported' >&2; exit 1;; esac
	@for d in '$(PREFIX)' '$(LIBDIR)' '$(INCLUDEDIR)' '$(PKGCONFIGDIR)' '$(CMAKEDIR)'; do \
		case "$$d" in /*) ;; *) echo "make install: '$$d' is not an absolute path" >&2; exit 1;; esac; \
	done
	@test -n '$(GR_MAJOR)' || { echo 'make install: no version = "X.Y.Z" in Cargo.toml' >&2; exit 1; }
	@case '$(abspath $(LIBDIR))/' in '$(abspath $(GR_BUILT))'/*) \
		echo 'make install: LIBDIR is $(LIBDIR), the build directory: the Makefile must not' \
		     'define LIBDIR itself (it is the install directory, $$(PREFIX)/lib by default)' >&2; exit 1;; esac

install: install-check-vars $(if $(filter 1,$(NO_BUILD)),,build)
	@for f in libgoroutine.so libgoroutine.a libgoroutine_hook.so; do \
		test -f '$(GR_BUILT)'/$$f || { echo "make install: $(GR_BUILT)/$$f is missing: run make first" >&2; exit 1; }; \
	done
	@soname=$$(readelf -d '$(GR_BUILT)/libgoroutine.so' 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p'); \
	if [ -n "$$soname" ] && [ "$$soname" != '$(GR_SONAME)' ]; then \
		echo "make install: $(GR_BUILT)/libgoroutine.so has soname $$soname, expected $(GR_SONAME)" >&2; exit 1; fi
	$(INSTALL) -d '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(INCLUDEDIR)' '$(DESTDIR)$(PKGCONFIGDIR)' '$(DESTDIR)$(CMAKEDIR)'
	$(INSTALL) -m 0755 '$(GR_BUILT)/libgoroutine.so' '$(DESTDIR)$(LIBDIR)/$(GR_REALNAME)'
	ln -sfn '$(GR_REALNAME)' '$(DESTDIR)$(LIBDIR)/$(GR_SONAME)'
	ln -sfn '$(GR_SONAME)' '$(DESTDIR)$(LIBDIR)/libgoroutine.so'
	$(INSTALL) -m 0644 '$(GR_BUILT)/libgoroutine.a' '$(DESTDIR)$(LIBDIR)/libgoroutine.a'
	$(INSTALL) -m 0755 '$(GR_BUILT)/libgoroutine_hook.so' '$(DESTDIR)$(LIBDIR)/$(HOOK_REALNAME)'
	ln -sfn '$(HOOK_REALNAME)' '$(DESTDIR)$(LIBDIR)/$(HOOK_SONAME)'
	ln -sfn '$(HOOK_SONAME)' '$(DESTDIR)$(LIBDIR)/libgoroutine_hook.so'
	$(INSTALL) -m 0644 include/goroutine.h '$(DESTDIR)$(INCLUDEDIR)/goroutine.h'
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@EXEC_PREFIX@|$(GR_PC_EXEC_PREFIX)|g' \
	    -e 's|@LIBDIR@|$(GR_PC_LIBDIR)|g' -e 's|@INCLUDEDIR@|$(GR_PC_INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(GR_VERSION)|g' goroutine.pc.in > '$(DESTDIR)$(PKGCONFIGDIR)/goroutine.pc'
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@EXEC_PREFIX@|$(GR_PC_EXEC_PREFIX)|g' \
	    -e 's|@LIBDIR@|$(GR_PC_LIBDIR)|g' -e 's|@INCLUDEDIR@|$(GR_PC_INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(GR_VERSION)|g' goroutine-hook.pc.in > '$(DESTDIR)$(PKGCONFIGDIR)/goroutine-hook.pc'
	sed -e 's|@CMAKE_TO_LIB@|$(GR_CMAKE_TO_LIB)|g' -e 's|@CMAKE_TO_INC@|$(GR_CMAKE_TO_INC)|g' \
	    -e 's|@SONAME@|$(GR_SONAME)|g' -e 's|@HOOK_SONAME@|$(HOOK_SONAME)|g' \
	    -e 's|@VERSION@|$(GR_VERSION)|g' cmake/goroutineConfig.cmake.in > '$(DESTDIR)$(CMAKEDIR)/goroutineConfig.cmake'
	sed -e 's|@VERSION@|$(GR_VERSION)|g' cmake/goroutineConfigVersion.cmake.in \
	    > '$(DESTDIR)$(CMAKEDIR)/goroutineConfigVersion.cmake'
	chmod 0644 '$(DESTDIR)$(PKGCONFIGDIR)/goroutine.pc' '$(DESTDIR)$(PKGCONFIGDIR)/goroutine-hook.pc' \
	    '$(DESTDIR)$(CMAKEDIR)/goroutineConfig.cmake' \
	    '$(DESTDIR)$(CMAKEDIR)/goroutineConfigVersion.cmake'
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
		echo ldconfig; ldconfig; fi

# Only the files install wrote, and the package's own CMake directory once empty;
# shared directories (lib/, include/, lib/pkgconfig/) stay.
uninstall: install-check-vars
	rm -f $(foreach f,$(GR_INSTALLED),'$(f)')
	@rmdir '$(DESTDIR)$(CMAKEDIR)' 2>/dev/null || true
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
		echo ldconfig; ldconfig; fi
