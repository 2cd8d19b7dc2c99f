# Two commands for a newcomer: `make run` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= data/demo
SITE_ID ?= demo-county-01
SITE_NAME ?= 演示县公共资源交易中心
SPEED ?= 1
STAMP := $(VENV)/.installed

.PHONY: run demo-reset test system-deps install translations screenshots bench fuzz clean

# Debian packages the tests use: systemd-analyze for the unit checks, chromium (with CJK
# fonts) for the real-browser tests, espeak-ng/sox for announcements, ffmpeg for recording, and
# GStreamer's RTSP server (through Debian's python3-gi) as the camera the recorder pulls from, PostgreSQL for
# the provincial center (the tests and the demo run private clusters of their own). Installed only when
# running as root with apt-get available; otherwise the missing tool is reported by the tests.
SYSTEM_PACKAGES := systemd python3-venv chromium fonts-noto-cjk espeak-ng sox ffmpeg \
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-x unzip openssl postgresql

system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The screens' message catalogue, compiled on every install/run/test (cheap, and never stale).
translations: $(STAMP)
	$(BIN)/python kiosk_ui/translations/build.py compile

install: $(STAMP) translations

# First run: a demo site with three demo accounts (admin, staff, supervisor) sharing one
# random password, kept in $(DATA)/demo-password (mode 0600) and printed at every start.
run: system-deps install
	@if [ ! -f $(DATA)/appliance.toml ]; then \
	  $(BIN)/appliance init --data $(DATA) --site-id $(SITE_ID) --site-name '$(SITE_NAME)' && \
	  (umask 077; $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))' > $(DATA)/demo-password) && \
	  for role in admin staff supervisor; do \
	    $(BIN)/appliance user add $$role --role $$role --password-stdin --data $(DATA) < $(DATA)/demo-password >/dev/null; \
	  done && \
	  cat demo/devices.toml >> $(DATA)/appliance.toml && \
	  $(BIN)/appliance kiosk add gate-1-kiosk --reader gate-1-reader --data $(DATA) \
	    | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["code"])' > $(DATA)/demo-kiosk-code && \
	  $(BIN)/appliance kiosk add PB1-1 --purpose evaluation --reader pb1-desk-1 --room PB1 --data $(DATA) \
	    | $(BIN)/python -c 'import json,sys; print(json.load(sys.stdin)["code"])' > $(DATA)/demo-terminal-code; \
	fi
	@echo "Site appliance on http://127.0.0.1:8080/  (Ctrl-C stops it)"
	@echo "Demo logins: admin, staff, supervisor — password: $$(cat $(DATA)/demo-password 2>/dev/null)"
	@echo "Gate kiosk: open http://127.0.0.1:8080/kiosk/enrol and enter $$(cat $(DATA)/demo-kiosk-code 2>/dev/null) (valid 24 h)"
	@echo "Evaluation terminal PB1-1: in another browser profile open http://127.0.0.1:8080/kiosk/enrol and enter $$(cat $(DATA)/demo-terminal-code 2>/dev/null) (valid 24 h)"
	@echo "A simulated venue day plays out once you log in (about 20 minutes; make run SPEED=4 is four times faster): the morning opening, experts checking in, the evaluation, an alarm, the fee sheet. Once a day: make demo-reset plays it again."
	exec $(BIN)/appliance run --data $(DATA) --simulate-day --simulate-speed $(SPEED)

# Start the demo over: the demo site's data (journal, accounts, kiosks, footage) is removed;
# the next `make run` creates it afresh and plays the day again.
demo-reset:
	@case "$(DATA)" in *..*) echo "demo-reset: DATA must not contain .."; exit 2;; data/?*) rm -rf -- "$(DATA)" "$(DATA)-center-pg" && echo "removed $(DATA) and its demo center's database: make run starts a fresh demo";; \
	  *) echo "demo-reset removes only a demo folder under data/ (DATA=$(DATA))"; exit 2;; esac

test: system-deps install
	$(BIN)/pytest

bench: system-deps install
	$(BIN)/appliance bench journal
	$(BIN)/appliance bench devices
	$(BIN)/appliance bench gate-tap
	$(BIN)/python -m bench.live_updates
	$(BIN)/python -m bench.kiosk_paint
	$(BIN)/python -m bench.recording
	$(BIN)/python -m bench.sync
	$(BIN)/python -m bench.center
	$(BIN)/python -m bench.hardening
	$(BIN)/python -m bench.remote_evaluation

# A longer property-based fuzz run of every device codec (the test suite runs a short one).
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q tests/devices -k "arbitrary or round_trip or byte_by_byte"

# A PNG of each main page in docs/screenshots/ (real chromium against a demo site).
screenshots: system-deps install
	$(BIN)/python -m tests.screenshots

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
