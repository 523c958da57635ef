# Meridian: `make demo` and `make test` set up everything on a fresh Debian 12 machine.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
PY := /usr/bin/python3

.PHONY: all deps build demo test test-unit test-asan test-slow bench clean format

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/build.ninja: CMakeLists.txt tests/CMakeLists.txt | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)
	@ln -sf $(BUILD)/compile_commands.json compile_commands.json

demo: build
	@./scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -R unit

test-asan: deps
	cmake --preset asan-ubsan
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ctest --output-on-failure

test-slow: deps
	cmake --preset fuzz
	cmake --build build-fuzz -j $(JOBS) --target fuzz_query
	mkdir -p build-fuzz/corpus
	build-fuzz/tests/fuzz_query -max_total_time=600 build-fuzz/corpus tests/fuzz/corpus

bench: build
	$(PY) bench/run.py --meridian $(BUILD)/meridian

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz build-tsan
