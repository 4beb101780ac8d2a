# Two entry points that do all the set-up themselves: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
APP    := $(VENV)/bin/quant-explorer
# ggml flags of the quality runtime's build; tools/build_llama_tools.sh uses the same
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF

.PHONY: run lint test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet -e '.[quality]'
	$(APP) warmup  # compile the kernels now (cached): no first-use stall in the app
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet -e '.[test,quality]'
	touch $@

# Qt's xcb platform plugin (X11) needs libxcb-cursor0; a warning only (offscreen and Wayland work without)
run: $(VENV)/.installed
	@if [ "$$(uname -s)" = Linux ] && [ "$${QT_QPA_PLATFORM:-}" != offscreen ] && [ -n "$${DISPLAY:-}" ] \
	  && [ -z "$${WAYLAND_DISPLAY:-}" ] && ! { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q libxcb-cursor.so.0; then \
	  echo "warning: libxcb-cursor0 is missing; Qt needs it on X11 (sudo apt install libxcb-cursor0)"; fi
	$(APP)

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

bench: $(VENV)/.installed
	$(APP) bench

# the compiled numba kernels: see quant_core/_numba_cache.py
NUMBA_CACHE := $${XDG_CACHE_HOME:-$$HOME/.cache}/quant-explorer

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .ruff_cache .import_linter_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
	rm -rf "$(NUMBA_CACHE)"/numba-*
