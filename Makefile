# Single entry point: every command in the README goes through here.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Monte Carlo settings of `make run` (override: make run N_ITERS=1000)
N_ITERS ?= 10000
SEED    ?= 0
JOBS    ?= 2
# Iterations of every robustness rerun (jackknife subsets, noise levels, sensitivity
# variants): the main analyses' by default
ROBUST_ITERS ?= $(N_ITERS)
BENCH_ITERS ?= 1000
JALE_VENV   ?= .venv-jale
# Databases: copied from the shared mirror when it is beside the clone, else downloaded.
MIRROR_DEFAULT := $(abspath ../shared/data)
export MNSMETA_DATA_MIRROR ?= $(if $(wildcard $(MIRROR_DEFAULT)/SHA256SUMS),$(MIRROR_DEFAULT),)

.PHONY: install run quick test lint format bench bench-full reproduce clean browser

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	# JALE, the reference of the TFCE tests: its pure-numpy core only. Without its pinned
	# dependencies (old numpy, nilearn, xgboost), which would downgrade ours.
	$(BIN)/python -m pip install --quiet --no-deps jale==0.2.10
	touch $(STAMP)

run: install
	$(BIN)/mnsmeta fetch
	$(BIN)/mnsmeta validate
	$(BIN)/mnsmeta studies --flow
	$(BIN)/mnsmeta studies --cited > /dev/null
	$(BIN)/mnsmeta run --jobs $(JOBS) --n-iters $(N_ITERS) --seed $(SEED)
	$(BIN)/mnsmeta robustness --jobs $(JOBS) --n-iters $(ROBUST_ITERS) --seed $(SEED)
	$(BIN)/mnsmeta specificity --jobs $(JOBS) --seed $(SEED)
	$(BIN)/mnsmeta claims --seed $(SEED)
	# The generated results page: every number of docs/results.md comes from results/.
	$(BIN)/mnsmeta report --page docs/results.md

# A first look in about 2 minutes: the maps, overlap tests, claims and report with few
# iterations and permutations, no robustness stage (its jackknife refits every subset, a
# cost that does not shrink with iterations: `mnsmeta robustness` adds it). Not for conclusions.
quick: install
	$(BIN)/mnsmeta fetch
	$(BIN)/mnsmeta validate
	$(BIN)/mnsmeta studies --cited > /dev/null
	$(BIN)/mnsmeta run --jobs $(JOBS) --n-iters 500 --n-perm 100 --seed $(SEED)
	$(BIN)/mnsmeta specificity --n-perm 500 --replicates 10 --jobs $(JOBS) --seed $(SEED)
	$(BIN)/mnsmeta claims
	$(BIN)/mnsmeta report

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: install browser lint
	$(BIN)/python -m pytest

# Debian's Chromium, for the report's headless-browser test (skipped when it is missing).
# Never fails the build: without root, sudo is tried without a password prompt.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
		( $$SUDO apt-get update -qq && \
		  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null ) \
		|| echo "chromium could not be installed: the browser test will be skipped"; }

# `make bench` in about a quarter of an hour: the same table as the full benchmark (paired
# NiMARE/ours ratios with their range on SAD, MNS and 200 synthetic experiments, jackknife,
# JALE, the subtraction; memory; the scaling curve), with 2 pairs of 200-iteration runs
# (marginal it/s: a 20-iteration run subtracted), the subtraction's whole fits at 1,000
# permutations, JALE at 20 iterations, memory at 2,000
# iterations and the curve at four sizes up to 100,008 foci. `make bench-full`: the long
# version (3 pairs at BENCH_ITERS, 10,000 iterations of memory, 500,004 foci, a whole
# Neurosynth-scale ALE; about an hour).
bench: install $(JALE_VENV)/.installed
	$(BIN)/python benchmarks/bench.py --n-iters 200 --repeats 2 --jobs $(JOBS) \
		--subtraction-iters 1000 --jale-iters 20 --jale-python $(JALE_VENV)/bin/python
	$(BIN)/python benchmarks/scale.py --jobs $(JOBS) --memory-iters 2000 \
		--points 28 139 556 2778 --whole-iters 0

bench-full: install $(JALE_VENV)/.installed
	$(BIN)/python benchmarks/bench.py --n-iters $(BENCH_ITERS) --jobs $(JOBS) \
		--jale-python $(JALE_VENV)/bin/python
	$(BIN)/python benchmarks/scale.py --jobs $(JOBS)

# Published ALEs rerun from their authors' own foci files at the authors' settings and
# iterations (copied from $MNSMETA_DATA_MIRROR/published/, else downloaded from commit-pinned
# URLs; checked and cached in ~/.cache/mnsmeta, never committed). `make test` runs both too.
reproduce: install
	$(BIN)/python benchmarks/reproduce.py lotter2023 --jobs $(JOBS)
	$(BIN)/python benchmarks/reproduce.py enge2021 --jobs $(JOBS)

# JALE (the reference's competitor) in its own environment, for the benchmark only.
$(JALE_VENV)/.installed:
	$(PYTHON) -m venv $(JALE_VENV)
	$(JALE_VENV)/bin/python -m pip install --quiet jale==0.2.10
	touch $@

clean:
	rm -rf $(VENV) $(JALE_VENV) build *.egg-info .pytest_cache .ruff_cache
