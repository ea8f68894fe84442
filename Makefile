# djshare: every target installs what it needs on a fresh Debian machine (Python 3.11, pip, apt, root).
VENV ?= .venv
PY := $(VENV)/bin/python
# DataJoint 2.x cannot share an environment with 0.14: its tests (tests_dj2) run in a second one.
VENV2 ?= .venv2
PY2 := $(VENV2)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:/usr/sbin:$(PATH)

.PHONY: help system-deps venv lint typecheck test test-all demo bench bench-large docs clean

help:
	@echo "make demo      end-to-end link demo against throw-away local servers"
	@echo "make test      ruff, mypy and the test suites: DataJoint 0.14 (.venv) and 2.x (.venv2)"
	@echo "make test-all  the test suite with every fault-injection case"
	@echo "make bench     pull, store, export and diff benchmarks against same-run baselines"
	@echo "make bench-large  the pull benchmark at 1,000,000 masters (minutes)"
	@echo "make docs      regenerate docs/cli.md and docs/link-states.md"

# MariaDB server and client binaries (mariadbd, mariadb-install-db, mariadb, mariadb-dump).
system-deps:
	@if ! command -v mariadbd >/dev/null 2>&1 || ! command -v mariadb-dump >/dev/null 2>&1; then \
		echo "installing MariaDB from Debian packages"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-client; \
	fi
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then \
		echo "installing PostgreSQL from Debian packages"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dj014]'
	touch $@

$(VENV2)/.installed: pyproject.toml
	python3 -m venv $(VENV2)
	$(PY2) -m pip install -q --upgrade pip
	$(PY2) -m pip install -q -e '.[dj2]' 'pytest>=8'
	touch $@

venv: $(VENV)/.installed $(VENV2)/.installed

lint: venv
	$(VENV)/bin/ruff check src tests tests_dj2 bench scripts

typecheck: venv
	$(VENV)/bin/mypy

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: system-deps venv lint typecheck
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc
	$(PY2) -m pytest -q tests_dj2; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

test-all: system-deps venv lint typecheck
	$(PY) -m pytest -q -m ''
	$(PY2) -m pytest -q -m '' tests_dj2

demo: system-deps venv
	$(PY) scripts/demo.py

bench: system-deps venv
	$(PY) bench/bench_pull.py
	$(PY) bench/bench_pull.py --latency-ms 10
	$(PY) bench/bench_stores.py
	$(PY) bench/bench_pull_pg.py
	$(PY) bench/bench_pg_link.py
	$(PY) bench/bench_export.py
	$(PY) bench/bench_diff.py --reladiff

# the pull benchmark at 1,000,000 masters + 2,000,000 parts (minutes; peak RSS printed)
bench-large: system-deps venv
	$(PY) bench/bench_pull.py --masters 1000000

docs: venv
	$(PY) -m djshare.docs.generate .

clean:
	rm -rf $(VENV) $(VENV2) .pytest_cache .mypy_cache .ruff_cache
