# xfr task runner: the targets a person types are the ones CI runs (.ci/run = setup + test).
#
#   make setup   virtual environment .venv with the pinned requirements, xfr_lib (editable),
#                the book's JavaScript from npm, headless Chromium (as root, if missing),
#                and every model/image fetched and verified (xfr fetch)
#   make test    library tests, notebooks under nbval, the book built with -W, browser check
#   make book    run every chapter with its book parameters, build the site offline
#                (make chapters: only run them; CHAPTERS=01_face_recognition: only that one)
#   make bench   run every benchmark in bench/
#   make lint    ruff
#   make clean   remove build/ and out/ (never the asset cache)
#
# Outputs: build/notebooks/<chapter>/ (executed chapter + figures + parameters.yaml),
# build/book/_build/html/index.html (the site), build/nbval/<chapter>/ (notebooks as
# tested), build/screenshots/ (what tests/test_book.py saw in Chromium).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON_SYS ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# pytest-xdist workers for the library tests. Measured on 2 cores (258 tests): 292 s in one
# process against 513 s with -n 2; the heavy tests already use both cores through torch, and
# two workers only add start-up cost and thread contention. PYTEST_WORKERS=2 to try again.
PYTEST_WORKERS ?= 0
BUILD := build
NPM_DIR := $(BUILD)/npm
VENDOR_STAMP := $(NPM_DIR)/node_modules/.package-lock.json
BOOK_SRC := $(BUILD)/book/src
BOOK_HTML := $(BUILD)/book/_build/html

CHAPTERS := $(basename $(notdir $(wildcard notebooks/[0-9][0-9]_*.md)))
CHAPTER_STAMPS := $(foreach c,$(CHAPTERS),$(BUILD)/notebooks/$(c)/.done)
LIB_SRC := $(shell find xfr_lib -name '*.py' -not -path '*/__pycache__/*') data_manifest.yaml
BOOK_PAGES := $(wildcard book/*.md book/*.yml book/*.bib)

# Chapters and tests draw on two cores; keep BLAS/torch from oversubscribing them.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup venv vendor browser fetch test test-lib test-notebooks test-book chapters book \
	bench lint clean

# --- setup ----------------------------------------------------------------------------------

setup: venv vendor browser fetch

venv:
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .

vendor: $(VENDOR_STAMP)

# MathJax, RequireJS and the ipywidgets HTML manager at the exact versions of
# book/package-lock.json; staged into the book by the `book` target, never loaded from a CDN.
$(VENDOR_STAMP): book/package.json book/package-lock.json
	mkdir -p $(NPM_DIR)
	cp book/package.json book/package-lock.json $(NPM_DIR)/
	npm ci --prefix $(NPM_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# The browser check of the book needs Debian's chromium; install it when running as root.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then \
	  echo "chromium: $$(command -v chromium || command -v chromium-browser)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
	  echo "warning: chromium not found and not root; install it for tests/test_book.py" >&2; \
	fi

fetch:
	$(BIN)/xfr fetch

# --- tests ----------------------------------------------------------------------------------

test: test-lib test-notebooks test-book

test-lib:
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) tests --ignore=tests/test_book.py

# nbval cannot read MyST: tests/notebooks/run_nbval.py converts every chapter with jupytext
# into build/nbval/<chapter>/ and checks that each cell runs with the small defaults
# (--nbval-lax: outputs are not compared). NBVAL_CHAPTERS="1 3" runs only those.
NBVAL_CHAPTERS ?=
test-notebooks:
	$(PY) tests/notebooks/run_nbval.py $(NBVAL_CHAPTERS)

test-book: book
	$(BIN)/pytest -q tests/test_book.py

# --- book -----------------------------------------------------------------------------------

# One executed chapter, run with its book parameters (if any): rerun when its notebook, its
# parameter files or the library change. The .done stamp is written only on success, so a
# failed chapter is rerun next time and its partial notebook stays for inspection.
.SECONDEXPANSION:
$(BUILD)/notebooks/%/.done: notebooks/%.md $$(wildcard notebooks/params/$$*-*.yaml) $(LIB_SRC)
	$(PY) -m xfr_lib.runner $* --no-progress --out $(@D) \
	  $(if $(wildcard notebooks/params/$*-book.yaml),-f notebooks/params/$*-book.yaml)
	touch $@

chapters: $(CHAPTER_STAMPS)

book: $(BOOK_HTML)/index.html

$(BOOK_HTML)/index.html: $(CHAPTER_STAMPS) $(BOOK_PAGES) $(VENDOR_STAMP)
	rm -rf $(BOOK_SRC) && mkdir -p $(BOOK_SRC)/_vendor/mathjax $(BOOK_SRC)/_vendor/html-manager \
	  $(BOOK_SRC)/_vendor/requirejs
	cp $(BOOK_PAGES) $(BOOK_SRC)/
	cp $(foreach c,$(CHAPTERS),$(BUILD)/notebooks/$(c)/$(c).ipynb) $(BOOK_SRC)/
	cp -r $(NPM_DIR)/node_modules/mathjax/es5 $(BOOK_SRC)/_vendor/mathjax/
	cp $(NPM_DIR)/node_modules/mathjax/LICENSE $(BOOK_SRC)/_vendor/mathjax/
	find $(NPM_DIR)/node_modules/@jupyter-widgets/html-manager/dist -maxdepth 1 -type f \
	  -not -name '*.map' -exec cp {} $(BOOK_SRC)/_vendor/html-manager/ \;
	cp $(NPM_DIR)/node_modules/requirejs/require.js $(BOOK_SRC)/_vendor/requirejs/
	$(BIN)/jupyter-book build $(BOOK_SRC) --path-output $(BUILD)/book -W --keep-going -n --quiet
	touch $@

# --- other ----------------------------------------------------------------------------------

bench:
	@set -e; for f in bench/*.py; do echo "== $$f"; $(PY) $$f; done

lint:
	$(BIN)/ruff check xfr_lib tests bench

clean:
	rm -rf $(BUILD) out
