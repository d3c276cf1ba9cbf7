# The two commands of the README:
#   make run    set everything up and run Storno on http://localhost:8000 with demo data
#   make test   set everything up and run the whole test suite (lint included)
# Both create ./.venv on first use and reinstall only when requirements.txt changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# Chart.js for the dashboard, from npm (pinned in package-lock.json), served as a static file.
static/vendor/chart.umd.min.js: package.json package-lock.json
	npm ci --no-audit --no-fund
	mkdir -p static/vendor
	cp node_modules/chart.js/dist/chart.umd.min.js $@

run: $(STAMP) static/vendor/chart.umd.min.js
	DEBUG=1 $(PY) manage.py migrate --no-input
	DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv -v0 || true
	DEBUG=1 $(PY) manage.py rundemo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: lint static/vendor/chart.umd.min.js
	DATABASE_URL= DEBUG=1 $(PY) manage.py makemigrations --check --dry-run -v1
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Full-page PNGs of the staff pages (cancel form, dashboard) for the docs, from the browser tests.
.PHONY: screenshots
screenshots: $(STAMP) static/vendor/chart.umd.min.js
	STORNO_SCREENSHOT_DIR=docs/screenshots $(VENV)/bin/pytest tests/browser -m browser -q $(PYTEST_ARGS)

# After adding or changing user-facing strings: refresh the de/tr catalogs, translate the new
# entries (tests/backoffice/test_catalogs.py fails until every one is), then compile.
.PHONY: messages
messages: $(STAMP)
	DEBUG=1 $(PY) manage.py makemessages -l de -l tr --ignore=.venv --ignore=node_modules \
		--ignore=var --ignore=static/vendor --ignore=tests --ignore=bench
	DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv -v0

clean:
	rm -rf var .pytest_cache
