# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

# System libraries weasyprint loads to render report PDFs (Debian package names).
PDF_LIBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0

.PHONY: run test install pdf-libs

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed pdf-libs

# Installed when missing if we are root (CI, a container); otherwise a notice: the platform runs without them and
# only asking for a report PDF fails, with a message naming these packages.
pdf-libs:
	@libs=$$(PATH="$$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null); \
	if echo "$$libs" | grep -q 'libpango-1.0.so.0' && echo "$$libs" | grep -q 'libpangoft2-1.0.so.0' \
	    && echo "$$libs" | grep -q 'libharfbuzz-subset.so.0'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "== installing $(PDF_LIBS) (report PDFs)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(PDF_LIBS) >/dev/null; } || echo "!! could not install $(PDF_LIBS): report PDFs will not render" >&2; \
	else \
	  echo "!! report PDFs need $(PDF_LIBS): sudo apt-get install $(PDF_LIBS)" >&2; \
	fi

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py serve

test: install
	$(PY) -m pytest $(PYTEST_ARGS)
