# xfr task runner: the targets a person types are the ones CI runs (.ci/run = setup + test).
#
#   make setup   virtual environment .venv with the pinned requirements, xfr_lib (editable),
#                the book's JavaScript from npm, headless Chromium (as root, if missing),
#                and every model/image fetched and verified (xfr fetch)
#   make setup WHEELHOUSE=DIR   the same with no network, from a folder of make wheelhouse
#                (checked first; pip --no-index, npm ci --offline, xfr fetch --from)
#   make wheelhouse   write build/wheelhouse/: every pinned wheel, the book's JavaScript, every
#                model/image archive of the manifest, the source, with checksums
#   make test    library tests and docstring examples; every chapter executed once with its
#                book parameters under nbval (these executed notebooks ARE the book's: nothing
#                is executed again); every chapter again with SFace at small sizes; the book
#                built with -W; browser check
#   make book    build the site offline from the executed chapters, executing (under nbval)
#                only the chapters whose stamp is stale (make chapters: only execute them);
#                the workshop page is timed from those runs (tools/workshop_page.py), and
#                the site is also packed into build/book/xfr-book.zip (+ .sha256)
#   make bench   run every benchmark in bench/ (BENCHES="bench/bench_x.py ..." for some), then
#                print every headline figure with its ratio to the reference measured in the
#                same run and its goal (bench/report.py; build/bench/report.json). Compare two
#                runs: bench/report.py --compare OLD/report.json
#   make lint    ruff on the library, tests, benchmarks and the chapters (as py:percent)
#   make clean   remove build/ and out/ (never the asset cache)
#
# CHAPTERS=01_face_recognition (or "01_face_recognition 02_corrrise_verification") limits
# test-notebooks, test-notebooks-sface and chapters to those chapters.
#
# Outputs: build/notebooks/<chapter>/ (chapter executed with its book parameters: notebook
# with outputs, figures, tables, parameters.yaml with status and seconds, .done on success),
# build/nbval-sface/<chapter>/ (the same for the SFace run), build/book/_build/html/index.html
# (the site), build/book/xfr-book.zip (the site as one file, opens from disk), build/lint/
# (chapters as linted), build/screenshots/ (what tests/test_book.py saw in Chromium),
# build/wheelhouse/ (make wheelhouse).

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
SFACE_STAMPS := $(foreach c,$(CHAPTERS),$(BUILD)/nbval-sface/$(c)/.done)
LIB_SRC := $(shell find xfr_lib -name '*.py' -not -path '*/__pycache__/*') data_manifest.yaml
# The pipeline that executes chapters: a change to it reruns them.
NBVAL_SRC := tests/notebooks/run_nbval.py tests/notebooks/nbval_record.py
SFACE_OVERRIDES := tests/notebooks/sface.yaml
BOOK_PAGES := $(wildcard book/*.md book/*.yml book/*.bib)
# The book's own CSS (book/_styles/, listed in book/_config.yml html_css_files). Not in a
# folder named _static/: Jupyter Book would then link every .css and .js of every static
# folder into every page, the whole of the vendored MathJax included.
BOOK_STYLES := $(wildcard book/_styles/*.css)

# Chapters and tests draw on two cores; keep BLAS/torch from oversubscribing them.
export OMP_NUM_THREADS ?= 2
export MKL_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: setup venv vendor browser fetch wheelhouse wheelhouse-check test test-lib test-notebooks \
	test-notebooks-sface test-book chapters book bench lint clean

# --- setup ----------------------------------------------------------------------------------

# Offline setup from a wheelhouse (make wheelhouse): nothing is asked of a registry. The
# folder is only read: npm's cache is copied out of it, since npm writes to its cache.
WHEELHOUSE ?=
ifneq ($(WHEELHOUSE),)
WH := $(abspath $(WHEELHOUSE))
PIP_SOURCE := --no-index --find-links $(WH)/wheels
NPM_SOURCE := --offline --cache $(abspath $(BUILD))/npm-cache
FETCH_SOURCE := --from $(WH)/assets
endif

setup: $(if $(WHEELHOUSE),wheelhouse-check) venv vendor browser fetch

wheelhouse-check:
	$(PYTHON_SYS) tools/wheelhouse.py check $(WH)

venv:
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet $(PIP_SOURCE) -r requirements.txt
	$(PY) -m pip install --quiet $(PIP_SOURCE) --no-deps -e .

# The offline classroom folder (tools/wheelhouse.py): copy build/wheelhouse/ to the machines
# and run make setup WHEELHOUSE=<its path> there.
wheelhouse: venv
	$(PY) tools/wheelhouse.py pack $(BUILD)/wheelhouse

vendor: $(VENDOR_STAMP)

# MathJax, RequireJS and the ipywidgets HTML manager at the exact versions of
# book/package-lock.json; staged into the book by the `book` target, never loaded from a CDN.
$(VENDOR_STAMP): book/package.json book/package-lock.json
	mkdir -p $(NPM_DIR)
	cp book/package.json book/package-lock.json $(NPM_DIR)/
	$(if $(WHEELHOUSE),rm -rf $(BUILD)/npm-cache && cp -r $(WH)/npm-cache $(BUILD)/npm-cache)
	npm ci --prefix $(NPM_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error $(NPM_SOURCE)
	touch $@

# The browser check of the book needs Debian's chromium; install it when running as root.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then \
	  echo "chromium: $$(command -v chromium || command -v chromium-browser)"; \
	elif [ -n "$(WHEELHOUSE)" ]; then \
	  echo "chromium: not installed (offline setup; only tests/test_book.py needs it)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
	  echo "warning: chromium not found and not root; install it for tests/test_book.py" >&2; \
	fi

fetch:
	$(BIN)/xfr fetch $(FETCH_SOURCE)

# --- tests ----------------------------------------------------------------------------------

test: test-lib test-notebooks test-notebooks-sface test-book

# One pytest process: the tests and the docstring examples of the library. The slowest tests
# are listed at the end, so that CI's log says where its time goes.
test-lib:
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --doctest-modules xfr_lib tests \
	  --ignore=tests/test_book.py --durations=25

# Every chapter executed once, with its book parameters, under nbval (--nbval-lax: each cell
# must run without an error; outputs are not compared). The executed notebooks are kept in
# build/notebooks/<chapter>/ and are the ones the book shows. Up-to-date chapters (their .done
# stamp newer than the notebook, its parameter files, the library and the pipeline) are not
# rerun; rm build/notebooks/*/.done (or make clean) to force it.
test-notebooks: $(CHAPTER_STAMPS)

# Every chapter again with the other model, SFace, at small sizes (tests/notebooks/sface.yaml).
test-notebooks-sface: $(SFACE_STAMPS)

test-book: book
	$(BIN)/pytest -q tests/test_book.py

# --- book -----------------------------------------------------------------------------------

# One executed chapter: tests/notebooks/run_nbval.py prepares it (xfr_lib.runner), runs it under
# nbval with its book parameters (if any) in build/notebooks/<chapter>/, writes the outputs
# back into the notebook and, only on success, the .done stamp (removed before the run). A
# failed chapter is rerun next time; its partial notebook stays for inspection.
.SECONDEXPANSION:
$(BUILD)/notebooks/%/.done: notebooks/%.md $$(wildcard notebooks/params/$$*-*.yaml) $(LIB_SRC) \
		$(NBVAL_SRC)
	$(PY) tests/notebooks/run_nbval.py --out $(BUILD)/notebooks $*
	test -f $@

$(BUILD)/nbval-sface/%/.done: notebooks/%.md $(SFACE_OVERRIDES) $(LIB_SRC) $(NBVAL_SRC)
	$(PY) tests/notebooks/run_nbval.py --defaults --overrides $(SFACE_OVERRIDES) \
	  --out $(BUILD)/nbval-sface $*
	test -f $@

chapters: $(CHAPTER_STAMPS)

book: $(BOOK_HTML)/index.html

# The book executes nothing: it is built from the notebooks the stamps vouch for, and refuses
# any whose parameters.yaml does not say that its run ended well.
$(BOOK_HTML)/index.html: $(CHAPTER_STAMPS) $(BOOK_PAGES) $(BOOK_STYLES) $(VENDOR_STAMP) \
		book/workshop.md.jinja tools/workshop_page.py tools/site_archive.py
	@for c in $(CHAPTERS); do grep -qx 'status: ok' $(BUILD)/notebooks/$$c/parameters.yaml || \
	  { echo "book: $(BUILD)/notebooks/$$c did not run to the end; rm its .done and rerun" >&2; \
	    exit 1; }; done
	rm -rf $(BOOK_SRC) && mkdir -p $(BOOK_SRC)/_vendor/mathjax $(BOOK_SRC)/_vendor/html-manager \
	  $(BOOK_SRC)/_vendor/requirejs
	cp $(BOOK_PAGES) $(BOOK_SRC)/
	mkdir -p $(BOOK_SRC)/_styles && cp $(BOOK_STYLES) $(BOOK_SRC)/_styles/
	cp $(foreach c,$(CHAPTERS),$(BUILD)/notebooks/$(c)/$(c).ipynb) $(BOOK_SRC)/
	cp -r $(NPM_DIR)/node_modules/mathjax/es5 $(BOOK_SRC)/_vendor/mathjax/
	cp $(NPM_DIR)/node_modules/mathjax/LICENSE $(BOOK_SRC)/_vendor/mathjax/
	find $(NPM_DIR)/node_modules/@jupyter-widgets/html-manager/dist -maxdepth 1 -type f \
	  -not -name '*.map' -exec cp {} $(BOOK_SRC)/_vendor/html-manager/ \;
	cp $(NPM_DIR)/node_modules/requirejs/require.js $(BOOK_SRC)/_vendor/requirejs/
	$(PY) tools/workshop_page.py --notebooks $(BUILD)/notebooks --out $(BOOK_SRC)/workshop.md
	$(BIN)/jupyter-book build $(BOOK_SRC) --path-output $(BUILD)/book -W --keep-going -n --quiet
	$(PY) tools/site_archive.py $(BOOK_HTML) $(BUILD)/book/xfr-book.zip
	touch $@

# --- other ----------------------------------------------------------------------------------

BENCHES ?= $(wildcard bench/bench_*.py)

bench:
	@set -e; for f in $(BENCHES); do echo "== $$f"; $(PY) $$f; done
	$(PY) bench/report.py

# The chapters are linted as the library is: converted with jupytext to py:percent into
# build/lint/ and checked with the same ruff configuration (pyproject.toml).
lint:
	status=0; $(BIN)/ruff check xfr_lib tests bench tools || status=1; \
	  $(PY) tests/notebooks/lint_notebooks.py || status=1; exit $$status

clean:
	rm -rf $(BUILD) out
