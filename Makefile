# Thin wrapper over CMake + ctest. `make demo` and `make test` each work alone on a fresh Debian
# machine: scripts/bootstrap.sh installs missing packages when run as root (else prints the
# apt-get line to run).
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
PREFIX     ?= /usr/local

.PHONY: all build bootstrap test test-isa demo bench bench-peers bench-python install asan fuzz interop clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Every test, every ISA variant this CPU has (the tests switch levels themselves).
test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The suite again with each lower ISA level forced (MSBNB_ISA; a level above the CPU's is capped to
# it): catches tests that assume the detected level, as a CPU without AVX-512 would run them.
test-isa: build
	@for l in scalar avx2 avx512 avx512_vnni; do \
	  echo "== MSBNB_ISA=$$l"; (cd $(BUILD) && MSBNB_ISA=$$l ctest --output-on-failure -j$(JOBS) -LE "install|python") || exit 1; done

# The main job on the real stories260K model (see README).
demo: build
	@bash scripts/demo.sh $(BUILD)

bench: build
	$(BUILD)/bench/msbnb_bench $(BENCH_ARGS)

# The training bench beside its peer (transformers + PEFT + bitsandbytes from the interop venv) at the
# same settings, ratios printed from one run (scripts/bench_peers.sh; BENCH_ARGS=--quick, MSBNB_THREADS).
bench-peers: build
	@bash scripts/bench_peers.sh $(BUILD)

# Per-call overhead of the Python package's QTensor.matmul above the C call (bench/python_overhead.py).
bench-python: build
	@bash scripts/pytest.sh --run $(BUILD) bench/python_overhead.py $(BENCH_ARGS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer, built with clang.
asan: bootstrap
	@CC=clang cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DMSBNB_SANITIZE=ON -DMSBNB_BUILD_BENCH=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

# libFuzzer targets (clang); FUZZ_SECONDS per target.
fuzz: bootstrap
	@bash scripts/fuzz.sh $(BUILD_FUZZ)

# Cross-checks against bitsandbytes / PEFT / transformers in a cached venv (~/.cache/msbnb-venv).
interop: build
	@bash scripts/interop.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
