# Every target sets up its own virtual environment, so a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST := TF_CPP_MIN_LOG_LEVEL=2 $(abspath $(PY)) -m pytest -n 2 --dist loadfile -q

.PHONY: install test test-without-shared quick demo bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev,hed,runtime]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PYTEST)

# The suite as a user's clone runs it: a copy of the tracked files in a folder with no ../shared beside it
# (the tests that need the shared data skip; every other test must pass without it). .ci/run runs both.
test-without-shared: $(STAMP)
	rm -rf .test-without-shared && mkdir -p .test-without-shared/clone
	git ls-files -z | xargs -0 cp --parents -t .test-without-shared/clone
	cd .test-without-shared/clone && test ! -e ../shared && $(PYTEST) -p no:cacheprovider
	rm -rf .test-without-shared

# The fast loop while developing: everything except the tests marked slow (make test runs them all).
quick: $(STAMP)
	$(PYTEST) -m "not slow"

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) experiments/demo.py

bench: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) benchmarks/layer_overhead.py

clean:
	rm -rf $(VENV) build *.egg-info .test-without-shared
	rm -f delta_keras/runtime/__pycache__/*.nbi delta_keras/runtime/__pycache__/*.nbc
