"""Benchmark (not a timed test): one student epoch with our pipeline against a naive loop, side by
side in one run, and the teacher's fine-tune throughput.

    ours:  cached teacher logits looked up by id, dynamic padding, length-bucketed shuffled batches
    naive: every batch padded to max_len, the teacher run (no grad) on every batch for its soft targets
    ours + flush: the same, with denormal floats flushed to zero (a fresh GRU's backward pass makes
           many, and x86 CPUs compute them far slower)

Both train the same GRU student (same init) with the same KD loss on the same examples. Writes a
Markdown report to stdout and results/benchmark.md, and refreshes README's benchmark block.
Usage: python scripts/benchmark.py [--n 2000] [--hidden 64] [--steps 20]
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import time

import numpy as np
import torch

from kdlib import data, losses, models, paths, train

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=2000, help="training examples timed per loop")
ap.add_argument("--hidden", type=int, default=64)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--steps", type=int, default=20, help="teacher fine-tune steps timed per setting")
ap.add_argument("--teacher-run", default="teacher")
args = ap.parse_args()

info = json.loads((paths.RESULTS / "runs" / args.teacher_run / "metrics.json").read_text())
tp = info["params"]
imdb = data.load_imdb(("train",), verbose=False)
train_df, _ = data.train_val_split(imdb["train"], val_frac=tp["val_frac"], seed=tp["split_seed"])
if "provenance" not in info:
    raise SystemExit(f"the teacher run {args.teacher_run!r} predates recorded teachers: rerun it (make teacher)")
rec = info["provenance"]["teacher"]  # exactly the recorded teacher and tokenizer, hub or not
tok = models.load_recorded_tokenizer(rec)
ids_all = data.cached_token_ids(train_df, tok, tp["max_len"])
sub = np.random.default_rng(0).choice(len(train_df), size=min(args.n, len(train_df)), replace=False)
ds = data.SeqDataset([ids_all[i] for i in sub], train_df["label"].to_numpy()[sub], train_df["id"].to_numpy()[sub])
teacher_logits = data.TeacherLogits.load(paths.cache_dir() / info["logits"]["train"]["cache_path"])
teacher = models.load_teacher(rec["name"], checkpoint=paths.ROOT / info["checkpoint"]).eval()
T, alpha, pad = 2.0, 0.5, tok.pad_token_id
n_full = len(train_df)


def student():
    return models.build_student("gru", args.hidden, tok.vocab_size, seed=0, pad_id=pad)


def run_ours(flush_denormal: bool = False):
    torch.set_flush_denormal(flush_denormal)
    s = student()
    opt = torch.optim.AdamW(s.parameters(), 2e-3)
    loader = data.make_loader(ds, args.batch, shuffle=True, seed=0, pad_id=pad)
    t0 = time.perf_counter()
    for b in loader:
        t = teacher_logits[b["ids"]]
        loss = losses.kd_loss(s(b["input_ids"], b["attention_mask"]), t, b["labels"], T, alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    torch.set_flush_denormal(False)
    return dt


def run_naive():
    s = student()
    opt = torch.optim.AdamW(s.parameters(), 2e-3)
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=True,
                                         collate_fn=data.Collate(pad_id=pad, pad_to=tp["max_len"]),
                                         generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    for b in loader:
        with torch.no_grad():
            t = teacher(b["input_ids"], b["attention_mask"])
        loss = losses.kd_loss(s(b["input_ids"], b["attention_mask"]), t, b["labels"], T, alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def teacher_throughput(amp: bool, attention_dropout: float):
    m = models.load_teacher(tp["teacher"], attention_dropout=attention_dropout).train()
    opt = torch.optim.AdamW(m.parameters(), 5e-5)
    loader = data.make_loader(ds, 32, shuffle=True, seed=1, pad_id=pad)
    times, n = [], 0
    for i, b in enumerate(loader):
        t0 = time.perf_counter()
        with train.autocast("cpu", amp):
            out = m(b["input_ids"], b["attention_mask"]).float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out, b["labels"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 1:  # the first step warms up
            times.append(time.perf_counter() - t0)
            n += len(b["labels"])
        if i >= args.steps:
            break
    return n / sum(times), float(np.mean(times))


ours, naive, ours_ftz = run_ours(), run_naive(), run_ours(flush_denormal=True)
rows = [f"Machine: {torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}), torch {torch.__version__}. "
        f"Student GRU-{args.hidden}, batch {args.batch}, KD T={T:g} alpha={alpha:g}, {len(ds)} training reviews "
        f"(max_len {tp['max_len']}); full epoch = {n_full} reviews, extrapolated linearly.", "",
        "| loop | seconds for the subset | est. seconds per full epoch | speed-up |", "|---|---|---|---|",
        f"| naive: pad to max_len + teacher forward on every batch | {naive:.1f} | {naive * n_full / len(ds):.0f} | 1.0x |",
        f"| ours: cached logits by id + dynamic padding + length buckets | {ours:.1f} | {ours * n_full / len(ds):.0f} | {naive / ours:.1f}x |",
        f"| ours + denormals flushed to zero (`torch.set_flush_denormal(True)`) | {ours_ftz:.1f} | {ours_ftz * n_full / len(ds):.0f} | {naive / ours_ftz:.1f}x ({ours / ours_ftz:.1f}x over ours) |",
        "", "A fresh GRU's backward pass through long sequences produces denormal floats, which x86 CPUs "
        "compute many times slower; flushing them to zero changes values below 1e-38 only. "
        "The naive loop, a GRU too, would gain from it as well. (student.py flushes them by default.)",
        "", "Teacher fine-tune throughput (batch 32, real IMDB batches, training mode):", "",
        "| precision | attention dropout | examples / s | s / step | est. minutes per epoch |", "|---|---|---|---|---|"]
for amp, adrop in ((False, 0.1), (False, 0.0), (True, 0.1), (True, 0.0)):
    eps, sps = teacher_throughput(amp, adrop)
    rows.append(f"| {'bf16 autocast' if amp else 'fp32'} | {adrop:g} | {eps:.1f} | {sps:.2f} | {n_full / eps / 60:.0f} |")
report = "\n".join(rows) + "\n"
print(report)
(paths.RESULTS / "benchmark.md").write_text(report)
readme = paths.ROOT / "README.md"
if readme.exists() and paths.RESULTS == (paths.ROOT / "results").resolve():
    text = readme.read_text()
    block = "<!-- benchmark:start (written by scripts/benchmark.py) -->\n" + report + "<!-- benchmark:end -->"
    readme.write_text(re.sub(r"<!-- benchmark:start.*?<!-- benchmark:end -->", lambda _: block, text, flags=re.S))
