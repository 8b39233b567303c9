# The two commands a new user needs: `make plan STACK=seoul-stage` and `make test`.
SHELL := /bin/bash
STACK ?= seoul-stage
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Debian packages whose real binaries the tests run (config checkers and daemons).
TEST_TOOLS := openssh-server shellcheck haproxy keepalived etcd-server etcd-client openssl curl chromium \
  openscap-scanner openscap-utils ssg-nondebian rpm systemd procps util-linux kmod auditd chrony \
  ceph-mon ceph-mgr ceph-osd ceph-mds ceph-common
# ... and the backup restore tests' data movers and database.
TEST_TOOLS += postgresql pgbackrest rclone
# ... promtool and amtool for the alert rules and Alertmanager's config (tests/test_observability.py)
TEST_TOOLS += prometheus prometheus-alertmanager
# ... firewalld's own code (firewall-offline-cmd) for scripts/firewalld.sh, gpg for the Fluent Bit
# key check (tests/test_host_agents.py)
TEST_TOOLS += firewalld gpg
# ... and the failure drills' lab (ip netns, nsenter/unshare/setpriv, sysctl).
TEST_TOOLS += iproute2

.PHONY: plan test test-tools bench lint clean venv diff promote-check drill

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# make turns any failing status into its own 2: CI calls .venv/bin/seoul-* to keep them (README).
plan: $(STAMP)
	@$(VENV)/bin/seoul-plan --stack $(STACK); status=$$?; \
	if [ $$status -le 1 ]; then $(VENV)/bin/seoul-report --stack $(STACK); fi; exit $$status

venv: $(STAMP)

# What `pulumi preview` would show between BASE and the working tree; also writes the report.
BASE ?= HEAD
diff: $(STAMP)
	@$(VENV)/bin/seoul-diff --stack $(STACK) --base $(BASE); status=$$?; \
	if [ $$status -ne 2 ]; then $(VENV)/bin/seoul-report --stack $(STACK); fi; \
	if [ $$status -eq 1 ]; then exit 0; else exit $$status; fi  # 1 = changes: a diff, not a failure

promote-check: $(STAMP)
	$(VENV)/bin/seoul-promote-check

test: $(STAMP)
	$(PY) -m pytest -q tests
	$(VENV)/bin/ruff check .

# Failure drills in network namespaces (root): report in build/drill/report.json.
drill: $(STAMP) test-tools
	$(PY) -m drill

RUNS ?= 5
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
