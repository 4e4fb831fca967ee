# The two set-up commands of the README: `make train` and `make test`. Both create .venv and install on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Without an NVIDIA GPU take the small CPU build of torch (torch 2.13.0 lies on disk on our machines);
# with one, let pip resolve the normal CUDA build. Override: make install TORCH_SPEC='torch==2.5.1'.
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC ?= $(if $(HAS_GPU),torch>=2.4,torch==2.13.0)
# GPU installs get the Triton that torch pins; CPU installs get one whose CPU interpreter runs our Triton
# kernels' tests (3.6's cannot with numpy 2).
TRITON_SPEC ?= $(if $(HAS_GPU),,triton>=3.8)
STAMP := $(VENV)/.installed
# optional parts of pyproject.toml: dev holds pretrained, search, wandb and slurm (every test runs); GPU machines
# add gpu (mamba-ssm's Triton scan, built without compiling CUDA: its setup.py imports torch, hence the torch
# install first and --no-build-isolation)
comma := ,
EXTRAS ?= $(if $(HAS_GPU),dev$(comma)gpu,dev)
export MAMBA_SKIP_CUDA_BUILD := TRUE
export MAMBA_FORCE_BUILD := TRUE
# lets tests run with or without a local wandb account, never touching the network
export WANDB_MODE ?= offline

.PHONY: install train test test-fast report bench clean help

help:
	@echo "make train   - install (first time) and train on the embedded default data"
	@echo "make test    - install (first time) and run the test suite"
	@echo "make report  - tables and plots of the latest multirun sweep (SWEEP=path to choose one)"
	@echo "make bench   - attention benchmark over sequence length (CPU sizes)"

# Fast path (CPU machines whose pip finds the CPU build of torch in a local folder, as ours do): uv installs the
# same packages in about a minute, bytecode included, where pip takes ~165 s on 2 cores. uv reads no pip settings,
# so it is handed the find-links folder and pinned to that local build (torch==2.13.0+cpu: never the multi-GB CUDA
# build from PyPI). --compile-bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set (as on our machines)
# Python would otherwise compile every module from source at every start (train.py started in 27 s instead of 12).
# Where uv cannot do it (no such folder, another TORCH_SPEC, a GPU, uv missing or failing), pip installs as before.
FIND_LINKS := $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
TORCH_WHEEL_DIR := $(firstword $(foreach d,$(FIND_LINKS),$(if $(wildcard $(d)/torch-2.13.0+cpu-*.whl),$(d))))
UV_TORCH_SPEC := $(if $(filter torch==2.13.0,$(TORCH_SPEC)),$(if $(TORCH_WHEEL_DIR),torch==2.13.0+cpu))

# pip: one command, so pip keeps the torch build named here while resolving the rest
PIP_INSTALL = $(PY) -m pip install --upgrade --quiet pip \
	$(if $(HAS_GPU),&& $(PY) -m pip install --quiet "$(TORCH_SPEC)" setuptools wheel packaging ninja) \
	&& $(PY) -m pip install --quiet $(if $(HAS_GPU),--no-build-isolation) "$(TORCH_SPEC)" $(if $(TRITON_SPEC),"$(TRITON_SPEC)") -e '.[$(EXTRAS)]'
UV_INSTALL = $(PY) -m pip install --quiet uv && $(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) \
	--find-links $(TORCH_WHEEL_DIR) "$(UV_TORCH_SPEC)" $(if $(TRITON_SPEC),"$(TRITON_SPEC)") -e '.[$(EXTRAS)]'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(UV_TORCH_SPEC),$(UV_INSTALL) || { echo "make install: uv could not install; pip does it instead"; $(PIP_INSTALL); },$(PIP_INSTALL))
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) train.py $(ARGS)

# one pytest worker per core (pytest-xdist); a file's tests stay on one worker, so a module's shared sweep runs
# once; the slowest tests are listed at the end
test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadfile --durations=15 $(ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(ARGS)

report: $(STAMP)
	$(PY) scripts/ablation_report.py $(or $(SWEEP),--latest)

bench: $(STAMP)
	$(PY) scripts/bench_attention.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
