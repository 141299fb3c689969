"""Which teacher layers matter, and distilling them: the teacher's layer states pooled per review,
and a student that also predicts them ("hints", FitNets; the critical-layer plan of this study).

* `pooled_states(teacher, loader)`: every layer's hidden states (embeddings and each encoder layer)
  of a `models.Teacher`, averaged over each review's real tokens: (N, layers + 1, dim), float16.
* `cached_states(probe, split)`: the states a probe run (teacher_layers.py) cached, read back.
* `truncate(teacher, keep)`: a transformer student cut from a `models.Teacher`: only the encoder
  layers `keep` (e.g. 0, 2, 4 of six: every other one, as DistilBERT was built), in order.
* `WithStates(teacher, layers)`: such a model that, in training, also keeps the pooled states of its
  hidden layers `layers` (0 = embeddings) in `hints`, for `losses.hint_loss`.
* `HintStudent(student, dim, n_layers, seed)`: a GRU/CNN student plus one learned linear map per
  chosen teacher layer from the student's pooled feature (the input of its head) to that layer's
  state. It returns the student's logits, like the student alone (so `train.fit` and `predict` use
  it unchanged); in training it keeps the projections of the last batch in `hints` (B, L, dim),
  which the loss reads (`losses.hint_loss`). The maps are drawn from `seed` in a private stream,
  after the student is built: the student starts from the same weights as its twin without hints.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from . import paths, train
from .progress import tqdm


def cached_states(probe: dict, split: str = "train") -> dict:
    """{"ids", "states"} of `split` that the probe run `probe` (its metrics.json, read, with its "name")
    cached under KDLIB_CACHE; too big to commit, so a fresh clone or a wiped cache lacks them, and
    the error says how to make them again."""
    path = paths.cache_dir() / probe["states"][split]["cache_path"]
    if not path.exists():
        name = probe.get("name") or probe["params"]["name"]
        raise FileNotFoundError(f"{path} not found: probe {name!r}'s layer states are not committed (too big); make them "
                                f"again with: snakemake --forcerun results/runs/{name}/metrics.json -- results/runs/{name}/metrics.json")
    with np.load(path) as z:
        return {"ids": z["ids"], "states": z["states"]}


def _pool(hidden_states, mask, which=None) -> torch.Tensor:
    """(B, layers, dim): the mean over real tokens of each hidden state (all, or the indices `which`)."""
    w = (mask / mask.sum(1, keepdim=True).clamp(min=1)).float()[:, None, :]  # (B, 1, T)
    chosen = hidden_states if which is None else [hidden_states[i] for i in which]
    return torch.stack([(w @ h.float()).squeeze(1) for h in chosen], dim=1)


@torch.no_grad()
def pooled_states(teacher, loader, device=None, amp: bool = False, desc: str = "layer states") -> dict:
    """{ids, states}: the mean over real tokens of every hidden layer of `teacher` (a `models.Teacher`),
    (N, layers + 1, dim) float16, sorted by example id."""
    device = device or next(teacher.parameters()).device
    was = teacher.training
    teacher.eval()
    ids, states = [], []
    for batch in tqdm(loader, desc=desc, leave=False):
        mask = batch["attention_mask"].to(device)
        with train.autocast(device, amp):
            hidden = teacher.hf(input_ids=batch["input_ids"].to(device), attention_mask=mask,
                                output_hidden_states=True).hidden_states
        states.append(_pool(hidden, mask).half().cpu())
        ids.append(batch["ids"])
    teacher.train(was)
    ids = torch.cat(ids).numpy()
    order = np.argsort(ids)
    return {"ids": ids[order], "states": torch.cat(states).numpy()[order]}


class HintStudent(nn.Module):
    """A student that also maps its pooled feature onto `n_layers` teacher layer states of size `dim`."""

    def __init__(self, student: nn.Module, dim: int, n_layers: int, seed: int):
        super().__init__()
        head = getattr(student, "head", None)
        if not isinstance(head, nn.Linear):
            raise ValueError(f"{type(student).__name__} has no linear `head` whose input is its pooled feature")
        if int(n_layers) != n_layers or n_layers < 0 or int(dim) != dim or dim < 1:
            raise ValueError(f"n_layers must be an integer >= 0 and dim >= 1, got {n_layers}, {dim}")
        self.student = student
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([seed, 1]).generate_state(1)[0]))
            self.maps = nn.ModuleList(nn.Linear(head.in_features, int(dim)) for _ in range(int(n_layers)))
        self.hints = None
        self._feature = None
        head.register_forward_pre_hook(self._keep)

    def _keep(self, module, args):
        self._feature = args[0]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.student(input_ids, attention_mask)
        if self.training and len(self.maps):
            self.hints = torch.stack([m(self._feature) for m in self.maps], dim=1)
        return out


def truncate(teacher, keep) -> nn.Module:
    """`teacher` (a `models.Teacher`) with only the encoder layers `keep` (strictly increasing indices), in place."""
    encoder = teacher.hf.base_model.encoder
    n = len(encoder.layer)
    keep = [int(i) for i in keep]
    if not keep or keep != sorted(set(keep)) or keep[0] < 0 or keep[-1] >= n:
        raise ValueError(f"keep must be increasing layer indices in 0..{n - 1}, got {keep}")
    encoder.layer = nn.ModuleList(encoder.layer[i] for i in keep)
    teacher.hf.config.num_hidden_layers = len(keep)
    return teacher


class WithStates(nn.Module):
    """A `models.Teacher`-like transformer whose training forward also keeps the pooled states of its
    hidden layers `layers` (0 = embeddings, i = after encoder layer i) in `hints` (B, L, dim)."""

    def __init__(self, model: nn.Module, layers):
        super().__init__()
        self.model, self.layers, self.hints = model, [int(i) for i in layers], None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.layers):
            return self.model(input_ids, attention_mask)
        out = self.model.hf(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        self.hints = _pool(out.hidden_states, attention_mask, self.layers)
        return out.logits.squeeze(-1)
