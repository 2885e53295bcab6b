# GPTforAll — every target installs what it needs; a second run reinstalls nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= auto
ONLY   ?=

.PHONY: help venv assets course smoke test test-bars test-fast lint notebooks-sync clean

help:
	@echo "make course   run every notebook (profile: $(PROFILE)) and write reports/<profile>/results.md"
	@echo "make test     unit tests + every notebook in smoke (offline, Hub path, bf16) + notebook 04's cpu-profile bars"
	@echo "make smoke    run the course in the smoke profile (seconds per notebook)"
	@echo "make test-bars  every notebook's cpu-profile learning bar (long; CI runs only notebook 04's)"
	@echo "make lint     ruff"

# The stamp is newer than both pin files once installed; editing either reinstalls.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

assets: $(STAMP)
	$(BIN)/python -m gptforall_utils.assets fetch

course: assets
	$(BIN)/python -m gptforall_utils.course run --profile $(PROFILE) $(if $(ONLY),--only $(ONLY))

smoke: assets
	$(BIN)/python -m gptforall_utils.course run --profile smoke $(if $(ONLY),--only $(ONLY))

# Two notebooks at a time (pytest-xdist), each notebook's tests on one worker; TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= 2

test: assets
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-bars: assets
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "course_bars or cpu_profile"

test-fast: assets
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not notebooks and not cpu_profile"

lint: $(STAMP)
	$(BIN)/ruff check gptforall_utils tests benchmarks scripts

notebooks-sync: $(STAMP)
	$(BIN)/python -m gptforall_utils.notebooks sync

clean:
	rm -rf reports outputs notebooks/outputs .pytest_cache
