"""Training loops: `fit` (plain or offline KD), `predict`, and the online teacher/student loop.

A loss function is any ``loss_fn(logits, batch) -> scalar``; `bce_objective` and `kd_objective`
build the two the study uses. Checkpoints hold the model, optimiser, scheduler, history and RNG
state, so an interrupted run resumes and ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import losses, metrics
from .data import TeacherLogits, content_hash
from .progress import tqdm


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, so CPU runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def autocast(device: torch.device | str, enabled: bool):
    """bf16 autocast on CPU (AVX-512 BF16 roughly doubles matmul speed) or CUDA; a no-op otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _to(batch: dict, device) -> dict:
    return {k: (v.to(device) if torch.is_tensor(v) and k != "ids" else v) for k, v in batch.items()}


def _logits(model, batch, device, amp=False) -> torch.Tensor:
    with autocast(device, amp):
        out = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
    return out.float()


def bce_objective() -> Callable:
    """Plain binary cross-entropy on the batch labels."""
    return lambda logits, batch: F.binary_cross_entropy_with_logits(logits, batch["labels"].to(logits.device))


def kd_objective(teacher_logits: TeacherLogits, T: float, alpha: float) -> Callable:
    """Offline KD: `losses.kd_loss` with teacher logits looked up by the batch's example ids."""
    losses._check_T_alpha(T, alpha)
    if alpha == 0:
        return bce_objective()

    def loss_fn(logits, batch):
        t = teacher_logits[batch["ids"]].to(logits.device)
        return losses.kd_loss(logits, t, batch["labels"].to(logits.device), T=T, alpha=alpha)
    return loss_fn


@torch.no_grad()
def predict(model, loader, device=None, amp: bool = False, desc: str = "predict") -> dict[str, np.ndarray]:
    """Logits of `model` over `loader`, returned sorted by example id: {ids, logits, labels}."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    ids, logits, labels = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False):
        logits.append(_logits(model, batch, device, amp).cpu())
        ids.append(batch["ids"])
        labels.append(batch["labels"])
    model.train(was_training)
    ids = torch.cat(ids).numpy()
    order = np.argsort(ids)
    return {"ids": ids[order], "logits": torch.cat(logits).numpy()[order], "labels": torch.cat(labels).numpy()[order]}


def evaluate(model, loader, device=None, amp: bool = False, desc: str = "eval") -> dict[str, float]:
    """`metrics.binary_metrics` of `model` on `loader`."""
    out = predict(model, loader, device, amp, desc)
    return metrics.binary_metrics(out["labels"], out["logits"])


def _save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _linear_warmup(optimizer, total_steps: int, warmup_frac: float):
    warm = max(1, int(total_steps * warmup_frac))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total_steps - s) / max(1, total_steps - warm))))


def fit(model, train_loader, val_loader, loss_fn: Callable, epochs: int, lr: float = 1e-3,
        weight_decay: float = 0.0, schedule: str = "constant", warmup_frac: float = 0.1,
        grad_clip: float | None = 1.0, select: str = "roc_auc", ckpt_dir: str | Path | None = None,
        ckpt_every: int | None = None, device=None, amp: bool = False, desc: str = "train",
        on_epoch_end: Callable | None = None, on_step: Callable | None = None) -> dict:
    """Train `model` for `epochs`, evaluate on `val_loader` after each, keep the best by `select`.

    schedule: "constant" or "linear" (warm-up over `warmup_frac` of the steps, then linear decay).
    ckpt_dir: where `last.pt` (for resuming, every epoch and every `ckpt_every` steps) and
    `best.pt` (best validation weights) are written; an existing `last.pt` is resumed from.
    At the end the best weights are loaded into `model`, and the returned history says which
    epoch they come from; each epoch's row has its `seconds` (training + validation), counted
    over interruptions, so their sum is the run's training time however many legs it took.
    `on_epoch_end(epoch, history)` / `on_step(epoch, step)` are hooks.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if schedule not in ("constant", "linear"):
        raise ValueError(f"schedule must be 'constant' or 'linear', got {schedule!r}")
    device = torch.device(device) if device else next(model.parameters()).device
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = len(train_loader)
    scheduler = (_linear_warmup(optimizer, epochs * steps_per_epoch, warmup_frac) if schedule == "linear"
                 else torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0))
    history = {"epochs": [], "best_epoch": None, "best_score": -math.inf, "select": select}
    start_epoch, start_step, best_state = 0, 0, None
    ckpt_dir = Path(ckpt_dir) if ckpt_dir else None
    rng_to_restore = None
    if ckpt_dir and (ckpt_dir / "last.pt").exists():
        ck = torch.load(ckpt_dir / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        history, start_epoch, start_step = ck["history"], ck["epoch"], ck["step"]
        rng_to_restore = ck["rng"]
        # (loss sum, steps, seconds) of a partly done epoch; checkpoints before the seconds existed have two
        running = (*ck.get("running", (0.0, 0)), 0.0)[:3]
        if (ckpt_dir / "best.pt").exists():
            best_state = torch.load(ckpt_dir / "best.pt", map_location="cpu", weights_only=True)
        print(f"[kdlib] resuming {desc} from {ckpt_dir / 'last.pt'}: epoch {start_epoch + 1}, step {start_step}")
        if start_step == 0:
            torch.random.set_rng_state(rng_to_restore)
    if ckpt_dir:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    def checkpoint(epoch, step):
        if ckpt_dir:
            _save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "scheduler": scheduler.state_dict(), "history": history, "epoch": epoch, "step": step,
                   "rng": torch.random.get_rng_state(),
                   "running": (total, n, done + time.time() - t0) if step else (0.0, 0, 0.0)},
                  ckpt_dir / "last.pt")

    for epoch in range(start_epoch, epochs):
        if hasattr(train_loader.batch_sampler, "set_epoch"):
            train_loader.batch_sampler.set_epoch(epoch)
        model.train()
        t0, total, n, done = time.time(), 0.0, 0, 0.0  # done: seconds of this epoch before a resume
        skip = start_step if epoch == start_epoch else 0
        if skip:  # resumed mid-epoch: the epoch's train loss and time also count the steps already done
            total, n, done = running
        bar = tqdm(train_loader, desc=f"{desc} epoch {epoch + 1}/{epochs}", total=steps_per_epoch, leave=False)
        for step, batch in enumerate(bar):
            if step < skip:
                if step == skip - 1:
                    torch.random.set_rng_state(rng_to_restore)
                continue
            logits = _logits(model, batch, device, amp)
            loss = loss_fn(logits, _to(batch, device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch + 1}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            scheduler.step()
            total, n = total + loss.item(), n + 1
            bar.set_postfix(loss=f"{total / n:.4f}")
            if ckpt_every and (step + 1) % ckpt_every == 0 and step + 1 < steps_per_epoch:
                checkpoint(epoch, step + 1)
            if on_step:
                on_step(epoch, step)
        val = evaluate(model, val_loader, device, amp, desc="validate")
        row = {"epoch": epoch + 1, "train_loss": total / max(n, 1), "seconds": done + time.time() - t0,
               **{f"val_{k}": v for k, v in val.items()}}
        history["epochs"].append(row)
        if val[select] > history["best_score"]:
            history["best_score"], history["best_epoch"] = val[select], epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if ckpt_dir:
                _save(best_state, ckpt_dir / "best.pt")
        print(f"[kdlib] {desc} epoch {epoch + 1}: loss {row['train_loss']:.4f}, "
              f"val {select} {val[select]:.4f}, val acc {val['accuracy']:.4f} ({row['seconds']:.0f}s)")
        checkpoint(epoch + 1, 0)
        if on_epoch_end:
            on_epoch_end(epoch, history)
    if best_state is not None:
        model.load_state_dict(best_state)
    print(f"[kdlib] {desc}: using the best checkpoint, epoch {history['best_epoch']} "
          f"(val {select} {history['best_score']:.4f})")
    return history


# --------------------------------------------------------------------------------------------
# the online loop


def online_distill(teacher, student, train_loader, eval_loaders: dict, teacher_loss: Callable,
                   student_loss: Callable, alpha: float, beta: float, T: float = 1.0,
                   meta_epochs: int = 5, teacher_epochs: int = 1, student_epochs: int = 1,
                   teacher_lr: float = 1e-3, student_lr: float = 1e-3, weight_decay: float = 0.0,
                   seed: int = 0, ckpt_dir: str | Path | None = None, device=None,
                   amp: bool = False, grad_clip: float | None = 1.0,
                   teacher_cache: str | Path | None = None,
                   on_student_epoch: Callable | None = None) -> list[dict]:
    """Online distillation, teacher and student training in turns:

        for each meta-epoch:
            train the teacher `teacher_epochs` on teacher_loss(scores, labels) (e.g. a PU loss)
            train the student `student_epochs`; each shuffled batch is split at random:
                data_s (share beta):     true labels,       L_true = student_loss(s, y)
                data_t (share 1 - beta): teacher's outputs, L_teacher = T^2 KL(sigmoid(t/T) || sigmoid(s/T))
                loss = alpha * L_teacher + (1 - alpha) * L_true
            log metrics of both models on every loader in `eval_loaders`

    Teacher outputs are computed without gradient (teacher in eval mode). An empty part of a
    batch contributes 0; with alpha = 0 the teacher is never queried during student training.
    The labels the losses see are the loader's labels (PU labels in the PU setting); the labels
    in each eval loader are what its metrics are computed against.
    Returns one row per (meta_epoch, model, split) with `metrics.binary_metrics`; with `ckpt_dir`,
    a finished meta-epoch is never recomputed after an interruption.

    The teacher never depends on the student: its k-th epoch (counted over the whole run,
    k = meta * teacher_epochs + e) sees sampler epoch k and its own RNG stream seeded by
    (seed, k), so the teacher trajectory is the same for every (alpha, beta, student) and for
    (meta_epochs=M, teacher_epochs=t) and (meta_epochs=1, teacher_epochs=M*t) (offline KD).
    teacher_cache: a folder, keyed by the caller on everything else that shapes the teacher
    (data, loss, model, lr, batch size, seed); after each teacher epoch k its state and optimiser
    go to `teacher_epoch{k}.pt` there, and an epoch already there is loaded instead of trained;
    the teacher's metrics on each eval loader go to `teacher_epoch{k}_eval.json` (keyed by the
    loader's examples and batch size) and are read back instead of recomputed.
    on_student_epoch(meta, epoch, teacher, student): called after each student epoch (0-based),
    e.g. to log finer than per meta-epoch.
    """
    losses._check_T_alpha(T, alpha)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    for name, v in (("meta_epochs", meta_epochs), ("teacher_epochs", teacher_epochs), ("student_epochs", student_epochs)):
        if v < 0 or (name == "meta_epochs" and v < 1):
            raise ValueError(f"{name} must be >= {1 if name == 'meta_epochs' else 0}, got {v}")
    device = torch.device(device) if device else next(student.parameters()).device
    teacher.to(device)
    student.to(device)
    opt_t = torch.optim.AdamW(teacher.parameters(), lr=teacher_lr, weight_decay=weight_decay)
    opt_s = torch.optim.AdamW(student.parameters(), lr=student_lr, weight_decay=weight_decay)
    log: list[dict] = []
    start = 0
    ckpt_dir = Path(ckpt_dir) if ckpt_dir else None
    if ckpt_dir and (ckpt_dir / "online_last.pt").exists():
        ck = torch.load(ckpt_dir / "online_last.pt", map_location="cpu", weights_only=False)
        teacher.load_state_dict(ck["teacher"])
        student.load_state_dict(ck["student"])
        opt_t.load_state_dict(ck["opt_t"])
        opt_s.load_state_dict(ck["opt_s"])
        log, start = ck["log"], ck["meta_epoch"]
        torch.random.set_rng_state(ck["rng"])
        print(f"[kdlib] resuming online loop after meta-epoch {start}")
    if ckpt_dir:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    def step(model, opt, loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()

    def load_cached_teacher(path):
        ck = torch.load(path, map_location="cpu", weights_only=False)
        teacher.load_state_dict(ck["teacher"])
        opt_t.load_state_dict(ck["opt_t"])

    def evaluate_cached_teacher(name, loader, k):
        """The teacher's metrics on `loader` after its k-th epoch; with a teacher cache they are
        computed once per (epoch, loader contents) and read back by every later run."""
        ds = loader.dataset
        if teacher_cache is None or k < 1 or not hasattr(ds, "ids"):
            return evaluate(teacher, loader, device, amp, desc=f"eval teacher {name}")
        path = Path(teacher_cache) / f"teacher_epoch{k}_eval.json"
        key = f"{name}-" + content_hash(ds.ids, ds.labels, ds.lengths, getattr(loader.batch_sampler, "batch_size", None))
        known = json.loads(path.read_text()) if path.exists() else {}
        if key not in known:
            known[key] = evaluate(teacher, loader, device, amp, desc=f"eval teacher {name}")
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # runs under make -j never share a temp file
            tmp.write_text(json.dumps(known, indent=1))
            os.replace(tmp, path)
        return known[key]

    sampler = train_loader.batch_sampler
    for meta in tqdm(range(start, meta_epochs), desc="meta-epochs", initial=start, total=meta_epochs):
        teacher.train()
        cached = None  # the newest cached teacher epoch not loaded yet
        for e in range(teacher_epochs):
            k = meta * teacher_epochs + e  # the teacher's own epoch count over the run
            cache_file = Path(teacher_cache) / f"teacher_epoch{k + 1}.pt" if teacher_cache else None
            if cache_file is not None and cache_file.exists():
                cached = cache_file
                continue
            if cached is not None:  # train on from the newest cached epoch
                load_cached_teacher(cached)
                cached = None
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(k)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed * 1000003 + k)  # teacher dropout: independent of the student
                for batch in tqdm(train_loader, desc=f"teacher {meta + 1}.{e + 1}", leave=False):
                    loss = teacher_loss(_logits(teacher, batch, device, amp), batch["labels"].to(device))
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"non-finite teacher loss at meta-epoch {meta + 1}")
                    step(teacher, opt_t, loss)
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                _save({"teacher": teacher.state_dict(), "opt_t": opt_t.state_dict(), "epoch": k + 1}, cache_file)
        if cached is not None:  # every teacher epoch of this meta-epoch was cached
            load_cached_teacher(cached)
        teacher.eval()
        student.train()
        split_gen = torch.Generator().manual_seed(seed * 100003 + meta)
        for e in range(student_epochs):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(1000 * meta + 500 + e)
            for batch in tqdm(train_loader, desc=f"student {meta + 1}.{e + 1}", leave=False):
                s = _logits(student, batch, device, amp)
                y = batch["labels"].to(device)
                to_true = (torch.rand(len(y), generator=split_gen) < beta).to(device)
                loss = s.new_zeros(())
                if alpha < 1 and to_true.any():
                    loss = loss + (1 - alpha) * student_loss(s[to_true], y[to_true])
                if alpha > 0 and (~to_true).any():
                    keep = ~to_true
                    with torch.no_grad():
                        t = _logits(teacher, {"input_ids": batch["input_ids"][keep.cpu()],
                                              "attention_mask": batch["attention_mask"][keep.cpu()]}, device, amp)
                    loss = loss + alpha * losses.soft_target_loss(s[keep], t, T)
                if not loss.requires_grad:  # nothing to learn from in this batch
                    continue
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite student loss at meta-epoch {meta + 1}")
                step(student, opt_s, loss)
            if on_student_epoch:
                on_student_epoch(meta, e, teacher, student)
                student.train()
        for name, loader in eval_loaders.items():
            for who, model in (("teacher", teacher), ("student", student)):
                if who == "teacher":
                    m = evaluate_cached_teacher(name, loader, (meta + 1) * teacher_epochs)
                else:
                    m = evaluate(model, loader, device, amp, desc=f"eval {who} {name}")
                log.append({"meta_epoch": meta + 1, "model": who, "split": name, **m})
        summary = ", ".join(f"{r['model']} {r['split']} auc {r['roc_auc']:.3f}" for r in log if r["meta_epoch"] == meta + 1)
        print(f"[kdlib] meta-epoch {meta + 1}: {summary}")
        if ckpt_dir:
            _save({"teacher": teacher.state_dict(), "student": student.state_dict(), "opt_t": opt_t.state_dict(),
                   "opt_s": opt_s.state_dict(), "log": log, "meta_epoch": meta + 1,
                   "rng": torch.random.get_rng_state()}, ckpt_dir / "online_last.pt")
    return log
