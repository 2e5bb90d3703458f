# Everything a fresh Debian/Ubuntu machine needs: `make demo` (the main job) and `make test`.
# Both are idempotent: they install system packages when missing and (re)use .venv.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := mosquitto mosquitto-clients podman runc mmdebstrap docker-registry apache2-utils graphviz openssl \
	build-essential libssl-dev pkg-config
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint system venv peers node-peers base-image bench clean

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,models]'
	touch $(STAMP)

venv: $(STAMP)

# iotedgedev 3.3.9 in its own venv: the peer that tests/generator/test_against_iotedgedev.py and
# bench/genconfig.py compare genconfig with (about 12 s, from PyPI). Skipped tests say so when it is absent.
IOTEDGEDEV := .bench-venvs/iotedgedev/bin/iotedgedev
$(IOTEDGEDEV):
	$(PY) -m venv .bench-venvs/iotedgedev
	.bench-venvs/iotedgedev/bin/pip install -q iotedgedev==3.3.9 || echo "warning: could not install iotedgedev 3.3.9; the comparison tests will skip"

# Azure ML's inference server (azmlinfsrv 1.5.1) + inference-schema, numpy, pandas in their own venv: the peer that
# tests/modules/test_against_azmlinfsrv.py and bench/score.py compare the inference host with (about a minute, from
# PyPI). The stamp is written only when the install succeeded; the comparison tests skip, saying so, without it.
AZMLINFSRV := .bench-venvs/azmlinfsrv/.installed
$(AZMLINFSRV): tests/support/azmlinfsrv-requirements.txt
	$(PY) -m venv .bench-venvs/azmlinfsrv
	.bench-venvs/azmlinfsrv/bin/pip install -q -r tests/support/azmlinfsrv-requirements.txt \
	  && touch $(AZMLINFSRV) || echo "warning: could not install azmlinfsrv 1.5.1; the comparison tests will skip"

# The Node.js Azure IoT SDKs (azure-iot-device, azure-iot-device-mqtt, azure-iothub; exact versions and the whole
# tree pinned by tests/node/package-lock.json) in .peers/node: tests/local/device/test_node_sdk.py and
# tests/hub/test_node_sdk_hub.py drive our servers with them (about 10 s from npm). node/npm come from apt when
# missing (Debian's nodejs + npm). Skipped tests say so when the SDKs are absent.
NODE_PEERS := .peers/node/.installed
$(NODE_PEERS): tests/node/package.json tests/node/package-lock.json
	@command -v npm >/dev/null || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q nodejs npm; }
	mkdir -p .peers/node
	cp tests/node/package.json tests/node/package-lock.json .peers/node/
	cd .peers/node && npm ci --no-audit --no-fund --no-update-notifier --loglevel=error \
	  && touch .installed || echo "warning: could not install the Node.js SDKs; the Node.js tests will skip"

node-peers: $(NODE_PEERS)

# The Azure CLI 2.77.0 (2.78+ cannot load this extension) in its own venv, and the azure-iot extension 0.25.0
# (tests/peers/, built unchanged from its MIT-licensed source) with uamqp in AZ_EXT, used through
# AZURE_EXTENSION_DIR: the hub stand-in's REST tests drive them (tests/hub/test_standin_az.py; 2-3 min, once).
AZ := .peers/azure-cli/bin/az
AZ_EXT := .peers/azure-cli-ext
AZ_WHEEL := tests/peers/azure_iot-0.25.0-py3-none-any.whl
$(AZ):
	$(PY) -m venv .peers/azure-cli
	.peers/azure-cli/bin/pip install -q 'azure-cli==2.77.0' || { rm -rf .peers/azure-cli; \
	  echo "warning: could not install the Azure CLI 2.77.0; its tests will skip"; }
$(AZ_EXT)/azure-iot/azext_iot: $(AZ_WHEEL) | $(AZ)
	@rm -rf $(AZ_EXT)/azure-iot
	@if [ -x $(AZ) ]; then .peers/azure-cli/bin/pip install -q --target $(AZ_EXT)/azure-iot $(AZ_WHEEL) 'uamqp~=1.2' \
	  || { rm -rf $(AZ_EXT); echo "warning: could not install the azure-iot extension; its tests will skip"; }; fi

peers: $(IOTEDGEDEV) $(AZMLINFSRV) node-peers $(AZ_EXT)/azure-iot/azext_iot

# The offline stand-in for the module Dockerfiles' base (python:3.11-slim-bookworm): a Debian rootfs made with
# mmdebstrap from this machine's apt sources, built once per machine into ~/.cache/edgegen/base/ (about 30 s);
# the container tests import it into their podman engine (tests/support/baseimage.py).
base-image: venv
	$(BIN)/python -m tests.support.baseimage

demo: system venv
	$(BIN)/edgegen model verify sensor-anomaly   # the registered model the template pins (.models/)
	$(BIN)/edgegen up --duration $${DURATION:-30}

# The peers and the base image are independent downloads/builds: made side by side (-j3), about a minute less on a
# fresh machine than one after the other.
test: system venv
	$(MAKE) --no-print-directory -j3 peers base-image
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest --durations=30 $(PYTEST_ARGS)

# The unit tier for the edit loop: no servers, peers, containers or subprocesses (the markers in pyproject.toml);
# the whole suite (make test) is what CI runs. Extra pytest arguments: make test-fast PYTEST_ARGS="-x tests/routing"
FAST_MARKERS := not integration and not e2e and not slow and not soak and not process
test-fast: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

# ruff, mypy ([tool.mypy] in pyproject.toml), and the house's floors (tests/test_layers.py: the layer order, no
# import cycles; about 1 s)
lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layers.py

clean:
	rm -rf $(VENV) .state manifests/*.json
