# Two commands matter: `make demo` and `make test`. Everything else is a step they call.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The demo needs only the package and its `demo` extra (seconds to install, not the dev toolchain).
DEMO_STAMP := $(VENV)/.demo-stamp
DEMO_ARGS ?=
# The runtime extras the test suite exercises (its tools come from the `dev` dependency group).
TEST_EXTRAS := testing,demo,otel,redis,celery
# Debian packages the test suite drives for real (binary:package).
SYSTEM_DEPS := prometheus:prometheus promtool:prometheus chromium:chromium redis-server:redis-server
APT := $(shell [ "$$(id -u)" = 0 ] && echo apt-get || echo sudo apt-get)

.PHONY: demo test check lint typecheck pytest bench system-deps venv clean emulator

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$(TEST_EXTRAS)]' --group dev
	@touch $(STAMP)

system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do bin=$${dep%%:*}; pkg=$${dep##*:}; \
	  command -v $$bin >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(APT) update -qq && DEBIAN_FRONTEND=noninteractive $(APT) install -y -qq --no-install-recommends $$missing; \
	fi

$(DEMO_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then :; \
	  else $(PY) -m pip install --quiet --disable-pip-version-check -e '.[demo]'; fi
	@touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m cioguard demo $(DEMO_ARGS)

emulator: $(DEMO_STAMP)
	$(PY) -m cioguard emulator --port 8765

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples dashboards
	$(PY) -m ruff format --check src tests benchmarks examples dashboards

typecheck: $(STAMP)
	$(PY) -m mypy

check: lint typecheck

pytest: $(STAMP) system-deps
	$(PY) -m pytest

test: $(STAMP) system-deps
	$(MAKE) check
	$(MAKE) pytest

bench: $(STAMP)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[otel,demo]' --group bench
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache dist build
