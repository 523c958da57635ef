# Meridian: `make demo` and `make test` set up everything on a fresh Debian 12 machine.
# The builds made here treat warnings as errors (-DMERIDIAN_WERROR=ON, as the CMake presets do);
# a plain `cmake` build does not.
BUILD ?= build
ASAN_BUILD ?= build-asan
RELEASE_BUILD ?= build-release
PACKAGE_BUILD ?= build-package
JOBS ?= $(shell nproc)
PY := /usr/bin/python3

.PHONY: all deps build release package demo test test-package test-unit test-asan test-asan-ci test-slow bench clean format

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

# The Debian package (packaging/README.md): CPack DEB from the CMake install rules, built in its
# own tree with Debian's hardening flags (dpkg-buildflags), without the tests and benchmarks, and
# without -Werror (a packager's build). Writes $(PACKAGE_BUILD)/meridian_<version>_<arch>.deb.
PKG_FLAGS = DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get
$(PACKAGE_BUILD)/build.ninja: CMakeLists.txt packaging/CMakeLists.txt | deps
	cmake -S . -B $(PACKAGE_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	  -DMERIDIAN_BUILD_TESTS=OFF \
	  -DCMAKE_CXX_FLAGS="$$($(PKG_FLAGS) CPPFLAGS) $$($(PKG_FLAGS) CXXFLAGS)" \
	  -DCMAKE_EXE_LINKER_FLAGS="$$($(PKG_FLAGS) LDFLAGS)"

package: deps $(PACKAGE_BUILD)/build.ninja
	cmake --build $(PACKAGE_BUILD) -j $(JOBS)
	rm -f $(PACKAGE_BUILD)/meridian_*.deb
	cd $(PACKAGE_BUILD) && cpack
	@ls $(PACKAGE_BUILD)/meridian_*.deb

demo: build
	@./scripts/demo.sh $(BUILD)

# CI (`.ci/run`) is `make test`: every suite on $(BUILD), the Release compile, then the unit tests,
# the integration and steering suites and every fuzz corpus replayed again under ASan+UBSan
# (`test-asan-ci`).
test: build
	cd $(BUILD) && ctest --output-on-failure
	$(MAKE) --no-print-directory release
	$(MAKE) --no-print-directory test-package
	$(MAKE) --no-print-directory test-asan-ci

# The package itself: contents, dpkg install / upgrade / remove / purge in a throw-away root,
# lintian (tests/integration/packaging.py, sections deb and lintian).
test-package: package
	$(PY) tests/integration/packaging.py --meridian $(BUILD)/meridian --meridianctl $(BUILD)/meridianctl \
	  --deb $$(ls $(PACKAGE_BUILD)/meridian_*.deb) --only deb lintian

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -R unit

# The sanitizer tree: the asan-ubsan preset (Debug, -fsanitize=address,undefined, UBSan aborting),
# in its own directory so ccache keeps both trees cheap to rebuild. Any report fails the test: in a
# unit test or a fuzz replay the process aborts, and the integration scripts check each server's log
# for "AddressSanitizer" / "runtime error:" (common.CRASH_RE).
SAN_ENV := ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# What CI runs under the sanitizers; `docs` and `differential` only on $(BUILD).
ASAN_TESTS ?= ^(unit|integration|steering|fuzz_replay_.*)$$

$(ASAN_BUILD)/build.ninja: CMakeLists.txt tests/CMakeLists.txt CMakePresets.json | deps
	cmake --preset asan-ubsan

test-asan-ci: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && $(SAN_ENV) ctest --output-on-failure -R '$(ASAN_TESTS)'

test-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && $(SAN_ENV) ctest --output-on-failure

# Each fuzz target for FUZZ_SECONDS (fixed time, not a threshold), one after the other, on a corpus
# kept in build-fuzz/corpus-NAME and seeded from tests/fuzz/ (tests/fuzz/README.md lists them).
# The fuzz preset instruments every library (CMakeLists.txt). fuzz_mmdb also starts from MaxMind's
# test and bad-data databases in SHARED_DIR (read there, never copied into the repository), takes
# inputs as large as they are, and runs with tests/fuzz/lsan.supp (a libmaxminddb leak).
FUZZ_SECONDS ?= 300
SHARED_DIR ?= $(abspath ../shared)
FUZZ_TARGETS := fuzz_query:corpus fuzz_zonefile:zonefile_corpus fuzz_edns:edns_corpus \
                fuzz_response:response_corpus fuzz_config:config_corpus fuzz_mmdb:mmdb_corpus \
                fuzz_steered:steered_corpus
FUZZ_SEEDS_fuzz_mmdb := $(wildcard $(SHARED_DIR)/geoip $(SHARED_DIR)/geoip/bad-data)
FUZZ_MAX_LEN_fuzz_mmdb := 65536
FUZZ_ENV_fuzz_mmdb := LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp
fuzz_name = $(firstword $(subst :, ,$(1)))
define fuzz_run
	mkdir -p build-fuzz/corpus-$(call fuzz_name,$(1))
	$(FUZZ_ENV_$(call fuzz_name,$(1))) build-fuzz/tests/$(call fuzz_name,$(1)) -max_total_time=$(FUZZ_SECONDS) \
	  -max_len=$(or $(FUZZ_MAX_LEN_$(call fuzz_name,$(1))),4096) -print_final_stats=1 \
	  build-fuzz/corpus-$(call fuzz_name,$(1)) tests/fuzz/$(lastword $(subst :, ,$(1))) \
	  $(FUZZ_SEEDS_$(call fuzz_name,$(1)))

endef
test-slow: deps
	cmake --preset fuzz
	cmake --build build-fuzz -j $(JOBS) --target $(foreach t,$(FUZZ_TARGETS),$(call fuzz_name,$(t)))
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t)))

bench: build
	$(PY) bench/run.py --meridian $(BUILD)/meridian
	$(PY) bench/tcp.py --meridian $(BUILD)/meridian

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(RELEASE_BUILD) $(PACKAGE_BUILD) build-fuzz build-tsan
