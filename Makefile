# Set-up and the two jobs (and the fast test lane), for a fresh machine or an existing checkout:
#   make demo   install what is missing, then train the CPU demo (configs/demo.yaml)
#   make test   install what is missing (system packages too, as root), then lint and run the test suite
#   make test-fast  lint, then the fast lane: every test but those marked slow (subprocess fits; docs/testing.md)
# All three are idempotent: the virtual environment is reused, and re-installed only when pyproject.toml or
# requirements-nodeps.txt change. CUDA users pick their torch build:
#   make demo TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cu128
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
# The main environment's transformers; .ci/run also checks the newest tested 5.x beside it (docs/transformers.md).
TRANSFORMERS ?= 4.57.3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# command:package pairs: the command whose absence means the package is missing (slurm-wlm gives slurmctld and
# slurmd, munge gives munged: the real one-node SLURM of tests/slurm/).
SYSTEM_PACKAGES := espeak-ng:espeak-ng sox:sox chromium:chromium slurmctld:slurm-wlm slurmd:slurm-wlm munged:munge

.PHONY: demo test test-fast install lint system-packages

demo: $(STAMP)
	$(BIN)/python -m qwen_tts_lit fit --config configs/demo.yaml

test: $(STAMP) system-packages lint
	$(BIN)/python -m pytest

# The inner loop: tests/conftest.py marks slow what runs a subprocess fit; CI runs `make test`, never this alone.
test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

install: $(STAMP)

# The README's install, step by step: torch first (pinned CPU build, or TORCH_INDEX's), then the project, then the
# two packages whose declared dependencies break the install (docs/install.md).
$(STAMP): pyproject.toml requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]" "transformers==$(TRANSFORMERS)"
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# espeak-ng makes the tests' speech, sox time-stretches it, headless Chromium opens the listening report, slurm-wlm
# and munge run the SLURM launcher's tests on a one-node cluster.
system-packages:
	@missing=$$(for pair in $(SYSTEM_PACKAGES); do command -v $${pair%%:*} >/dev/null || echo $${pair#*:}; done \
	  | sort -u | tr '\n' ' '); missing=$${missing% }; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages: $$missing (sudo apt-get install $$missing); their tests will be skipped"; \
	  fi; \
	fi
