# make bench: the benchmark suite (issue 7). Included by the top-level Makefile.
#
#   make bench            build everything (the library, the C and pthread workloads in
#                         bench/, the Go programs when a Go can be had), run the criterion
#                         micro-benchmarks and their callgrind instruction counts
#                         (bench/icount.py, for the report), then bench/run.py: every workload on every
#                         system, interleaved, 5 rounds at 1 and 2 processors; writes
#                         bench/results/REPORT.md, raw.json and one SVG per workload
#                         (committed: the last full run on the reference machine)
#   make bench QUICK=1    reduced sizes, 3 rounds, no criterion (under 3 minutes); writes
#                         the same files into $(BENCH_QUICK_OUT) (git-ignored) and leaves
#                         bench/results/ alone
#   BENCH_ARGS="--only spawn,chanpp --rounds 3"   more bench/run.py options
#
# One recipe builds for both modes: `make -C bench go` prints why it skips Go when no
# toolchain can be had, and bench/run.py then reports Go as skipped.

BENCH_QUICK_OUT := $(TARGET_DIR)/bench
BENCH_OUT = $(if $(filter 1,$(QUICK)),$(BENCH_QUICK_OUT),bench/results)
BENCH_RUN_ARGS = $(if $(filter 1,$(QUICK)),--quick) --out $(BENCH_OUT) $(BENCH_ARGS)

.PHONY: bench
bench: build
	$(MAKE) -C bench
	$(MAKE) -C bench go
	$(if $(filter 1,$(QUICK)),,$(CARGO) bench)
	$(if $(filter 1,$(QUICK)),,@if command -v valgrind >/dev/null; then $(PYTHON) bench/icount.py; \
		else echo "no valgrind: REPORT.md goes without instruction counts"; fi)
	$(PYTHON) bench/run.py $(BENCH_RUN_ARGS)
	@echo "make bench$(if $(filter 1,$(QUICK)), QUICK=1): report and raw data in $(BENCH_OUT)/ (REPORT.md, raw.json, medians.tsv, *.svg)"

# make bench-check: instructions per micro-operation (microbench/icount.rs under
# valgrind --tool=callgrind, bench/icount.py) against bench/baseline/icount.json;
# fails on a rise over 10%. make bench-baseline rewrites the baseline (commit it).
# ICOUNT_ARGS="--top 10" prints where each op's instructions go.
.PHONY: bench-check bench-baseline
bench-check:
	$(PYTHON) bench/icount.py --check $(ICOUNT_ARGS)

bench-baseline:
	$(PYTHON) bench/icount.py --write-baseline --runs 3 $(ICOUNT_ARGS)
