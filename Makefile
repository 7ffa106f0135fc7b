# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-deps run test bench clean

install: system-deps $(STAMP)

system-deps:
	@bash scripts/install-system.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[cli,test]'
	@touch $(STAMP)

run: install
	$(VENV)/bin/dockyardd

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# the long chaos round (tests/security/chaos.py) follows the side-by-side figures; CHAOS_SECONDS=0 skips it
CHAOS_SECONDS ?= 600
bench: install
	$(PY) -m bench $(BENCH_ARGS)
	@if [ "$(CHAOS_SECONDS)" != 0 ]; then $(PY) tests/security/chaos.py --seconds $(CHAOS_SECONDS); fi

clean:
	rm -rf $(VENV) build src/*.egg-info
