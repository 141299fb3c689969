"""Training loops: `fit` (plain or offline KD), `predict`, and the online teacher/student loop.

A loss function is any ``loss_fn(logits, batch) -> scalar``; `bce_objective` and `kd_objective`
build the two the study uses.

Randomness: every training epoch draws its dropout from its own stream, seeded by (seed, epoch)
(`rng_stream`), and every DataLoader owns its generator (`data.make_loader`), so evaluation passes,
cache hits and teacher look-ups never shift what a model learns: a run on a cold cache and on a
warm one end with the same weights. Checkpoints hold the model, optimiser, scheduler, history and
every generator (CPU and CUDA), so an interrupted run resumes and ends with the same weights as
an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import losses, metrics, pu_select
from .data import TeacherLogits, content_hash
from .progress import tqdm


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) with transformers' `set_seed`."""
    from transformers import set_seed

    set_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def _cuda_devices(device) -> list:
    return [torch.device(device)] if torch.device(device).type == "cuda" else []


def get_rng(device) -> dict:
    """The global generators a training step draws from: CPU and, on a GPU, CUDA."""
    state = {"cpu": torch.random.get_rng_state()}
    if _cuda_devices(device):
        state["cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return state


def set_rng(state: dict, device) -> None:
    torch.random.set_rng_state(state["cpu"])
    if _cuda_devices(device) and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], torch.device(device))


@contextlib.contextmanager
def rng_stream(device, *key: int):
    """Draw from a private stream seeded by `key` inside the block (CPU and CUDA); the global
    generators are restored afterwards, so nothing outside the block sees or shifts it."""
    with torch.random.fork_rng(devices=_cuda_devices(device)):
        torch.manual_seed(int(np.random.SeedSequence(list(key)).generate_state(1)[0]))
        yield


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
    """Plain cross-entropy on the batch labels (unlabelled examples raise): binary cross-entropy for
    single logits, the K-class one for (B, K) logits."""
    def loss_fn(logits, batch):
        loss = losses.kd_loss if logits.ndim == 1 else losses.softmax_kd_loss
        return loss(logits, None, batch["labels"].to(logits.device), T=1.0, alpha=0.0)
    return loss_fn


TARGETS = ("soft", "hard", "smoothed", "smoothed_T", "shuffled")
SOFTENED = ("soft", "smoothed_T", "shuffled")  # read at the distillation T, weighted by T^2; the others at T = 1


def shuffled_within_class(teacher_logits: TeacherLogits, ids, labels, seed: int) -> TeacherLogits:
    """The teacher's outputs for `ids`, each moved to another example of the same label by a permutation
    within each class drawn from `seed`: per class the same targets, so the same spread of softness,
    but no per-example knowledge (the shuffled-targets control). Every example needs a label (not -1)."""
    ids, labels = np.asarray(ids), np.asarray(labels)
    if ids.shape != labels.shape or ids.ndim != 1:
        raise ValueError(f"ids and labels must be two (N,) arrays, got shapes {ids.shape} and {labels.shape}")
    if (labels < 0).any():
        raise ValueError("shuffling within a class needs every example's label: unlabelled examples (-1) have none")
    z = teacher_logits[ids].numpy()
    out, rng = z.copy(), np.random.default_rng(seed)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        out[where] = z[rng.permutation(where)]
    return TeacherLogits(ids, out)


def _target_prob(logits, labels, t, targets, smoothing):
    """What fills the teacher's slot for "hard" (its argmax) and "smoothed" (the true labels smoothed
    by `smoothing`): the positive-class probability for single logits, class probabilities (B, K)
    for K-class logits (smoothing eps: 1 - eps + eps/K on the true class, eps/K on the others)."""
    if targets == "hard":
        return (t > 0).to(logits.dtype) if logits.ndim == 1 else \
            torch.nn.functional.one_hot(t.argmax(1), logits.shape[1]).to(logits.dtype)
    if bool((labels < 0).any()):
        raise ValueError("targets='smoothed' needs labels: unlabelled examples have none to smooth")
    if logits.ndim == 1:
        return labels.to(logits.dtype) * (1 - smoothing) + smoothing / 2
    k = logits.shape[1]
    return torch.nn.functional.one_hot(labels.long(), k).to(logits.dtype) * (1 - smoothing) + smoothing / k


def kd_objective(teacher_logits: TeacherLogits, T: float, alpha: float, targets: str = "soft",
                 smoothing: float = 0.0) -> Callable:
    """Offline KD: `losses.kd_loss` (single logits) or `losses.softmax_kd_loss` (K-class logits)
    with teacher logits looked up by the batch's example ids.

    `targets` fills the teacher's slot of the loss: "soft", its outputs at T; "hard", its argmax
    labels (self-training on unlabelled examples; T must be 1); "smoothed", the true labels
    smoothed by `smoothing` (no teacher at all: the label-smoothing control; T must be 1); the
    controls at the distillation temperature (`SOFTENED`: the student's logits read at T, the term
    weighted by T^2, as for "soft"): "smoothed_T", those smoothed labels; "shuffled", the teacher's
    outputs at T with `teacher_logits` already shuffled within each class (`shuffled_within_class`)."""
    losses._check_T_alpha(T, alpha)
    if targets not in TARGETS:
        raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
    if targets not in SOFTENED and T != 1:
        raise ValueError(f"targets={targets!r} are not softened: T must be 1, got {T}")
    if not 0 <= smoothing <= 1 or (smoothing and targets not in ("smoothed", "smoothed_T")):
        raise ValueError(f"smoothing must be in [0, 1] and only with targets 'smoothed' or 'smoothed_T', got {smoothing}")
    if alpha == 0:
        return bce_objective()

    def loss_fn(logits, batch):
        labels = batch["labels"].to(logits.device)
        loss = losses.kd_loss if logits.ndim == 1 else losses.softmax_kd_loss
        t = None if targets in ("smoothed", "smoothed_T") else teacher_logits[batch["ids"]].to(logits.device)
        if targets in ("soft", "shuffled"):
            return loss(logits, t, labels, T=T, alpha=alpha)
        return loss(logits, None, labels, T=T, alpha=alpha, target_prob=_target_prob(logits, labels, t, targets, smoothing))
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


def _scheduler(optimizer, schedule: str, total_steps: int, warmup_frac: float):
    """transformers' linear warm-up then linear decay, or a constant rate."""
    if schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, max(1, int(total_steps * warmup_frac)), total_steps)


def cosine_restart_rate(step: int, lr: float, cycle_steps: int, warmup_steps: int = 0) -> float:
    """The rate of optimizer step `step` (0-based) under cosine annealing with warm restarts
    (Loshchilov & Hutter 2017), the schedule of snapshot ensembles (Huang et al. 2017): every cycle
    of `cycle_steps` starts at `lr` and falls to 0 along a half cosine; the first `warmup_steps`
    steps of the first cycle are scaled by a linear warm-up, (step + 1) / warmup_steps."""
    if int(cycle_steps) != cycle_steps or cycle_steps < 1 or warmup_steps < 0:
        raise ValueError(f"cycle_steps must be an integer >= 1 and warmup_steps >= 0, got {cycle_steps}, {warmup_steps}")
    rate = lr * 0.5 * (1 + math.cos(math.pi * (step % cycle_steps) / cycle_steps))
    return rate * min(1.0, (step + 1) / warmup_steps) if step < warmup_steps else rate


@contextlib.contextmanager
def cosine_restarts(model, lr: float, cycle_steps: int, warmup_steps: int = 0):
    """Inside the block, the optimizer over `model`'s parameters (e.g. `fit`'s, run with
    schedule="constant") takes each step at `cosine_restart_rate` of its own step count. A global
    optimizer pre-step hook sets the rate from the count the optimizer keeps in its state, which
    `fit` checkpoints: a resumed run goes on along the same schedule."""
    cosine_restart_rate(0, lr, cycle_steps, warmup_steps)  # checks the arguments
    mine = {id(p) for p in model.parameters()}

    def set_rate(optimizer, args, kwargs):
        if not any(id(p) in mine for g in optimizer.param_groups for p in g["params"]):
            return
        done = max((int(st["step"]) for st in optimizer.state.values() if "step" in st), default=0)
        for group in optimizer.param_groups:
            group["lr"] = cosine_restart_rate(done, lr, cycle_steps, warmup_steps)

    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(set_rate)
    try:
        yield
    finally:
        handle.remove()


def _step(model, optimizer, loss, grad_clip) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


def _check_fit_args(epochs, patience, schedule, lr) -> None:
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs}")
    if patience is not None and (int(patience) != patience or patience < 1):
        raise ValueError(f"patience must be None or an integer >= 1, got {patience}")
    if schedule not in ("constant", "linear"):
        raise ValueError(f"schedule must be 'constant' or 'linear', got {schedule!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")


def stop_reason(history: dict, epochs: int, patience: int | None) -> str | None:
    """Why training stops after the epochs in `history`: "patience" (no validation improvement
    for `patience` epochs), "cap" (`epochs` done), or None (go on)."""
    done = len(history["epochs"])
    if patience is not None and done and done - history["best_epoch"] >= patience:
        return "patience"
    return "cap" if done >= epochs else None


def fit(model, train_loader, val_loader, loss_fn: Callable, epochs: int, lr: float = 1e-3,
        weight_decay: float = 0.0, schedule: str = "constant", warmup_frac: float = 0.1,
        grad_clip: float | None = 1.0, select: str = "roc_auc", patience: int | None = None, seed: int = 0,
        ckpt_dir: str | Path | None = None, ckpt_every: int | None = None, device=None, amp: bool = False,
        desc: str = "train", on_epoch_end: Callable | None = None, on_step: Callable | None = None) -> dict:
    """Train `model` until validation `select` has not improved for `patience` epochs (None: never
    stop early) or `epochs` (the cap) are done; keep and load the best validation weights. The
    validation metrics are `metrics.classification_metrics`: binary for single logits, K-class
    for (B, K) logits.

    Epoch e draws its dropout from the stream (seed, e), so the same seed gives the same run
    whatever else the process does. schedule: "constant" or "linear" (warm-up over `warmup_frac`
    of the cap's steps, then linear decay). ckpt_dir: where `last.pt` (every epoch and every
    `ckpt_every` steps) and `best.pt` go; an existing `last.pt` is resumed from. The returned
    history lists each epoch (its `seconds` count every leg of an interrupted run), the best
    epoch, and `stopped` = {"reason", "epochs_run"}. A non-finite validation score raises (the
    last checkpoint stays). `on_epoch_end(epoch, history)` / `on_step(epoch, step)` are hooks.
    """
    _check_fit_args(epochs, patience, schedule, lr)
    device = torch.device(device) if device else next(model.parameters()).device
    model.to(device)
    # the fused kernel: one pass over every parameter per step instead of several (a large share
    # of a small student's step is AdamW over its embedding table; scripts/profile_student.py)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                                  fused=device.type in ("cpu", "cuda") or None)
    scheduler = _scheduler(optimizer, schedule, epochs * len(train_loader), warmup_frac)
    ckpt_dir = Path(ckpt_dir) if ckpt_dir else None
    state = _resume(ckpt_dir, model, optimizer, scheduler, desc)
    history = state["history"] or {"epochs": [], "best_epoch": 0, "best_score": -math.inf, "select": select,
                                   "patience": patience, "cap": epochs}
    best_state = state["best"]
    while (reason := stop_reason(history, epochs, patience)) is None:
        epoch = len(history["epochs"])
        row = _train_epoch(model, optimizer, scheduler, train_loader, loss_fn, epoch, epochs, seed, device, amp,
                           grad_clip, ckpt_dir, history, state if epoch == state["epoch"] else None,
                           ckpt_every, desc, on_step)
        out = predict(model, val_loader, device, amp, desc="validate")
        val = metrics.classification_metrics(out["labels"], out["logits"])
        if not math.isfinite(val[select]):
            raise FloatingPointError(f"validation {select} is {val[select]} after epoch {epoch + 1}: "
                                     "stopped; the last checkpoint is kept")
        history["epochs"].append({**row, **{f"val_{k}": v for k, v in val.items()}})
        if val[select] > history["best_score"]:
            history["best_score"], history["best_epoch"] = val[select], epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            if ckpt_dir:
                _save(best_state, ckpt_dir / "best.pt")
        print(f"[kdlib] {desc} epoch {epoch + 1}: loss {row['train_loss']:.4f}, val {select} {val[select]:.4f}, "
              f"val acc {val['accuracy']:.4f} ({row['seconds']:.0f}s)")
        _checkpoint(ckpt_dir, model, optimizer, scheduler, history, epoch + 1, 0, None, device)
        if on_epoch_end:
            on_epoch_end(epoch, history)
    history["stopped"] = {"reason": reason, "epochs_run": len(history["epochs"])}
    if best_state is not None:
        model.load_state_dict(best_state)
    print(f"[kdlib] {desc}: stopped ({reason}) after {len(history['epochs'])} epochs; using the best "
          f"checkpoint, epoch {history['best_epoch']} (val {select} {history['best_score']:.4f})")
    return history


def _resume(ckpt_dir, model, optimizer, scheduler, desc) -> dict:
    """The state saved in ckpt_dir/last.pt loaded into the model, optimiser and scheduler; returns
    {history, epoch, step, rng, running, best} (empty values when there is nothing to resume)."""
    empty = {"history": None, "epoch": 0, "step": 0, "rng": None, "running": (0.0, 0, 0.0), "best": None}
    if not ckpt_dir:
        return empty
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if not (ckpt_dir / "last.pt").exists():
        return empty
    ck = torch.load(ckpt_dir / "last.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    scheduler.load_state_dict(ck["scheduler"])
    best = torch.load(ckpt_dir / "best.pt", map_location="cpu", weights_only=True) if (ckpt_dir / "best.pt").exists() else None
    print(f"[kdlib] resuming {desc} from {ckpt_dir.name}/last.pt: epoch {ck['epoch'] + 1}, step {ck['step']}")
    return {"history": ck["history"], "epoch": ck["epoch"], "step": ck["step"], "rng": ck["rng"],
            "running": ck["running"], "best": best}


def _checkpoint(ckpt_dir, model, optimizer, scheduler, history, epoch, step, running, device) -> None:
    if ckpt_dir:
        _save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "history": history, "epoch": epoch, "step": step, "rng": get_rng(device),
               "running": running or (0.0, 0, 0.0)}, ckpt_dir / "last.pt")


def _train_epoch(model, optimizer, scheduler, loader, loss_fn, epoch, epochs, seed, device, amp, grad_clip,
                 ckpt_dir, history, resumed, ckpt_every, desc, on_step) -> dict:
    """One training epoch in its own RNG stream (seed, epoch); `resumed` (the saved state of a run
    stopped inside this epoch) skips the steps already taken and restores their generators."""
    if hasattr(loader.batch_sampler, "set_epoch"):
        loader.batch_sampler.set_epoch(epoch)
    model.train()
    skip = resumed["step"] if resumed else 0
    total, n, done = resumed["running"] if skip else (0.0, 0, 0.0)  # done: seconds before a resume
    t0 = time.time()
    with rng_stream(device, seed, epoch):
        bar = tqdm(loader, desc=f"{desc} epoch {epoch + 1}/{epochs}", total=len(loader), leave=False)
        for step, batch in enumerate(bar):
            if step < skip:
                if step == skip - 1:
                    set_rng(resumed["rng"], device)
                continue
            loss = loss_fn(_logits(model, batch, device, amp), _to(batch, device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch + 1}, step {step}")
            _step(model, optimizer, loss, grad_clip)
            scheduler.step()
            total, n = total + loss.item(), n + 1
            bar.set_postfix(loss=f"{total / n:.4f}")
            if ckpt_every and (step + 1) % ckpt_every == 0 and step + 1 < len(loader):
                _checkpoint(ckpt_dir, model, optimizer, scheduler, history, epoch, step + 1,
                            (total, n, done + time.time() - t0), device)
            if on_step:
                on_step(epoch, step)
    return {"epoch": epoch + 1, "train_loss": total / max(n, 1), "seconds": done + time.time() - t0}


# --------------------------------------------------------------------------------------------
# the online loop


def split_batch(labels: torch.Tensor, label_share: float, generator: torch.Generator) -> torch.Tensor:
    """Which examples of a batch learn from their labels (True) rather than from the teacher:
    exactly round(label_share * n) of the n, holding round(label_share * positives) of the
    batch's positives (label 1), at least one when label_share > 0 and the batch has any, so a PU
    loss on that part always sees labelled positives. Drawn from `generator`."""
    labels = labels.cpu()
    n, pos = len(labels), torch.nonzero(labels == 1).flatten()
    rest = torch.nonzero(labels != 1).flatten()
    k = math.floor(label_share * n + 0.5)
    k_pos = min(len(pos), k, max(int(label_share > 0 and len(pos) > 0), math.floor(label_share * len(pos) + 0.5)))
    k_pos = max(k_pos, k - len(rest))  # too few others: the remainder comes from the positives
    chosen = torch.cat([pos[torch.randperm(len(pos), generator=generator)[:k_pos]],
                        rest[torch.randperm(len(rest), generator=generator)[:k - k_pos]]])
    mask = torch.zeros(n, dtype=torch.bool)
    mask[chosen] = True
    return mask


def _check_online_args(T, alpha, label_share, meta_epochs, teacher_epochs, student_epochs) -> None:
    losses._check_T_alpha(T, alpha)
    if not 0.0 <= label_share <= 1.0:
        raise ValueError(f"label_share must be in [0, 1], got {label_share}")
    for name, v, low in (("meta_epochs", meta_epochs, 1), ("teacher_epochs", teacher_epochs, 0),
                         ("student_epochs", student_epochs, 0)):
        if int(v) != v or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v}")


def _teacher_metrics(teacher, name, loader, k, teacher_cache, device, amp, measure: Callable | None = None) -> dict:
    """The teacher's metrics on `loader` after its k-th epoch (`measure()`, by default `evaluate`);
    with a teacher cache they are computed once per (epoch, name, loader contents) and read back by
    every later run."""
    ds = loader.dataset
    measure = measure or (lambda: evaluate(teacher, loader, device, amp, desc=f"eval teacher {name}"))
    if teacher_cache is None or k < 1 or not hasattr(ds, "ids"):
        return measure()
    path = Path(teacher_cache) / f"teacher_epoch{k}_eval.json"
    key = f"{name}-" + content_hash(ds.ids, ds.labels, ds.lengths, getattr(loader.batch_sampler, "batch_size", None))
    known = json.loads(path.read_text()) if path.exists() else {}
    if key not in known:
        known[key] = measure()
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # runs side by side never share a temp file
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, path)
    return known[key]


SELECT_BY = ("last", "pu_risk", "lu_auc")  # the models at the end of the budget, or the best by a PU-only criterion
TEACHER_SCHEDULES = ("constant", "linear")


def _risk(loss_fn, scores, labels) -> losses.PURisk:
    """`loss_fn.risk(scores, labels)` for a loss with parts (`losses.PULoss`), else its value alone."""
    if hasattr(loss_fn, "risk"):
        return loss_fn.risk(scores, labels)
    return losses.PURisk(loss_fn(scores, labels), None, None, False)


def _step_row(model: str, meta: int, epoch: int, step: int, r: losses.PURisk) -> dict:
    """One training batch's record, from detached values (NaN for the parts, None for `fired`, when
    the loss has no parts). `epoch` counts that model's epochs over the run (1-based), `meta` is 0-based."""
    def value(t):
        return math.nan if t is None else t.detach().item()
    return {"model": model, "meta_epoch": meta + 1, "epoch": epoch, "step": step, "loss": value(r.loss),
            "positive_risk": value(r.positive_risk), "negative_risk": value(r.negative_risk),
            "fired": None if r.positive_risk is None else bool(r.fired)}


def step_summary(steps: list[dict]) -> dict:
    """The PU columns of a log row from its batches' records (`_step_row`): the mean positive and
    negative partial risks, the share of batches where the non-negative correction fired, and the
    number of batches (NaN means when there are none, or the loss has no parts)."""
    def mean(key):
        v = [float(s[key]) for s in steps if s[key] is not None and not math.isnan(s[key])]
        return float(np.mean(v)) if v else math.nan
    return {"pu_positive_risk": mean("positive_risk"), "pu_negative_risk": mean("negative_risk"),
            "pu_fired_share": mean("fired"), "pu_batches": len(steps)}


def _optimizer_step(model, optimizer, scheduler, loss, i, n, accumulate, grad_clip) -> None:
    """Batch i (0-based) of an epoch of n: `_step` when accumulate == 1 (every run of the study so
    far); else the gradients of `accumulate` batches (fewer at the epoch's end) averaged into one
    optimizer step (each batch keeps its own non-negative correction). The scheduler, if any, moves
    once per optimizer step."""
    if accumulate == 1:
        _step(model, optimizer, loss, grad_clip)
    else:
        start = i - i % accumulate
        end = min(start + accumulate, n)
        if i == start:
            optimizer.zero_grad(set_to_none=True)
        (loss / (end - start)).backward()
        if i + 1 < end:
            return
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    if scheduler is not None:
        scheduler.step()


def _teacher_turn(teacher, opt_t, sched_t, loader, teacher_loss, meta, teacher_epochs, seed, device, amp, grad_clip,
                  teacher_cache, accumulate=1, steps: list | None = None) -> None:
    """The teacher's epochs of meta-epoch `meta`. Its k-th epoch over the run sees sampler epoch k
    and the RNG stream (seed, 0, k), whatever the student does; with `teacher_cache` each epoch's
    weights go to teacher_epoch{k}.pt (its batches' records to teacher_epoch{k}_steps.json) and an
    epoch found there is loaded instead of trained. Each batch's record goes to `steps`."""
    teacher.train()
    steps = [] if steps is None else steps
    cached = None  # the newest cached teacher epoch not loaded yet
    for e in range(teacher_epochs):
        k = meta * teacher_epochs + e
        cache_file = Path(teacher_cache) / f"teacher_epoch{k + 1}.pt" if teacher_cache else None
        if cache_file is not None and cache_file.exists():
            cached = cache_file
            steps_file = cache_file.with_name(f"teacher_epoch{k + 1}_steps.json")
            steps.extend({**r, "meta_epoch": meta + 1} for r in (json.loads(steps_file.read_text())
                                                                 if steps_file.exists() else []))
            continue
        if cached is not None:  # train on from the newest cached epoch
            _load_teacher(teacher, opt_t, sched_t, cached)
            cached = None
        if hasattr(loader.batch_sampler, "set_epoch"):
            loader.batch_sampler.set_epoch(k)
        mine = []
        with rng_stream(device, seed, 0, k):
            for i, batch in enumerate(tqdm(loader, desc=f"teacher {meta + 1}.{e + 1}", leave=False)):
                r = _risk(teacher_loss, _logits(teacher, batch, device, amp), batch["labels"].to(device))
                if not torch.isfinite(r.loss):
                    raise FloatingPointError(f"non-finite teacher loss at meta-epoch {meta + 1}")
                _optimizer_step(teacher, opt_t, sched_t, r.loss, i, len(loader), accumulate, grad_clip)
                mine.append(_step_row("teacher", meta, k + 1, i, r))
        steps.extend(mine)
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            steps_file = cache_file.with_name(f"teacher_epoch{k + 1}_steps.json")
            tmp = steps_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(mine))
            os.replace(tmp, steps_file)
            _save({"teacher": teacher.state_dict(), "opt_t": opt_t.state_dict(), "epoch": k + 1,
                   **({"sched_t": sched_t.state_dict()} if sched_t is not None else {})}, cache_file)
    if cached is not None:  # every teacher epoch of this meta-epoch was cached
        _load_teacher(teacher, opt_t, sched_t, cached)


def _load_teacher(teacher, opt_t, sched_t, path) -> None:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    teacher.load_state_dict(ck["teacher"])
    opt_t.load_state_dict(ck["opt_t"])
    if sched_t is not None:
        sched_t.load_state_dict(ck["sched_t"])


def _student_epoch(student, teacher, opt_s, loader, student_loss, alpha, label_share, T, seed, meta, e,
                   device, amp, grad_clip, steps: list | None = None, epoch: int | None = None) -> None:
    """One student epoch: each batch split by `split_batch` into the part that learns from its
    labels (loss weight 1 - alpha) and the part that learns from the teacher (weight alpha).
    Dropout and the split draw from streams keyed by (seed, meta, e) only. The record of each
    batch's label term (`_step_row`, student epoch `epoch` of the run) goes to `steps`."""
    teacher.eval()
    student.train()
    steps = [] if steps is None else steps
    if hasattr(loader.batch_sampler, "set_epoch"):
        loader.batch_sampler.set_epoch(1000 * meta + 500 + e)
    split_gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, 2, meta, e]).generate_state(1)[0]))
    with rng_stream(device, seed, 1, meta, e):
        for i, batch in enumerate(tqdm(loader, desc=f"student {meta + 1}.{e + 1}", leave=False)):
            s = _logits(student, batch, device, amp)
            y = batch["labels"].to(device)
            own = split_batch(batch["labels"], label_share, split_gen)
            loss = s.new_zeros(())
            if alpha < 1 and own.any():
                r = _risk(student_loss, s[own.to(device)], y[own.to(device)])
                loss = loss + (1 - alpha) * r.loss
                steps.append(_step_row("student", meta, epoch if epoch is not None else e + 1, i, r))
            if alpha > 0 and (~own).any():
                with torch.no_grad():
                    t = _logits(teacher, {"input_ids": batch["input_ids"][~own],
                                          "attention_mask": batch["attention_mask"][~own]}, device, amp)
                loss = loss + alpha * losses.soft_target_loss(s[(~own).to(device)], t, T)
            if not loss.requires_grad:  # nothing to learn from in this batch
                continue
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite student loss at meta-epoch {meta + 1}")
            _step(student, opt_s, loss, grad_clip)


class PUSelection:
    """Model selection without true labels for `online_distill`: the teacher after every meta-epoch
    and the student after every epoch are measured on a PU-labelled validation loader (labels
    1 = labelled positive, 0 = unlabelled) by `pu_select.pu_risk` (sigmoid loss, `prior` = pi_u,
    the unlabelled part's positive share; lower is better) and `pu_select.lu_auc` (higher is
    better). select_by "pu_risk" or "lu_auc" keeps a copy of each model's weights at its best value
    (the earlier one on a tie) and `online_distill` ends with those weights loaded; "last" keeps the
    models at the end of the budget. Only the loader's labels are read, and they must be PU labels:
    no true label chooses anything. `history` holds every measurement, `chosen` each model's pick.
    prior=None (no positive left unlabelled) leaves the PU risk out (NaN; select_by="pu_risk" raises)."""

    def __init__(self, val_loader, prior: float | None, select_by: str = "last"):
        if select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {SELECT_BY}, got {select_by!r}")
        if prior is not None or select_by == "pu_risk":
            pu_select._check_prior(prior)
        pu_select._pu_arrays(np.zeros(len(val_loader.dataset.labels)), val_loader.dataset.labels)  # PU labels 0/1
        self.loader, self.prior, self.select_by = val_loader, prior, select_by
        self.history: list[dict] = []
        self.chosen: dict[str, dict] = {}
        self.states: dict[str, dict] = {}

    def measure(self, model, device, amp) -> dict:
        out = predict(model, self.loader, device, amp, desc="PU validation")
        return {"val_pu_risk": math.nan if self.prior is None else pu_select.pu_risk(out["logits"], out["labels"], self.prior),
                "val_lu_auc": pu_select.lu_auc(out["logits"], out["labels"])}

    def offer(self, who: str, model, values: dict, meta_epoch: int, epoch: int) -> None:
        """Record `values` (`measure`) of `who` after its epoch `epoch` (1-based over the run) and
        keep its weights when they are the best so far."""
        self.history.append({"model": who, "meta_epoch": meta_epoch, "epoch": epoch, **values})
        at = {"meta_epoch": meta_epoch, "epoch": epoch}
        if self.select_by == "last":
            self.chosen[who] = {**at, "value": None}
            return
        value, sign = values["val_" + self.select_by], (-1 if self.select_by == "pu_risk" else 1)
        best = self.chosen.get(who)
        if math.isfinite(value) and (best is None or sign * value > sign * best["value"]):
            self.chosen[who] = {**at, "value": value}
            self.states[who] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def values(self, who: str, epoch: int) -> dict:
        """The criteria of `who` after its epoch `epoch` (the newest such measurement)."""
        rows = [r for r in self.history if r["model"] == who and r["epoch"] == epoch]
        return {k: v for k, v in rows[-1].items() if k.startswith("val_")} if rows else {}

    def load_chosen(self, *models) -> None:
        """Load each (name, model)'s chosen weights (nothing for select_by="last")."""
        for who, model in models:
            if who in self.states:
                model.load_state_dict(self.states[who])

    def state_dict(self) -> dict:
        return {"history": self.history, "chosen": self.chosen, "states": self.states}

    def load_state_dict(self, state: dict) -> None:
        self.history, self.chosen, self.states = state["history"], state["chosen"], state["states"]


def pu_log_columns(who: str, epochs: range, steps: list | None = None, selection: PUSelection | None = None) -> dict:
    """The PU columns of a log row of `who` (teacher or student) covering its epochs `epochs`
    (1-based over the run): the selection criteria after the last of them and the `step_summary`
    of their batches."""
    out = selection.values(who, epochs[-1]) if selection is not None else {}
    if steps is not None:
        out.update(step_summary([r for r in steps if r["model"] == who and r["epoch"] in epochs]))
    return out


def _check_teacher_opt_args(teacher_schedule, teacher_warmup_frac, accumulate) -> None:
    if teacher_schedule not in TEACHER_SCHEDULES:
        raise ValueError(f"teacher_schedule must be one of {TEACHER_SCHEDULES}, got {teacher_schedule!r}")
    if not 0.0 <= teacher_warmup_frac < 1.0:
        raise ValueError(f"teacher_warmup_frac must be in [0, 1), got {teacher_warmup_frac}")
    if int(accumulate) != accumulate or accumulate < 1:
        raise ValueError(f"accumulate must be an integer >= 1, got {accumulate}")


def online_distill(teacher, student, train_loader, eval_loaders: dict, teacher_loss: Callable,
                   student_loss: Callable, alpha: float, label_share: float, T: float = 1.0,
                   meta_epochs: int = 5, teacher_epochs: int = 1, student_epochs: int = 1,
                   teacher_lr: float = 1e-3, student_lr: float = 1e-3, weight_decay: float = 0.0,
                   seed: int = 0, ckpt_dir: str | Path | None = None, device=None,
                   amp: bool = False, grad_clip: float | None = 1.0,
                   teacher_cache: str | Path | None = None,
                   on_student_epoch: Callable | None = None, teacher_weight_decay: float | None = None,
                   teacher_schedule: str = "constant", teacher_warmup_frac: float = 0.1, accumulate: int = 1,
                   selection: PUSelection | None = None, steps: list | None = None,
                   teacher_candidates: tuple[int, ...] | None = None) -> list[dict]:
    """Online distillation, teacher and student training in turns:

        for each meta-epoch:
            train the teacher `teacher_epochs` on teacher_loss(scores, labels) (e.g. a PU loss)
            train the student `student_epochs`; each batch is split (`split_batch`) into
                data_s (share label_share: of each batch, the part learned from labels): L_true = student_loss(s, y)
                data_t (the rest): L_teacher = T^2 KL(sigmoid(t/T) || sigmoid(s/T))
                loss = alpha * L_teacher + (1 - alpha) * L_true
            log metrics of both models on every loader in `eval_loaders`

    Teacher outputs are computed without gradient (teacher in eval mode). An empty part of a
    batch contributes 0; with alpha = 0 the teacher is never queried during student training.
    The labels the losses see are the loader's labels (PU labels in the PU setting); the labels
    in each eval loader are what its metrics are computed against.
    Returns one row per (meta_epoch, model, split) with `metrics.binary_metrics`; with `ckpt_dir`,
    a finished meta-epoch is never recomputed after an interruption.

    The teacher's optimiser: AdamW with `teacher_weight_decay` (None: `weight_decay`, which the
    student's takes), a constant rate or `teacher_schedule="linear"` (warm-up over
    `teacher_warmup_frac` of its optimizer steps, then linear decay to 0), one step every
    `accumulate` batches (`_optimizer_step`). The defaults are the study's runs so far.

    `selection` (`PUSelection`): the models measured on its PU validation set (teacher after every
    meta-epoch, student after every epoch), the rows given its criteria, and, when it selects by a
    criterion, the chosen weights loaded at the end. `steps` (a list): every training batch's
    record appended (`_step_row`: the loss, the partial risks of a `losses.PULoss` and whether its
    correction fired; for the student its label term) and the rows given their `step_summary`.
    Measuring and recording never change what the models learn.

    The teacher never depends on the student (`_teacher_turn`), so its trajectory is the same for
    every (alpha, label_share, student) and for (meta_epochs=M, teacher_epochs=t) and
    (meta_epochs=1, teacher_epochs=M*t) (offline KD). teacher_cache: a folder, keyed by the caller
    on everything else that shapes the teacher (data, loss, model, lr, batch size, seed, code);
    the teacher's metrics on each eval loader are cached there too. Every epoch draws from its own
    RNG stream, so a cold and a warm cache give bit-identical students.
    on_student_epoch(meta, epoch, teacher, student): called after each student epoch (0-based).

    teacher_candidates (offline KD, meta_epochs=1 only): the teacher epochs of its turn after which
    it may teach the student, instead of the turn's end. The turn is trained (or read from
    teacher_cache) up to the last candidate, on the schedule of all `teacher_epochs`, so each
    candidate is the shared trajectory's teacher at that epoch; `_pick_teacher` measures them
    and the student distils from the pick, frozen.
    """
    _check_online_args(T, alpha, label_share, meta_epochs, teacher_epochs, student_epochs)
    _check_teacher_opt_args(teacher_schedule, teacher_warmup_frac, accumulate)
    _check_teacher_candidates(teacher_candidates, meta_epochs, teacher_epochs, selection, teacher_cache)
    device = torch.device(device) if device else next(student.parameters()).device
    teacher.to(device)
    student.to(device)
    opt_t = torch.optim.AdamW(teacher.parameters(), lr=teacher_lr,
                              weight_decay=weight_decay if teacher_weight_decay is None else teacher_weight_decay)
    opt_s = torch.optim.AdamW(student.parameters(), lr=student_lr, weight_decay=weight_decay)
    sched_t = None if teacher_schedule == "constant" else _scheduler(
        opt_t, teacher_schedule, meta_epochs * teacher_epochs * math.ceil(len(train_loader) / accumulate),
        teacher_warmup_frac)
    log, start = _resume_online(ckpt_dir, teacher, student, opt_t, opt_s, sched_t, selection, steps)
    for meta in tqdm(range(start, meta_epochs), desc="meta-epochs", initial=start, total=meta_epochs):
        _teacher_turn(teacher, opt_t, sched_t, train_loader, teacher_loss, meta,
                      teacher_epochs if teacher_candidates is None else teacher_candidates[-1], seed, device, amp,
                      grad_clip, teacher_cache, accumulate, steps)
        if teacher_candidates is None:
            k = (meta + 1) * teacher_epochs
            if selection is not None:
                selection.offer("teacher", teacher, _pu_values(teacher, selection, k, teacher_cache, device, amp), meta + 1, k)
        else:
            k = _pick_teacher(teacher, teacher_candidates, selection, teacher_cache, device, amp)
        for e in range(student_epochs):
            _student_epoch(student, teacher, opt_s, train_loader, student_loss, alpha, label_share, T, seed,
                           meta, e, device, amp, grad_clip, steps, meta * student_epochs + e + 1)
            if selection is not None:
                selection.offer("student", student, selection.measure(student, device, amp), meta + 1,
                                meta * student_epochs + e + 1)
            if on_student_epoch:
                on_student_epoch(meta, e, teacher, student)
        columns = {"teacher": pu_log_columns("teacher", range(meta * teacher_epochs + 1, k + 1), steps, selection),
                   "student": pu_log_columns("student", range(meta * student_epochs + 1, (meta + 1) * student_epochs + 1),
                                             steps, selection)}
        for name, loader in eval_loaders.items():
            log.append({"meta_epoch": meta + 1, "model": "teacher", "split": name,
                        **_teacher_metrics(teacher, name, loader, k, teacher_cache, device, amp), **columns["teacher"]})
            log.append({"meta_epoch": meta + 1, "model": "student", "split": name,
                        **evaluate(student, loader, device, amp, desc=f"eval student {name}"), **columns["student"]})
        print(f"[kdlib] meta-epoch {meta + 1}: " + ", ".join(
            f"{r['model']} {r['split']} auc {r['roc_auc']:.3f}" for r in log if r["meta_epoch"] == meta + 1))
        if ckpt_dir:
            _save({"teacher": teacher.state_dict(), "student": student.state_dict(), "opt_t": opt_t.state_dict(),
                   "opt_s": opt_s.state_dict(), "log": log, "meta_epoch": meta + 1, "rng": get_rng(device),
                   **({"sched_t": sched_t.state_dict()} if sched_t is not None else {}),
                   **({"selection": selection.state_dict()} if selection is not None else {}),
                   **({"steps": steps} if steps is not None else {})},
                  Path(ckpt_dir) / "online_last.pt")
    if selection is not None:
        selection.load_chosen(("teacher", teacher), ("student", student))
    return log


def _pu_values(teacher, selection, k, teacher_cache, device, amp) -> dict:
    """`selection`'s criteria of the teacher after its k-th epoch, kept in the teacher cache beside
    its metrics: every run of that trajectory, online or offline, reads the same numbers."""
    return _teacher_metrics(teacher, f"pu_val-prior{selection.prior!r}", selection.loader, k, teacher_cache, device,
                            amp, measure=lambda: selection.measure(teacher, device, amp))


def _check_teacher_candidates(candidates, meta_epochs, teacher_epochs, selection, teacher_cache) -> None:
    if candidates is None:
        return
    if meta_epochs != 1:
        raise ValueError(f"teacher_candidates are for offline KD (meta_epochs=1), got meta_epochs={meta_epochs}")
    if (not candidates or list(candidates) != sorted(set(candidates))
            or any(int(k) != k or not 1 <= k <= teacher_epochs for k in candidates)):
        raise ValueError(f"teacher_candidates must be increasing teacher epochs in 1..{teacher_epochs}, got {candidates}")
    if len(candidates) > 1 and (selection is None or selection.select_by == "last" or not teacher_cache):
        raise ValueError("several teacher_candidates need a selection by a PU criterion (pu_risk, lu_auc) and a "
                         "teacher_cache (the candidates' weights are read back from it)")


def _pick_teacher(teacher, candidates, selection, teacher_cache, device, amp) -> int:
    """Offline KD from an intermediate teacher: each candidate epoch's weights offered to `selection`
    with the criteria an online run measures at that epoch; the pick (the only candidate, or the
    best) is left loaded. Returns its epoch."""
    several = len(candidates) > 1
    for k in candidates:
        if several:  # the turn left the newest candidate in `teacher`: the others are read back from the cache
            teacher.load_state_dict(torch.load(Path(teacher_cache) / f"teacher_epoch{k}.pt", map_location="cpu",
                                               weights_only=False)["teacher"])
        if selection is not None:
            selection.offer("teacher", teacher, _pu_values(teacher, selection, k, teacher_cache, device, amp), 1, k)
    if not several:
        return candidates[0]
    if "teacher" not in selection.states:
        raise FloatingPointError(f"no candidate teacher has a finite val_{selection.select_by}: none to pick")
    selection.load_chosen(("teacher", teacher))
    return selection.chosen["teacher"]["epoch"]


def _resume_online(ckpt_dir, teacher, student, opt_t, opt_s, sched_t=None, selection=None, steps=None) -> tuple[list, int]:
    """(log, meta-epochs done) from ckpt_dir/online_last.pt, its weights, optimisers, the teacher's
    scheduler, the selection's state and the batches' records loaded."""
    if not ckpt_dir:
        return [], 0
    Path(ckpt_dir).mkdir(parents=True, exist_ok=True)
    path = Path(ckpt_dir) / "online_last.pt"
    if not path.exists():
        return [], 0
    ck = torch.load(path, map_location="cpu", weights_only=False)
    teacher.load_state_dict(ck["teacher"])
    student.load_state_dict(ck["student"])
    opt_t.load_state_dict(ck["opt_t"])
    opt_s.load_state_dict(ck["opt_s"])
    if sched_t is not None:
        sched_t.load_state_dict(ck["sched_t"])
    if selection is not None:
        selection.load_state_dict(ck["selection"])
    if steps is not None:
        steps[:] = ck["steps"]
    print(f"[kdlib] resuming online loop after meta-epoch {ck['meta_epoch']}")
    return ck["log"], ck["meta_epoch"]
