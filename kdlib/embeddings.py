"""A student's embedding table started from the teacher's word embeddings (issue 56, point 1).

A GRU / CNN student (`models.build_student`) embeds the teacher's token ids with its own
`nn.Embedding(vocab, emb_dim)`, drawn by PyTorch's default N(0, 1), the padding row zero. Student and
teacher share the tokenizer, so row i of the teacher's input word-embedding table (MiniLM: 30522 x 384)
is the same token as row i of the student's: `init_embedding(student, emb_init, teacher, seed)` starts
the student from it. `emb_init` is one of `EMB_INITS`:

- "random": the student as built (nothing drawn, nothing changed);
- "pca", "pca_frozen": the teacher table brought to `emb_dim` by a PCA fitted on all its rows
  (`pca_table`), then multiplied by one factor so that its entries have standard deviation
  `EMB_STD` = 1, the standard deviation of nn.Embedding's default N(0, 1) init that the student's
  other layers start against (the components keep their relative variances: not whitened); the
  padding row is then set to zero, as in the default table;
- "projection", "projection_frozen": the teacher table itself (d = 384 wide), multiplied by the one
  factor that gives its entries standard deviation `EMB_STD` (the rule the PCA table follows, so the
  two start at comparable scales), followed by a learned `nn.Linear(d, emb_dim)` drawn from `seed`
  in a private stream (`ProjectedEmbedding`); a padding id embeds to zeros;
- "_frozen": the table (PCA'd or d wide) is not trained (requires_grad False, so `train.fit`'s
  AdamW, which steps only parameters with a gradient, leaves it exactly as it started, weight decay
  included); the projection of "projection_frozen" is trained.

Which table: the study uses the pretrained teacher's (the recorded teacher's weights, whose hash
`models.teacher_record` keeps), not the fine-tuned teacher's checkpoint, so that every student of a
teacher name starts from one table whatever teacher run it distils from; `checkpoint` (a kdlib
teacher state dict) selects a fine-tuned one instead.

Nothing here draws from the global random generators (the teacher is loaded, and the projection
drawn, in forked streams): a student's other weights (GRU / CNN, head) are the same bits as its
"random" twin's of the same seed.

The PCA runs sklearn's "covariance_eigh" solver (the eigenvectors of the 384 x 384 covariance):
deterministic, and about a second on 30522 x 384 where the full SVD takes ten or more; no cache.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import models

EMB_INITS = ("random", "pca", "pca_frozen", "projection", "projection_frozen")
EMB_STD = 1.0  # the standard deviation of nn.Embedding's default init, N(0, 1)
PROJECTION_STREAM = (56, 1)  # the projection is drawn from the stream (seed, 56, 1): no other kdlib stream's key


def parse_emb_init(emb_init: str) -> tuple[str, bool]:
    """("random" | "pca" | "projection", frozen?) of an `EMB_INITS` value; any other raises ValueError."""
    if not isinstance(emb_init, str) or emb_init not in EMB_INITS:
        raise ValueError(f"emb_init must be one of {', '.join(repr(e) for e in EMB_INITS)}, got {emb_init!r}")
    method, _, frozen = emb_init.partition("_")
    return method, frozen == "frozen"


def teacher_word_embeddings(teacher: str | dict = models.MINILM, checkpoint: str | Path | None = None) -> torch.Tensor:
    """The teacher's input word-embedding table (`get_input_embeddings()`), float32 on the CPU:
    (vocab, d), detached. `teacher`: a name (see `models.resolve_teacher`) or a recorded teacher
    (`models.teacher_record`), whose weights are checked against the recorded hash; `checkpoint`: a
    fine-tuned teacher's state dict (saved by kdlib) instead of the pretrained weights. Loaded in a
    forked RNG stream (the teacher's fresh head draws from it), the global generators untouched."""
    if isinstance(teacher, dict):
        folder = models._teacher_folder(models.resolve_teacher(teacher["name"]))
        found = models._hash_files(folder, models.WEIGHT_FILES)
        if found != teacher["weights_hash"]:
            raise ValueError(f"the {teacher['name']} weights here (hash {found}) are not the recorded ones "
                             f"({teacher['weights_hash']}): install the recorded teacher")
        teacher = teacher["name"]
    with torch.random.fork_rng(devices=[]):
        model = models.load_teacher(teacher, checkpoint=None if checkpoint is None else str(checkpoint))
    return model.hf.get_input_embeddings().weight.detach().float().cpu().clone()


def pca_table(table: torch.Tensor, dim: int, pad_id: int | None = None) -> torch.Tensor:
    """`table` (vocab, d) projected on its first `dim` principal components (a PCA fitted on all its
    rows, in float64, sklearn's deterministic "covariance_eigh" solver), scaled by one factor so that
    its entries have standard deviation `EMB_STD` (population std over every row, the padding row
    included), then the row `pad_id` set to zero: a float32 (vocab, dim) tensor."""
    from sklearn.decomposition import PCA

    x = table.detach().double().cpu().numpy()
    if not 1 <= int(dim) <= min(x.shape):
        raise ValueError(f"a PCA of a {x.shape[0]} x {x.shape[1]} table gives 1..{min(x.shape)} components, "
                         f"not emb_dim={dim}: use a projection")
    y = PCA(n_components=int(dim), svd_solver="covariance_eigh").fit_transform(x)
    y *= EMB_STD / y.std()
    if pad_id is not None:
        y[pad_id] = 0.0
    return torch.from_numpy(y).float()


def scaled_table(table: torch.Tensor, pad_id: int | None = None) -> torch.Tensor:
    """`table` multiplied by one factor so that its entries have standard deviation `EMB_STD`
    (population std over every row), then the row `pad_id` set to zero: float32."""
    t = table.detach().double().cpu()
    t = t * (EMB_STD / t.std(unbiased=False))
    if pad_id is not None:
        t[pad_id] = 0.0
    return t.float()


class ProjectedEmbedding(nn.Module):
    """A d-wide embedding table followed by a learned `nn.Linear(d, emb_dim)`: `forward(ids)` gives
    `table[ids] @ proj.weight.T + proj.bias`, and zeros at `padding_idx` (the padding of an
    nn.Embedding; the table's padding row is zero and gets no gradient). The projection is drawn
    from `seed` in a private stream (`PROJECTION_STREAM`), the global generators untouched;
    `freeze`: the table is not trained, the projection is."""

    def __init__(self, table: torch.Tensor, emb_dim: int, padding_idx: int | None = None, seed: int = 0,
                 freeze: bool = False):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(table.detach().float().clone(), freeze=freeze,
                                                  padding_idx=padding_idx)
        self.padding_idx = padding_idx
        self.embedding_dim = int(emb_dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([int(seed), *PROJECTION_STREAM]).generate_state(1)[0]))
            self.proj = nn.Linear(table.shape[1], int(emb_dim))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.proj(self.table(input_ids))
        if self.padding_idx is not None:
            out = out.masked_fill((input_ids == self.padding_idx).unsqueeze(-1), 0.0)
        return out


def init_embedding(student: nn.Module, emb_init: str, teacher: str | dict | torch.Tensor = models.MINILM,
                   seed: int = 0, checkpoint: str | Path | None = None) -> nn.Module:
    """`student` (a GRU / CNN student, its `embedding` an nn.Embedding on the teacher's tokenizer)
    with its embedding started from the teacher's word embeddings as `emb_init` says (see the module's
    docstring; "random" returns it unchanged). `teacher`: a name, a recorded teacher
    (`models.teacher_record`) or the (vocab, d) table itself; `checkpoint`: a fine-tuned teacher's
    weights instead of the pretrained ones (the study uses the pretrained ones); `seed`: the
    projection's (use the student's). Changes `student` in place and returns it; draws nothing from
    the global random generators."""
    method, freeze = parse_emb_init(emb_init)
    if method == "random":
        return student
    emb = getattr(student, "embedding", None)
    if not isinstance(emb, nn.Embedding):
        raise ValueError(f"{type(student).__name__} has no nn.Embedding `embedding` to initialise")
    table = teacher if isinstance(teacher, torch.Tensor) else teacher_word_embeddings(teacher, checkpoint)
    if table.ndim != 2 or table.shape[0] != emb.num_embeddings:
        raise ValueError(f"the teacher's table has shape {tuple(table.shape)}: the student's embedding has "
                         f"{emb.num_embeddings} rows (not the teacher's tokenizer?)")
    pad = emb.padding_idx
    if method == "pca":
        with torch.no_grad():
            emb.weight.copy_(pca_table(table, emb.embedding_dim, pad).to(emb.weight.device))
        emb.weight.requires_grad_(not freeze)
    else:
        student.embedding = ProjectedEmbedding(scaled_table(table, pad), emb.embedding_dim, pad, seed,
                                               freeze).to(emb.weight.device)
    return student
