# make bench / make bench-check: the benchmark suite (issue 7).
# Included by the top-level Makefile.

.PHONY: bench
bench: build
	$(CARGO) bench
	$(MAKE) -C bench
	bench/python/run.sh
