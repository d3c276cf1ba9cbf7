# The two commands of the README:
#   make run    set everything up and run Storno on http://localhost:8000 with demo data
#   make test   set everything up and run the whole test suite (lint included)
# and the production processes (README, "Operating Storno"):
#   make serve  the Procfile's web, worker and beat under honcho, on PostgreSQL and Redis
# Both create ./.venv on first use and reinstall only when requirements.txt changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean serve

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

# Its source map: the file names it, and collectstatic's hashing storage (DEBUG off, make serve)
# refuses a reference to a file that isn't there.
static/vendor/chart.umd.min.js.map: static/vendor/chart.umd.min.js
	cp node_modules/chart.js/dist/chart.umd.min.js.map $@

run: $(STAMP) static/vendor/chart.umd.min.js
	DEBUG=1 $(PY) manage.py migrate --no-input
	DEBUG=1 $(PY) manage.py compilemessages --ignore=.venv -v0 || true
	DEBUG=1 $(PY) manage.py rundemo

# The production processes (Procfile) under honcho, stopped together by Ctrl-C or SIGTERM.
# DATABASE_URL (PostgreSQL), CELERY_BROKER_URL (Redis or RabbitMQ), SECRET_KEY and
# ALLOWED_HOSTS come from the environment; PORT (8000) is where gunicorn listens. Migrations,
# the cache table and static files are brought up to date first. Each process writes its
# metrics under PROMETHEUS_MULTIPROC_DIR, emptied here: the counters restart with the processes.
METRICS_DIR ?= var/prometheus
serve: $(STAMP) static/vendor/chart.umd.min.js.map
	@case "$$DATABASE_URL" in postgres://*|postgresql://*|postgis://*) ;; \
	  *) echo "make serve: set DATABASE_URL to a PostgreSQL database," \
	       "e.g. postgres://storno:PASSWORD@db.internal:5432/storno" >&2; exit 2;; esac
	@case "$$CELERY_BROKER_URL" in redis://*|rediss://*|sentinel://*|amqp://*|amqps://*) ;; \
	  *) echo "make serve: set CELERY_BROKER_URL to Redis (or RabbitMQ)," \
	       "e.g. redis://redis.internal:6379/0" >&2; exit 2;; esac
	$(PY) manage.py migrate --no-input
	$(PY) manage.py createcachetable
	$(PY) manage.py collectstatic --no-input -v0
	rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)
	PROMETHEUS_MULTIPROC_DIR=$(abspath $(METRICS_DIR)) PATH="$(abspath $(VENV))/bin:$$PATH" \
		exec $(VENV)/bin/honcho start $(if $(filter json,$(LOG_FORMAT)),--no-prefix) --port $${PORT:-8000}

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: lint static/vendor/chart.umd.min.js.map
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
