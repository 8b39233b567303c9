# The two commands a new user needs: `make plan STACK=seoul-stage` and `make test`.
SHELL := /bin/bash
STACK ?= seoul-stage
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Debian packages whose real binaries the tests run (config checkers and daemons).
TEST_TOOLS := openssh-server shellcheck haproxy keepalived etcd-server etcd-client openssl curl

.PHONY: plan test test-tools bench lint clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

plan: $(STAMP)
	$(PY) -m offline.plan --stack $(STACK)

test: $(STAMP)
	$(PY) -m pytest -q tests
	$(VENV)/bin/ruff check .

RUNS ?= 3
bench: $(STAMP)
	$(PY) -m bench.plan_scale --runs $(RUNS)

test-tools:
	@missing=$$(for p in $(TEST_TOOLS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf build .pytest_cache
