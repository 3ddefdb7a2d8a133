# The two commands of the README, and the steps they are made of.
#   make demo   install dependencies, build, run the end-to-end demo
#   make test   install dependencies, build, run the whole test suite (what CI runs)
#   make fuzz   build the libFuzzer harnesses (clang, ASan+UBSan), replay tests/fuzz/regressions
#               and run each harness for FUZZ_SECONDS (e.g. make fuzz FUZZ_SECONDS=600)
#   make test   ends with the same harnesses for FUZZ_TEST_RUNS inputs each from a fixed seed:
#               reproducible, so CI fails only on a real finding (docs/fuzzing.md)
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
FUZZ_SECONDS ?= 20
FUZZ_BUILD_DIR ?= $(BUILD_DIR)-fuzz
FUZZ_TEST_RUNS ?= 10000

.PHONY: all setup configure build test test-unit fuzz demo bench clean

all: build

setup:
	./scripts/setup.sh

configure: setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)
	./scripts/install_python.sh $(BUILD_DIR)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900
	FUZZ_JOBS=$(JOBS) FUZZ_RUNS=$(FUZZ_TEST_RUNS) FUZZ_TIMEOUT=120 ./scripts/fuzz.sh 0 $(FUZZ_BUILD_DIR)

test-unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

# clang + libFuzzer with ASan/UBSan, in its own build directory (scripts/fuzz.sh).
fuzz: setup
	FUZZ_JOBS=$(JOBS) ./scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BUILD_DIR)

demo: build
	./scripts/demo.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(FUZZ_BUILD_DIR)
