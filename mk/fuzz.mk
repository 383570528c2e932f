# make fuzz: the libFuzzer harness over the C ABI (issue 8).
# Included by the top-level Makefile.
#
#   make fuzz [FUZZ_SECONDS=300]   build fuzz/ instrumented and run libFuzzer that long
#   make fuzz-short                 the same for 60 s (part of make stress)
#   make fuzz-build                 only build fuzz/target/.../api_script
#
# fuzz/ is a package of its own (own Cargo.lock, own target dir fuzz/target). It is
# built on stable Rust with the coverage flags cargo-fuzz passes (sancov module pass,
# inline 8-bit counters, PC table, compare tracing) and an explicit --target, so that
# RUSTFLAGS reach only target code: build scripts (the runtime's assembly via cc) and
# proc macros stay uninstrumented. The target (fuzz/fuzz_targets/api_script.rs) runs
# scripts of API calls from fuzz/src/script.rs; tests/fuzz_scripts.rs replays the same
# interpreter in make test.
#
# New corpus entries go to $(TARGET_DIR)/fuzz/corpus (fuzz/corpus_seed is read too);
# a finding is saved as $(TARGET_DIR)/fuzz/artifacts/crash-* and the run fails.
# Replay one: fuzz/target/x86_64-unknown-linux-gnu/release/api_script FILE
# GR_FUZZ_THREAD_LOCK=0 make fuzz leaves out the gr_lock_thread ops.

FUZZ_SECONDS  ?= 300
FUZZ_TRIPLE   := x86_64-unknown-linux-gnu
FUZZ_BIN      := fuzz/target/$(FUZZ_TRIPLE)/release/api_script
FUZZ_OUT      := $(abspath $(TARGET_DIR))/fuzz
FUZZ_RUSTFLAGS := -Cpasses=sancov-module \
	-Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
	-Cllvm-args=-sanitizer-coverage-pc-table \
	-Cllvm-args=-sanitizer-coverage-trace-compares \
	--cfg fuzzing

.PHONY: fuzz fuzz-short fuzz-build

fuzz-build:
	cd fuzz && CARGO_TARGET_DIR=$(CURDIR)/fuzz/target RUSTFLAGS="$(FUZZ_RUSTFLAGS)" \
		$(CARGO) build --release --target $(FUZZ_TRIPLE) --bin api_script

# -timeout is above the harness's own hang limit (20 s, which dumps the goroutines);
# -max_len fits the largest script the decoder reads.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_OUT)/corpus $(FUZZ_OUT)/artifacts
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -timeout=60 -max_len=1200 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/artifacts/ \
		$(FUZZ_OUT)/corpus fuzz/corpus_seed

fuzz-short:
	$(MAKE) fuzz FUZZ_SECONDS=60

stress: fuzz-short
