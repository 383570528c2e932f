# make hook: libgoroutine_hook.so, the libc hook layer (hook/*.c), beside the
# libgoroutine.so it links. Included by the top-level Makefile; `make build` runs it
# after cargo, and the tests (tests/hook.rs and the example and install tests) call
# this same target for the library cargo test has just built:
#
#   make hook [HOOK_LIBDIR=dir]   dir holds libgoroutine.so and gets the hook library
#                                 (default: target/release)
#
# The library is C (see hook/init.c for why), built with hidden visibility so that
# only the interposed libc functions are exported. Its soname is
# libgoroutine_hook.so.ABI (HOOK_SONAME, from mk/install.mk's version), and it needs
# libgoroutine.so.ABI (DT_NEEDED, found through RUNPATH $ORIGIN beside it, or in
# the installed libdir), so LD_PRELOAD of it alone works on a binary that links
# libgoroutine.

HOOK_LIBDIR ?= $(BUILD_LIBDIR)
HOOK_SRC := $(sort $(wildcard hook/*.c))
# -U_FORTIFY_SOURCE: where the compiler defines it by default (Ubuntu), glibc's
# headers turn read, recv, poll... into inline wrappers, which this library defines.
HOOK_CFLAGS := -O2 -g -Wall -Wextra -Werror -U_FORTIFY_SOURCE -fPIC -fvisibility=hidden -pthread \
	-I include

.PHONY: hook

hook: $(HOOK_LIBDIR)/libgoroutine_hook.so

$(HOOK_LIBDIR)/libgoroutine_hook.so: $(HOOK_SRC) hook/hook.h include/goroutine.h \
		$(HOOK_LIBDIR)/libgoroutine.so
	$(CC) $(HOOK_CFLAGS) -shared -o $@.$$$$.tmp $(HOOK_SRC) -Wl,-soname,$(HOOK_SONAME) \
		-Wl,-rpath,'$$ORIGIN' -Wl,-z,defs -L $(HOOK_LIBDIR) -lgoroutine -ldl \
		&& mv -f $@.$$$$.tmp $@
	ln -sfn libgoroutine_hook.so $(HOOK_LIBDIR)/$(HOOK_SONAME)
