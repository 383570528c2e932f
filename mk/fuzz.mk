# make fuzz: the libFuzzer harness over the C ABI (issue 8).
# Included by the top-level Makefile.
