# ---- the PU / online-distillation study (issue 4) -------------------------------------------
# Included by the Makefile. One papermill run of notebooks/online_pu.py per grid point; the run
# name encodes the parameters:
#   <dataset>_pi<prior|nat>_c<labelled_frac>_<loss>_a<alpha>_b<beta>_<on|off>_<arch><hidden>_s<seed>
# loss codes: innpu = imbalanced_nnpu, nnpu, naive (unlabelled = negative), sup = supervised.
# The teacher trajectory is cached per (data, loss, seed) under cache/pu_teacher/, so the
# teacher trains once per seed and loss and every (alpha, beta) / online / offline run reuses it.

SMOKE_NBS += online_pu pu_report

PU_RUNS  := results/runs/pu
PU_SEEDS := 0 1 2
# (alpha, beta) of the original study with the main PU loss, then the references
PU_MAIN  := innpu_a0_b1 innpu_a0.5_b0.5 innpu_a1_b0
PU_REFS  := naive_a0.5_b0.5 sup_a0.5_b0.5
PU_EXTRA := nnpu_a0_b1
PU_ONLINE  := $(PU_MAIN) $(PU_REFS) $(PU_EXTRA)
# offline only where the student listens to the teacher (alpha > 0): with alpha = 0 it never
# queries the teacher, so offline would repeat the online run
PU_OFFLINE := innpu_a0.5_b0.5 innpu_a1_b0 naive_a0.5_b0.5 sup_a0.5_b0.5

# splice: EI vs rest at its own prior (0.24), 20% of the positives labelled; a run ~1 min on a busy CPU
PU_SPLICE_DATA     := splice_pinat_c0.2
PU_SPLICE_STUDENTS := gru64 cnn64
PU_ARGS_splice := -p meta_epochs 5 -p teacher_epochs 2 -p student_epochs 2 -p batch_size 64 -p threads 1
# imdb: positives made rare (pi = 0.3; add imdb_pi0.1_c0.2 for the rarer case), 20% of them labelled;
# 2000 train reviews at 128 tokens, 1000 test reviews, train metrics on 500 of the train reviews,
# the offline MiniLM teacher (bert-base-uncased when the hub answers: teacher=auto), GRU-64 and
# CNN-64 students. nnPU (the extra) is left out here: each loss kind costs one more teacher
# trajectory per seed. Two threads per run: on an idle CPU a teacher step (batch 32, 128 tokens,
# bf16) takes 1.0 s against 1.6 s on one. Denormals flushed to zero: without it a fresh GRU
# student's first epoch took about 10x its later ones (the splice grid ran before this switch
# existed and keeps it off).
PU_IMDB_DATA     := imdb_pi0.3_c0.2
PU_IMDB_STUDENTS := gru64 cnn64
PU_IMDB_ONLINE   := $(PU_MAIN) $(PU_REFS)
PU_ARGS_imdb := -p meta_epochs 3 -p teacher_epochs 1 -p student_epochs 2 -p batch_size 32 -p max_len 128 \
  -p train_n 2000 -p test_n 1000 -p eval_train_n 500 -p threads 2 -p flush_denormal True

PU_LOSS_innpu := imbalanced_nnpu
PU_LOSS_nnpu  := nnpu
PU_LOSS_naive := naive
PU_LOSS_sup   := supervised
PU_MODE_on  := online
PU_MODE_off := offline

# $(call pu_grid,datas,students,online settings,offline settings); seed outermost, so a grid
# stopped half-way has whole seeds
pu_grid = $(foreach s,$(PU_SEEDS),$(foreach d,$(1),$(foreach st,$(2),\
  $(foreach x,$(3),$(PU_RUNS)/$(d)_$(x)_on_$(st)_s$(s)/metrics.json) \
  $(foreach x,$(4),$(PU_RUNS)/$(d)_$(x)_off_$(st)_s$(s)/metrics.json))))
PU_SPLICE := $(call pu_grid,$(PU_SPLICE_DATA),$(PU_SPLICE_STUDENTS),$(PU_ONLINE),$(PU_OFFLINE))
PU_IMDB   := $(call pu_grid,$(PU_IMDB_DATA),$(PU_IMDB_STUDENTS),$(PU_IMDB_ONLINE),$(PU_OFFLINE))
# Runs sharing a teacher trajectory (data, loss, seed) wait for the first of them (the first online
# setting with that loss, on the first student), which trains it: under make -j a teacher is never
# trained twice at once, and the trajectories of different losses and seeds still run side by side.
# $(call pu_order,data,students,online settings,offline settings)
pu_order = $(foreach s,$(PU_SEEDS),$(foreach st,$(2),$(foreach m,on off,$(foreach x,$(if $(filter on,$(m)),$(3),$(4)),\
  $(eval _t := $(PU_RUNS)/$(1)_$(x)_$(m)_$(st)_s$(s)/metrics.json)\
  $(eval _l := $(PU_RUNS)/$(1)_$(firstword $(filter $(word 1,$(subst _, ,$(x)))_%,$(3)))_on_$(firstword $(2))_s$(s)/metrics.json)\
  $(if $(filter $(_t),$(_l)),,$(eval $(_t): | $(_l)))))))
$(call pu_order,$(PU_SPLICE_DATA),$(PU_SPLICE_STUDENTS),$(PU_ONLINE),$(PU_OFFLINE))
$(call pu_order,$(PU_IMDB_DATA),$(PU_IMDB_STUDENTS),$(PU_IMDB_ONLINE),$(PU_OFFLINE))
# optional, not part of reproduce: splice students at hidden 16 and 256 (online, the three PU settings)
PU_SPLICE_HIDDEN := $(call pu_grid,$(PU_SPLICE_DATA),gru16 gru256 cnn16 cnn256,$(PU_MAIN),)
PU_REPORT := results/tables/pu_summary.md

.PHONY: pu pu-splice pu-splice-hidden pu-imdb pu-report

$(PU_RUNS)/%/metrics.json: | $(NB)/online_pu.ipynb
	@mkdir -p $(EXEC)/pu
	$(eval W := $(subst _, ,$*))
	$(PAPERMILL) $(NB)/online_pu.ipynb $(EXEC)/pu/$*.ipynb \
	  -p dataset $(word 1,$(W)) $(if $(filter pinat,$(word 2,$(W))),,-p prior $(patsubst pi%,%,$(word 2,$(W)))) \
	  -p labelled_frac $(patsubst c%,%,$(word 3,$(W))) -p loss $(PU_LOSS_$(word 4,$(W))) \
	  -p alpha $(patsubst a%,%,$(word 5,$(W))) -p beta $(patsubst b%,%,$(word 6,$(W))) \
	  -p mode $(PU_MODE_$(word 7,$(W))) -p arch $(if $(findstring gru,$(word 8,$(W))),gru,cnn) \
	  -p hidden $(subst cnn,,$(subst gru,,$(word 8,$(W)))) -p seed $(patsubst s%,%,$(word 9,$(W))) \
	  $(PU_ARGS_$(word 1,$(W))) -p name $*

pu-splice: $(PU_SPLICE) ## PU study, splice grid (5 settings + nnPU, online/offline, 3 seeds; resumable)

pu-splice-hidden: $(PU_SPLICE_HIDDEN) ## optional: splice students at hidden 16 and 256 (~15 min)

pu-imdb: $(PU_IMDB) ## PU study, IMDB-PU grid (MiniLM teacher; hours on a CPU; resumable)

$(PU_REPORT): $(PU_SPLICE) $(PU_IMDB) $(NB)/pu_report.ipynb
	@mkdir -p $(EXEC)
	$(PAPERMILL) $(NB)/pu_report.ipynb $(EXEC)/pu_report.ipynb

pu-report: $(NB)/pu_report.ipynb ## PU tables and figures from whatever PU runs exist
	@mkdir -p $(EXEC)
	$(PAPERMILL) $(NB)/pu_report.ipynb $(EXEC)/pu_report.ipynb

pu: $(PU_REPORT) ## the whole PU study: both grids, then the report

reproduce: $(PU_REPORT)
