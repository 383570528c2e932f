# make test: every suite, each run to the end even when one before it failed, then
# one line per suite and the list of skips (mk/test_suites.py). Included by the
# top-level Makefile.
#
#   make test                          all the suites below, in this order
#   make test TEST_SUITES="c python"   some of them
#   GR_REQUIRE_ALL=1 make test         a skip is a failure (.ci/run, which installs
#                                      every optional tool)
#
# The suites (each a separate command, so that one that does not even build cannot
# stop the others):
#   rust      the unit tests (src/) and every tests/*.rs not named below
#   c         the C test programs in tests/c/ (tests/c_tests.rs)
#   examples  the programs in c_examples/ (tests/examples.rs)
#   hook      the libc hook layer: plain libc calls and real client libraries on
#             goroutines, against servers the tests start (tests/hook.rs)
#   install   make install into a staging directory, builds against it (tests/install.rs)
#   docs      docs/api.md current, doc comments complete, the guide, the reliability map
#   python    the Python binding's pytest suite (bindings/python/run_tests.sh)
#
# A test that needs an optional tool (README: "Optional tools") prints
# `SKIP <test>: needs <tool> (Debian package <pkg>)` and passes; the summary counts and
# lists those lines, which the tests append to $(TEST_LOGS)/<suite>.skips. Every
# suite's output is in $(TEST_LOGS)/<suite>.log, the summary in summary.txt.

TEST_SUITES ?= rust c examples hook install docs python
TEST_LOGS   := $(abspath $(TARGET_DIR))/test-logs

# tests/*.rs (one cargo test target each) that make up the suites other than rust.
TEST_FILES_c        := c_tests
TEST_FILES_examples := examples
TEST_FILES_hook     := hook
TEST_FILES_install  := install
TEST_FILES_docs     := docs reliability_map
TEST_FILES_rust     := $(filter-out $(TEST_FILES_c) $(TEST_FILES_examples) $(TEST_FILES_hook) \
	$(TEST_FILES_install) $(TEST_FILES_docs),$(basename $(notdir $(wildcard tests/*.rs))))

CARGO_TEST := $(CARGO) test --release --no-fail-fast
TEST_rust     = $(CARGO_TEST) --lib $(addprefix --test ,$(TEST_FILES_rust))
TEST_c        = $(CARGO_TEST) $(addprefix --test ,$(TEST_FILES_c))
TEST_examples = $(CARGO_TEST) $(addprefix --test ,$(TEST_FILES_examples))
TEST_hook     = $(CARGO_TEST) $(addprefix --test ,$(TEST_FILES_hook))
TEST_install  = $(CARGO_TEST) $(addprefix --test ,$(TEST_FILES_install))
TEST_docs     = $(CARGO_TEST) $(addprefix --test ,$(TEST_FILES_docs))
# Under CI (CI set), also pip-installs the package and runs the suite on that copy.
TEST_python   = PACKAGE=$${CI:+1} bindings/python/run_tests.sh

# The test programs of the chosen cargo suites, built in one cargo run first (it keeps
# both CPUs busy where one suite's few targets would not); a target that does not
# build fails its suite below, and the other suites still run.
TEST_PROGRAMS = $(if $(filter-out python,$(TEST_SUITES)),$(CARGO_TEST) --no-run \
	$(if $(filter rust,$(TEST_SUITES)),--lib) \
	$(addprefix --test ,$(foreach s,$(TEST_SUITES),$(TEST_FILES_$(s)))))

.PHONY: test
test: build
	@command -v $(PYTHON) >/dev/null || { echo "make test needs $(PYTHON): Python 3.11 to 3.13 with venv" \
		"(Debian packages python3 python3-venv; README)" >&2; exit 1; }
	@$(if $(TEST_PROGRAMS),$(TEST_PROGRAMS) || echo "make test: not every test program built: see below")
	@$(PYTHON) mk/test_suites.py --logs $(TEST_LOGS) $(foreach s,$(TEST_SUITES),'$(s)=$(TEST_$(s))')
