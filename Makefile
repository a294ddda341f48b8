# The two commands: `make run` (serve the dashboard with demo data) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
PYTEST_ARGS ?=
# xdist workers: three on CI's 2 cores. While one waits on PostgreSQL, Chromium or a live
# server, another runs (measured on the whole suite: 384 s with 2, 321 s with 3, 324 s with 4).
PYTEST_WORKERS ?= 3
export FLASK_APP := wsgi.py

.PHONY: run test test-quick lint typecheck pytest bench soak clean

# Installs and migrations write to a log and show it only when they fail, so the first
# `make run` ends with what a person needs: the URL and the demo logins.
QUIETLY = > $(VENV)/last-step.log 2>&1 || { cat $(VENV)/last-step.log; exit 1; }

$(BIN)/python:
	@echo "Creating $(VENV) (the first run installs Flagpost; it takes a minute or two)"
	@$(PYTHON) -m venv $(VENV)

$(BIN)/uv: $(BIN)/python
	@$(BIN)/python -m pip install --quiet 'uv>=0.5,<1' $(QUIETLY)

# Stamp files re-run the install only when the dependency lists change. uv (from PyPI, into
# the venv) installs the same packages from the same index as pip, in a fifth of the time
# (measured on a fresh venv: 15 s instead of 71 s for the test extras).
UV_INSTALL = $(BIN)/uv pip install --quiet --python $(BIN)/python
$(VENV)/.installed: $(BIN)/uv setup.cfg pyproject.toml
	@echo "Installing Flagpost and its dependencies into $(VENV)"
	@$(UV_INSTALL) -e . $(QUIETLY)
	@touch $@

# One install for the package and its test extras (a second run would resolve it all again).
$(VENV)/.installed-test: $(BIN)/uv setup.cfg pyproject.toml
	$(UV_INSTALL) -e '.[test]'
	@touch $(VENV)/.installed $@

run: $(VENV)/.installed
	@$(BIN)/flask db upgrade $(QUIETLY)
	@$(BIN)/flask seed-demo --no-print-logins
	@echo
	@echo "Flagpost is starting on http://127.0.0.1:$(PORT)/ (real-time streams on port $$(($(PORT) + 1)))"
	@$(BIN)/flask demo-logins
	@# The stream server runs beside the dashboard; Ctrl-C stops both.
	@trap 'kill $$streams 2>/dev/null; wait $$streams 2>/dev/null' EXIT INT TERM; \
	  PORT=$(PORT) $(BIN)/flask run-streams --port $$(($(PORT) + 1)) & streams=$$!; \
	  PORT=$(PORT) $(BIN)/flask run --host 127.0.0.1 --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy webapp/evaluation webapp/services

# The whole truth: every test module on the databases it declares (PostgreSQL too when
# TEST_DATABASE_URL is set), the browser tests, Hypothesis's `ci` profile; in parallel.
# --dist loadgroup keeps an xdist_group (a module-scoped live server) on one worker.
# Python writes its bytecode caches (git-ignored __pycache__) during the tests even where the
# machine sets PYTHONDONTWRITEBYTECODE (an empty value turns it off): otherwise every process
# compiles all it imports anew, and the tests that start `flask` processes (the stream server,
# a second app server) waited for each to compile the whole app and its libraries again
# (measured: 34 s for one such test without caches, 11 s with them).
pytest: $(VENV)/.installed-test
	PYTHONDONTWRITEBYTECODE= HYPOTHESIS_PROFILE=$${HYPOTHESIS_PROFILE:-ci} \
	  $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# pytest exits 5 when it collects nothing, which fails this target too: an empty run never passes.
# ruff and mypy (seconds of one core) run beside pytest instead of before it; output lines stay
# whole, and any of the three failing fails `make test`.
test: $(VENV)/.installed-test
	@$(MAKE) --no-print-directory -j3 --output-sync=line lint typecheck pytest

# The local loop: SQLite only, Hypothesis's quick `dev` profile, no browser. `make test`
# stays the whole truth (and is what CI runs).
test-quick: $(VENV)/.installed-test
	PYTHONDONTWRITEBYTECODE= FLAGPOST_TEST_DATABASES=sqlite HYPOTHESIS_PROFILE=dev \
	  $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not browser" $(PYTEST_ARGS)

# Benchmarks print their figures and, last, the ratio each is judged by.
bench: $(VENV)/.installed-test
	$(BIN)/python bench/evaluation.py
	$(BIN)/python bench/sdk_api.py
	$(BIN)/python bench/analytics.py
	$(BIN)/python bench/realtime.py

# Soak: 60 s of mixed SDK + dashboard traffic on gunicorn + PostgreSQL, then consistency checks
# (no 5xx, no lost trait write, every change audited, worker memory growth < 10%).
soak: $(VENV)/.installed-test
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
