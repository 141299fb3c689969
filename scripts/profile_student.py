"""Where a student's training step spends its time (not a timed test): IMDB train reviews in the
teacher tokenizer's ids, one torch thread, denormals flushed, as the study's student runs.

For each architecture the step is split into its parts (batch collation, forward, loss, backward,
gradient clipping, optimizer step), then whole-epoch alternatives are timed on the same batches:
the study's settings (fused AdamW, as `kdlib.train.fit`), AdamW's unfused kernel, no gradient
clipping, batch 128, bf16 autocast. Writes a Markdown
table to stdout and results/profile_student.md.

    python scripts/profile_student.py [--n 2000] [--hidden 64] [--threads 1]
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from kdlib import data, models, paths

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=2000, help="training reviews timed per setting")
ap.add_argument("--hidden", type=int, default=64)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--max-len", type=int, default=256)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.set_flush_denormal(True)

imdb = data.load_imdb(("train",), verbose=False)
train_df, _ = data.train_val_split(imdb["train"], val_frac=0.1, seed=0)
tok = models.load_tokenizer("minilm")
sub = data.subsample(train_df, args.n, seed=0)
ds = data.SeqDataset(data.cached_token_ids(sub, tok, args.max_len), sub["label"], sub["id"])
pad = tok.pad_token_id


def loss_fn(logits, batch):
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"].float())


def parts(arch: str, batch_size: int = 64) -> dict:
    """Seconds per epoch of the subset spent in each part of a training step."""
    model = models.build_student(arch, args.hidden, tok.vocab_size, seed=0, pad_id=pad).train()
    opt = torch.optim.AdamW(model.parameters(), 2e-3, fused=True)  # as kdlib.train.fit
    out = dict.fromkeys(["collate", "forward", "loss", "backward", "clip", "optimizer"], 0.0)
    t = time.perf_counter()
    for batch in data.make_loader(ds, batch_size, shuffle=True, seed=0, pad_id=pad):
        t1 = time.perf_counter()
        out["collate"] += t1 - t
        logits = model(batch["input_ids"], batch["attention_mask"])
        t2 = time.perf_counter()
        loss = loss_fn(logits, batch)
        t3 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t4 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        t5 = time.perf_counter()
        opt.step()
        t = time.perf_counter()
        out["forward"] += t2 - t1
        out["loss"] += t3 - t2
        out["backward"] += t4 - t3
        out["clip"] += t5 - t4
        out["optimizer"] += t - t5
    return out


def epoch(arch: str, batch_size: int = 64, fused: bool = True, clip: bool = True, bf16: bool = False) -> float:
    model = models.build_student(arch, args.hidden, tok.vocab_size, seed=0, pad_id=pad).train()
    opt = torch.optim.AdamW(model.parameters(), 2e-3, fused=fused or None)
    t0 = time.perf_counter()
    for batch in data.make_loader(ds, batch_size, shuffle=True, seed=0, pad_id=pad):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(batch["input_ids"], batch["attention_mask"])
        loss = loss_fn(logits.float(), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return time.perf_counter() - t0


scale = len(train_df) / len(ds)
lines = [f"Machine: {platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}; "
         f"{len(ds)} IMDB train reviews (max_len {args.max_len}), hidden {args.hidden}; seconds per full "
         f"epoch of {len(train_df)} reviews, extrapolated linearly.", ""]
for arch in models.ARCHS:
    epoch(arch)  # warm-up: allocator, first-call kernels
    p = parts(arch)
    total = sum(p.values())
    lines += [f"**{arch.upper()}-{args.hidden}**, one training step split in its parts (batch 64):", "",
              "| part | s per full epoch | share |", "|---|---|---|"]
    lines += [f"| {k} | {v * scale:.1f} | {v / total:.0%} |" for k, v in p.items()]
    settings = {"study (fused AdamW, clip 1.0, batch 64, fp32)": {}, "AdamW unfused (the study before)": {"fused": False},
                "no gradient clipping": {"clip": False}, "batch 128": {"batch_size": 128},
                "bf16 autocast": {"bf16": True}}
    lines += ["", "| setting | s per full epoch |", "|---|---|"]
    lines += [f"| {name} | {epoch(arch, **kw) * scale:.1f} |" for name, kw in settings.items()]
    lines.append("")
    print("\n".join(lines[-(len(p) + len(settings) + 8):]), flush=True)

paths.RESULTS.mkdir(parents=True, exist_ok=True)
(paths.RESULTS / "profile_student.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
