# mailsim: the two commands of the quick start are `make demo` and `make test`.
#
# PYTHON is the interpreter the virtual environment is made with; mailsim needs 3.11 or newer.
# Without PYTHON=..., the first of python3, python3.13, python3.12, python3.11 that is new enough
# is used. A .venv made by another Python version (or whose Python is gone) is rebuilt.
PYTHON_CANDIDATES := python3 python3.13 python3.12 python3.11
# What an interpreter says about itself: "3 11 1" (major, minor, 1 if new enough), or nothing
# when it does not run.
version_of = $(shell $(1) -c 'import sys; print(*sys.version_info[:2], int(sys.version_info >= (3, 11)))' 2>/dev/null)
new_enough = $(filter 1,$(word 3,$(1)))
dotted = $(word 1,$(1)).$(word 2,$(1))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach p,$(PYTHON_CANDIDATES),$(if $(call new_enough,$(call version_of,$(p))),$(p))) python3)
endif
WANT   := $(call version_of,$(PYTHON))
VENV   := .venv
PY     := $(VENV)/bin/python
HAVE   := $(call version_of,$(PY))
# The stamps name the Python version, so a .venv of another version is never taken as ready.
STAMP  := $(VENV)/.installed-$(call dotted,$(WANT))
TSTAMP := $(VENV)/.installed-test-$(call dotted,$(WANT))

.PHONY: demo test bench lint venv clean python-check notebooks

python-check:
	@if [ -z "$(WANT)" ]; then \
	  echo "mailsim needs Python 3.11+, and '$(PYTHON)' does not run; install it, then: make demo PYTHON=python3.11"; exit 1; \
	elif [ -z "$(call new_enough,$(WANT))" ]; then \
	  echo "mailsim needs Python 3.11+, but $(PYTHON) is $(call dotted,$(WANT)); install 3.11 or newer, then: make demo PYTHON=python3.11"; exit 1; \
	fi

$(STAMP): pyproject.toml | python-check
	@if [ -d $(VENV) ] && [ "$(HAVE)" != "$(WANT)" ]; then \
	  echo "rebuilding $(VENV): it was made by $(if $(HAVE),Python $(call dotted,$(HAVE)),a Python that is gone), not $(call dotted,$(WANT))"; \
	  rm -rf $(VENV); \
	fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(TSTAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mailsim demo

test: $(TSTAMP)
	$(PY) -m pytest -q

notebooks: $(STAMP)
	$(PY) -m pip install -q -e '.[notebooks]'
	$(VENV)/bin/jupyter lab notebooks/

bench: $(TSTAMP)
	$(PY) benchmarks/run.py $(BENCH)

lint: $(TSTAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) runs build *.egg-info
