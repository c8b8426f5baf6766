# playworld: `make demo` runs the main job on the built-in twin, `make test` passes the tests.
# Both install what they need first (`make setup`, idempotent and fast when nothing changed).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.playworld-setup
EXTRAS := train,jpeg,sim,dev,ros,hardware,view,interop,tether
# Rendering libraries for headless MuJoCo (EGL and OSMesa, both on Mesa llvmpipe).
DEB_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglx-mesa0 libosmesa6 libusb-1.0-0
# ROS 1's generated message classes: the reference for the bridge's message definitions.
DEB_PACKAGES += python3-std-msgs python3-sensor-msgs python3-geometry-msgs python3-trajectory-msgs
# Only `make test-slow` needs these: headless chromium opens `playworld view --web` and the demo
# report; FFmpeg's shared libraries for torchcodec, lerobot's video decoder
# (tests/datasets/test_lerobot_load.py).
DEB_PACKAGES_SLOW := chromium
DEB_PACKAGES_SLOW += libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4
PYTEST_ARGS ?=

export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup deb test test-slow lint format bench demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile tests/hardware/js/package-lock.json
	$(MAKE) deb
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, spelled exactly: the CPU wheel on this machine's disk (any other spelling can pull a CUDA build)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	# roslibjs (npm `roslib`) for the rosbridge conformance test; skipped with a reason without node
	if command -v npm >/dev/null; then npm ci --prefix tests/hardware/js --no-audit --no-fund -q; \
	else echo "note: npm missing: the roslibjs check will be skipped"; fi
	touch $(STAMP)

# Debian packages the tests need: installed when missing and running as root, else listed.
deb:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "note: missing Debian packages (run as root or install them):$$missing"; \
	fi

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: setup
	$(MAKE) deb DEB_PACKAGES="$(DEB_PACKAGES_SLOW)"
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check playworld tests bench scripts
	$(VENV)/bin/ruff format --check playworld tests bench scripts

format: setup
	$(VENV)/bin/ruff format playworld tests bench scripts
	$(VENV)/bin/ruff check --fix playworld tests bench scripts

# The main job, the whole pipeline on the built-in twin (~6-7 minutes on 2 cores): autonomous
# play, a state world model, GCBC + a Tether library, evaluation, a twin-follow deployment over
# the ROS bridge, and out/demo/report.html (playworld/pipeline/demo.py).
demo: setup
	$(PY) -m playworld.pipeline.demo --out out/demo

bench: setup
	$(PY) bench/store.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache out
