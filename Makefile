# Thin wrapper over CMake; see README.md. Every target that builds first makes sure the
# Debian packages it needs are installed (scripts/deps.sh is idempotent).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= conf/quickstart.yaml

# Every C file clang-format keeps in shape (`make format`, `make format-check`).
FORMAT_FILES = $(shell git ls-files 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]')

.PHONY: docs all deps deps-test build build-asan run test test-release test-asan test-fuzz bench \
        bench-quick clean format format-check cppcheck package

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test
	@scripts/npm-test-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps-test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMARS_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	$(BUILD)/mars -c $(CONFIG)

# Formatting and static analysis first: they take seconds, the suites minutes.
test: deps-test
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory cppcheck
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-fuzz

# libFuzzer targets (JSON scanner, condition parser) need clang; 20 s each.
FUZZ_BUILD ?= build-fuzz
test-fuzz: deps-test
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMARS_WERROR=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers
	cd $(FUZZ_BUILD) && ctest --output-on-failure -j $(JOBS) -R '^fuzz/'

# The release suite runs once per io backend, so every feature is proven on both; the
# backend conformance suites pick their backend themselves and run in the first pass only.
test-release: build
	scripts/test-backends.sh $(BUILD) $(JOBS)

test-asan: build-asan
	cd $(ASAN_BUILD) && MARS_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

# bench/run needs /usr/bin/python3 and gnuplot (for the chart): both are test packages
bench: deps-test build
	bench/run

bench-quick: deps-test build
	bench/run --quick

format:
	clang-format -i $(FORMAT_FILES)

# Fails on files clang-format would change, and names them; changes nothing.
format-check: deps-test
	@scripts/format-check.sh $(FORMAT_FILES)

# cppcheck over what the release build compiles of src/; fails on any finding (about 10 s).
cppcheck: deps-test build
	@scripts/cppcheck.sh $(BUILD)

# The .deb (CPack, cmake/install.cmake), laid out at /usr whatever the build's prefix, with
# a stripped binary: $(BUILD)/mars_<version>_<arch>.deb
package: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target mars mars_man
	cd $(BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

docs: build
	$(BUILD)/mars describe --markdown > docs/reference.md
