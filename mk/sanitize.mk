# make sanitize / make valgrind: the C tests under gcc's sanitizers and memcheck (issue 8).
# Included by the top-level Makefile.
#
#   make sanitize   every program in tests/c/ (and the crash tests and the demo) built
#                   with -fsanitize=address,undefined (LeakSanitizer at exit; any
#                   report fails the program), then again with -fsanitize=thread
#   make valgrind   the same programs (plain build) under valgrind memcheck: invalid
#                   accesses and definite leaks fail the program
#
# tests/c_tests.rs does the work when GR_TEST_SANITIZE is address, thread or valgrind:
# compiler flags, the sanitizer options (tests/sanitize/*.supp), longer timeouts, and
# the one list of programs that cannot run in a mode, each with its reason (printed
# as "skipped under ..." lines). The library itself is the ordinary release build:
# it finds the sanitizers' fiber and synchronisation hooks at run time
# (src/runtime/sanitizer.rs) and registers its stacks with valgrind (src/runtime/stack/).
# Each mode runs to the end, so one run reports every failing program.
#
# Times on the 2-CPU build machine: sanitize-address about 2 min, sanitize-thread
# about 1.5 min, valgrind 40-50 min (memcheck serialises the threads and the runtime
# waits a lot), which is why valgrind is not part of `make stress`.

SANITIZE_TEST = $(CARGO) test --release --test c_tests --no-fail-fast

.PHONY: sanitize sanitize-address sanitize-thread valgrind

sanitize: build
	@status=0; \
	GR_TEST_SANITIZE=address $(SANITIZE_TEST) || status=1; \
	GR_TEST_SANITIZE=thread $(SANITIZE_TEST) || status=1; \
	exit $$status

sanitize-address: build
	GR_TEST_SANITIZE=address $(SANITIZE_TEST)

sanitize-thread: build
	GR_TEST_SANITIZE=thread $(SANITIZE_TEST)

valgrind: build
	GR_TEST_SANITIZE=valgrind $(SANITIZE_TEST)

# The catalogue puts memcheck among the long runs (40-50 min on 2 CPUs).
stress: valgrind
