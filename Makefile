# The README's commands. `make run` serves the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: install run dev test bench lint format clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/activate requirements.txt requirements-dev.txt
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py load_seeds
	$(BIN)/gunicorn --config gunicorn.conf.py

dev: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_seeds
	DJANGO_DEBUG=1 $(PY) manage.py runserver 127.0.0.1:8000

test: install
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; fi
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(BIN)/pytest

# The quick benchmarks (N = 1,000 and 10,000); BENCHMARKS.md has the full runs.
bench: install
	$(PY) bench/ingest.py --sizes 1000,10000 --repeat 3
	$(PY) bench/serve.py --sizes 1000,10000 --repeat 3 --duration 3

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var/staticfiles
