# SPDX-License-Identifier: MIT
# Thin wrapper over CMake. `make run` and `make test` work on a fresh Debian 12
# with only git and make: scripts/deps.sh installs everything else.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
CTEST_ARGS ?= --output-on-failure

.PHONY: all deps build run test test-release test-asan bench fuzz lint clean

all: build

deps:
	@bash scripts/deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLUXO_WERROR=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@bash scripts/run.sh $(BUILD)/fluxo

# Every test (unit, conformance, fuzz corpus replay, end-to-end), first on the
# release build, then again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: test-release test-asan

test-release: build
	@cd $(BUILD) && ctest $(CTEST_ARGS) -j$(JOBS)

test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DFLUXO_SANITIZE=ON -DFLUXO_WERROR=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS) -j$(JOBS)

bench: build
	@bash scripts/deps.sh bench
	@bash bench/run.sh $(BUILD)/fluxo

fuzz:
	@bash scripts/deps.sh fuzz
	@CC=clang cmake -S . -B build-fuzz -DFLUXO_FUZZ=ON -DFLUXO_WERROR=ON >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@bash scripts/fuzz.sh build-fuzz $(or $(FUZZ_SECONDS),60)

lint:
	@bash scripts/lint.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
