# Every development task. `make help` lists them.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
FUZZ_SECONDS ?= 60
# pytest-xdist workers: most tests wait on sockets and clocks, not the CPU, so four
# on two cores finish the suite in a third of the time one takes (3 min against 10)
JOBS ?= 4
PYTEST := $(PYTHON) -m pytest -p no:cacheprovider -n $(JOBS) --dist load

.PHONY: help install wheel demo check test test-rust test-python lint fmt fuzz fuzz-smoke bench vectors clean autobahn autobahn-env original-env system-deps

help: ## list the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## build the Rust core and install tremolo (editable) with test and dev tools
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]'

demo: ## install and run the hello-world demo on http://127.0.0.1:8000/hello
	$(PIP) install --quiet --disable-pip-version-check .
	$(PYTHON) examples/hello.py

check: lint ## the quick loop (under a minute): lint, then the tests of tests/core, protocols, framework and interfaces that are neither slow nor need another program (after a Rust change: make install first)
	$(PYTEST) -m "not slow and not external" tests/core tests/protocols tests/framework tests/interfaces

test: install system-deps autobahn-env original-env lint test-rust test-python fuzz-smoke ## set up a fresh machine and run every check and test

test-rust: ## cargo test: the core, with the shared vectors
	cargo test --quiet

test-python: ## pytest, every test, on JOBS (4) workers; pytest -m "not slow" or -m "not external" for part
	$(PYTEST)

lint: ## ruff, mypy, stub check, rustfmt, clippy
	$(PYTHON) -m ruff check python tests bench examples tools
	$(PYTHON) -m mypy
	$(PYTHON) tools/check_layers.py
	$(PYTHON) -m mypy.stubtest tremolo._core
	cargo fmt --check
	cargo clippy --quiet --all-targets --features python -- -D warnings
	cargo clippy --quiet --all-targets -- -D warnings

fmt: ## format the Rust code
	cargo fmt

fuzz: ## fuzz the request parser, the WebSocket decoder and the PROXY header parser, FUZZ_SECONDS (60) seconds each
	cargo install --quiet --locked cargo-fuzz
	mkdir -p fuzz/corpus/parse_request fuzz/corpus/ws_frames fuzz/corpus/proxy_header
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run parse_request corpus/parse_request seeds/parse_request \
		-- -max_total_time=$(FUZZ_SECONDS) -max_len=4096
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ws_frames corpus/ws_frames seeds/ws_frames \
		-- -max_total_time=$(FUZZ_SECONDS) -max_len=4096
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run proxy_header corpus/proxy_header seeds/proxy_header \
		-- -max_total_time=$(FUZZ_SECONDS) -max_len=4096

fuzz-smoke: ## a short fuzz run (15 s)
	$(MAKE) fuzz FUZZ_SECONDS=15

wheel: install ## release wheels (manylinux_2_17, one per CPython found) and the sdist, in dist/
	$(PYTHON) tools/build_wheels.py --out dist

bench: install system-deps ## tremolo and its peers under wrk, side by side (see bench/README.md)
	$(PYTHON) bench/run.py

system-deps: ## Debian packages the tests and benchmarks use (nginx, openssl, wrk, libuv1 for socketify.py), installed when missing (root)
	@{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 && command -v openssl >/dev/null \
		&& command -v wrk >/dev/null && /sbin/ldconfig -p | grep -q 'libuv\.so\.1 ' || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light openssl wrk libuv1; }

original-env: ## the original Tremolo 0.5.3 in .venv-tremolo053/ (differential tests, benchmarks)
	@$(PYTHON) tools/original_env.py .venv-tremolo053 >/dev/null

autobahn-env: ## install Autobahn|Testsuite (wstest, Python 2.7) in .autobahn/
	@test -x .autobahn/bin/wstest || $(PYTHON) tools/autobahn_env.py .autobahn

autobahn: install autobahn-env ## every Autobahn|Testsuite case against the native and ASGI echo servers
	$(PYTHON) tests/autobahn/run.py --out .autobahn/reports --summary docs/autobahn-summary.md

vectors: ## regenerate tests/vectors/h1/llhttp.json from ../shared/conformance/llhttp
	$(PYTHON) tests/vectors/import_llhttp.py

clean: ## remove build output
	cargo clean
	rm -rf python/tremolo/*.so .pytest_cache .mypy_cache .ruff_cache .hypothesis dist
