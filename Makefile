# Meridian: `make demo` and `make test` set up everything on a fresh Debian 12 machine.
# The builds made here treat warnings as errors (-DMERIDIAN_WERROR=ON, as the CMake presets do);
# a plain `cmake` build does not.
BUILD ?= build
ASAN_BUILD ?= build-asan
RELEASE_BUILD ?= build-release
JOBS ?= $(shell nproc)
PY := /usr/bin/python3

.PHONY: all deps build release demo test test-unit test-asan test-slow bench clean format

all: build

deps:
	@./scripts/deps.sh

$(BUILD)/build.ninja: CMakeLists.txt tests/CMakeLists.txt | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMERIDIAN_WERROR=ON

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)
	@ln -sf $(BUILD)/compile_commands.json compile_commands.json

# What a packager builds (-O3, no debug info), so optimiser-only warnings fail CI too. Compiled,
# not tested again: the tests run on $(BUILD). ccache keeps rebuilds cheap.
$(RELEASE_BUILD)/build.ninja: CMakeLists.txt tests/CMakeLists.txt | deps
	cmake -S . -B $(RELEASE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DMERIDIAN_WERROR=ON

release: deps $(RELEASE_BUILD)/build.ninja
	cmake --build $(RELEASE_BUILD) -j $(JOBS)

demo: build
	@./scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure
	$(MAKE) --no-print-directory release

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
	$(PY) bench/tcp.py --meridian $(BUILD)/meridian

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(RELEASE_BUILD) build-fuzz build-tsan
