"""Data: IMDB and splice loading, deterministic splits, cached token ids, batching.

Every example carries an integer ``id`` (its row in the split as loaded). Teacher logits are
cached and looked up by this id, never by position, so shuffled batches stay correct.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from . import paths

# --------------------------------------------------------------------------------------------
# validation


def check_binary_labels(labels, name: str = "labels", allow_unlabelled: bool = False) -> None:
    """Raise ValueError unless every label is 0 or 1 (or -1 when `allow_unlabelled`)."""
    values = set(np.unique(np.asarray(labels)).tolist())
    allowed = {0, 1, -1} if allow_unlabelled else {0, 1}
    if not values <= allowed:
        raise ValueError(f"{name} must be binary {sorted(allowed)}, found values {sorted(values)[:10]}")


def _check_columns(df: pd.DataFrame, needed: Sequence[str], where: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; found {list(df.columns)}")


def _read_parquet(path: Path, needed: Sequence[str]) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"Data file not found: {path}. See ../shared/data/README.md or set KDLIB_DATA.")
    df = pd.read_parquet(path)
    _check_columns(df, needed, str(path))
    return df


def content_hash(*parts) -> str:
    """Short sha1 of strings / arrays / DataFrames, for cache keys."""
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, pd.DataFrame):
            h.update(pd.util.hash_pandas_object(p, index=False).values.tobytes())
        elif isinstance(p, np.ndarray):
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(str(p).encode())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------------------------
# IMDB


def load_imdb(splits: Sequence[str] = ("train", "test"), source: str = "auto",
              verbose: bool = True, drop_test_duplicates: bool = True) -> dict[str, pd.DataFrame]:
    """IMDB reviews as DataFrames with columns ``id, text, label``.

    IMDB's train split holds reviews whose (normalised) text is also a test review (the teacher
    run records how many): with `drop_test_duplicates` they are dropped from train (ids keep their original rows), so no
    test text is ever trained on or used for a choice; test is kept whole.

    source: "hub" (``datasets.load_dataset("stanfordnlp/imdb")``), "local" (the parquet files in
    ``paths.data_dir()/imdb``, same columns), or "auto": the hub when it is reachable, else local.
    Prints which source was used. Labels are checked to be {0, 1} ("unsupervised" allows -1).
    """
    if source not in ("auto", "hub", "local"):
        raise ValueError(f"source must be 'auto', 'hub' or 'local', got {source!r}")
    frames: dict[str, pd.DataFrame] = {}
    used = None
    if source == "hub" or (source == "auto" and paths.hub_reachable()):
        try:
            import datasets

            ds = datasets.load_dataset("stanfordnlp/imdb")
            frames = {s: ds[s].to_pandas()[["text", "label"]] for s in splits}
            used = "hub: stanfordnlp/imdb"
        except Exception as err:  # noqa: BLE001 - any hub failure falls back
            if source == "hub":
                raise
            if verbose:
                print(f"[kdlib] hub load failed ({type(err).__name__}); using the local copy")
    if used is None:
        folder = paths.data_dir() / "imdb"
        frames = {s: _read_parquet(folder / f"{s}.parquet", ["text", "label"])[["text", "label"]] for s in splits}
        from .provenance import rel

        used = f"local: {rel(folder)}"  # recorded with the data: never a machine path
    if verbose:
        print(f"[kdlib] IMDB source -> {used}")
    out = {}
    for s, df in frames.items():
        df = df.reset_index(drop=True)
        check_binary_labels(df["label"], f"IMDB {s} labels", allow_unlabelled=(s == "unsupervised"))
        df.insert(0, "id", np.arange(len(df), dtype=np.int64))
        df.attrs["source"] = used
        out[s] = df
    if drop_test_duplicates and "train" in out:
        test = out["test"] if "test" in out else load_imdb(("test",), source, verbose=False)["test"]
        out["train"] = drop_overlap(out["train"], [test], "IMDB train", verbose=verbose)
    return out


# IMDB's star ratings (1-4 negative, 7-10 positive; 5 and 6 are not in the data set): the classes
# of the "rating" task, in order. The hub's stanfordnlp/imdb has no rating: the local files are its source.
RATING_STARS = (1, 2, 3, 4, 7, 8, 9, 10)
TASKS = {"binary": 2, "rating": len(RATING_STARS)}  # IMDB task -> number of classes


def with_rating_labels(df: pd.DataFrame, split: str) -> pd.DataFrame:
    """`df` (rows of IMDB `split` as `load_imdb(source="local")` gave them: ids are the file's rows)
    with `label` replaced by the review's star class, an index into RATING_STARS, and a `stars`
    column. The texts are checked against the file, and every rating against the binary label."""
    if not str(df.attrs.get("source", "")).startswith("local"):
        raise ValueError("the rating task needs the local IMDB files (the hub's stanfordnlp/imdb has no star "
                         "rating): load them with load_imdb(..., source='local')")
    rows = _read_parquet(paths.data_dir() / "imdb" / f"{split}.parquet", ["text", "label", "rating"]).iloc[df["id"]]
    if not np.array_equal(rows["text"].to_numpy(), df["text"].to_numpy()):
        raise ValueError(f"IMDB {split}: the reviews differ from the file's rows of the same ids")
    stars = rows["rating"].to_numpy().astype(np.int64)
    if not np.isin(stars, RATING_STARS).all() or not np.array_equal(stars >= 7, df["label"].to_numpy() == 1):
        raise ValueError(f"IMDB {split}: ratings outside {RATING_STARS} or disagreeing with the binary labels")
    out = df.assign(label=np.searchsorted(RATING_STARS, stars), stars=stars)
    out.attrs = dict(df.attrs)
    return out


def imdb_splits(val_frac: float = 0.1, split_seed: int = 0, train_subset: int | None = None,
                test_subset: int | None = None, task: str = "binary") -> dict[str, pd.DataFrame]:
    """The study's IMDB splits {train, val, test} as a teacher run records them in its params:
    validation carved from train (`train_val_split`), the seeded stratified subsets (validation a
    quarter of `train_subset`, at least 64), and for task "rating" the star classes of the local
    files (`with_rating_labels`). Notebooks that train other teachers on the MiniLM teacher's
    splits build them here and check them against its recorded data hashes."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    imdb = load_imdb(("train", "test"), source="local" if task == "rating" else "auto")
    train_df, val_df = train_val_split(imdb["train"], val_frac=val_frac, seed=split_seed)
    splits = {"train": subsample(train_df, train_subset, seed=split_seed),
              "val": subsample(val_df, None if train_subset is None else max(64, train_subset // 4), seed=split_seed),
              "test": subsample(imdb["test"], test_subset, seed=split_seed)}
    if task == "rating":
        splits = {s: with_rating_labels(df, "test" if s == "test" else "train") for s, df in splits.items()}
    return splits


def normalise_text(texts) -> pd.Series:
    """Texts compared for duplicates: `<br />` as a space, lower case, runs of white space as one."""
    return (pd.Series(texts, dtype=str).str.replace("<br />", " ", regex=False).str.lower()
            .str.replace(r"\s+", " ", regex=True).str.strip())


def drop_overlap(df: pd.DataFrame, others: Sequence[pd.DataFrame], what: str, text_col: str = "text",
                 dedupe: bool = False, verbose: bool = True) -> pd.DataFrame:
    """`df` without the rows whose normalised text occurs in any of `others` (and, with `dedupe`,
    without its own repeats after the first). Ids are kept; how many rows went is printed and kept
    in ``df.attrs["dropped"]``."""
    seen = set()
    for o in others:
        seen.update(normalise_text(o[text_col]))
    norm = normalise_text(df[text_col]).to_numpy()
    drop = pd.Series(norm).isin(seen).to_numpy()
    n_overlap = int(drop.sum())
    if dedupe:
        drop = drop | pd.Series(norm).duplicated().to_numpy()
    out = df[~drop].reset_index(drop=True)
    out.attrs = {**df.attrs, "dropped": {"overlap": n_overlap, "repeats": int(drop.sum()) - n_overlap}}
    if verbose:
        print(f"[kdlib] {what}: dropped {n_overlap} rows whose text is in a held-out split"
              + (f" and {int(drop.sum()) - n_overlap} repeats" if dedupe else "") + f"; {len(out)} left")
    return out


TRANSFER_ID_OFFSET = 1_000_000  # transfer-set ids never collide with train/val/test ids


def teacher_splits(run: dict, name: str, which: Sequence[str] = ("train", "val", "test")) -> dict[str, pd.DataFrame]:
    """The IMDB splits `which` that the teacher run `name` (its metrics.json, read) was trained and
    scored on: rebuilt by `imdb_splits` from its recorded params and checked against the data hashes
    recorded beside its logits. Teachers and students that share a teacher's splits build them here."""
    p = run["params"]
    splits = imdb_splits(p["val_frac"], p["split_seed"], p["train_subset"], p["test_subset"], p.get("task", "binary"))
    for s in which:
        if s not in run["logits"]:
            raise ValueError(f"teacher {name!r} recorded no logits for the {s} split: rerun it")
        if content_hash(splits[s][["id", "text"]]) != run["logits"][s]["data_hash"]:
            raise ValueError(f"the {s} split differs from the one teacher {name!r} was trained on: rerun it")
    return {s: splits[s] for s in which}


def imdb_transfer_set(n: int | None, seed: int = 0, source: str = "auto") -> pd.DataFrame:
    """`n` reviews (None: all) of IMDB's unlabelled "unsupervised" split (label -1), a seeded
    subsample: the transfer set that the teacher labels for KD. The pool is first deduplicated by
    normalised text against every labelled review (train, validation and test; some are test
    reviews) and against itself. Ids are offset by `TRANSFER_ID_OFFSET`, so one
    `TeacherLogits` can hold train and transfer logits together."""
    if n is not None and (int(n) != n or n < 1):
        raise ValueError(f"transfer set size must be a positive integer or None (the whole pool), got {n}")
    frames = load_imdb(("unsupervised", "train", "test"), source=source, drop_test_duplicates=False)
    df = drop_overlap(frames["unsupervised"], [frames["train"], frames["test"]], "IMDB unlabelled pool", dedupe=True)
    if n is not None and n > len(df):
        raise ValueError(f"transfer set size {n} exceeds the deduplicated pool of {len(df)} reviews")
    attrs = df.attrs
    df = subsample(df, None if n is None else int(n), seed=seed, stratify=None).copy()
    df["id"] = df["id"] + TRANSFER_ID_OFFSET
    df.attrs = attrs
    return df


def train_val_split(df: pd.DataFrame, val_frac: float = 0.1, seed: int = 0,
                    stratify: str | None = "label") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic (seeded) split of a training frame into train and validation.

    Validation is always carved from the training data, never from test: one fold of
    scikit-learn's `StratifiedGroupKFold` with round(1 / val_frac) folds, stratified on `stratify`
    and grouped by normalised text (column ``text`` or ``sequence``), so a text that occurs twice
    never sits on both sides.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0 < val_frac < 1:
        raise ValueError(f"val_frac must be in (0, 1), got {val_frac}")
    k = max(2, int(round(1 / val_frac)))
    text_col = "text" if "text" in df.columns else "sequence"
    groups = normalise_text(df[text_col]) if text_col in df.columns else np.arange(len(df))
    y = df[stratify].to_numpy() if stratify else np.zeros(len(df), int)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    _, val_idx = next(splitter.split(np.zeros(len(df)), y, groups=groups))
    val_mask = np.zeros(len(df), bool)
    val_mask[val_idx] = True
    return df[~val_mask].reset_index(drop=True), df[val_mask].reset_index(drop=True)


def subsample(df: pd.DataFrame, n: int | None, seed: int = 0, stratify: str | None = "label") -> pd.DataFrame:
    """A seeded, stratified subsample of `n` rows (all rows when n is None or >= len), in the
    frame's own row order (scikit-learn's `train_test_split`)."""
    from sklearn.model_selection import train_test_split

    if n is None or n >= len(df):
        return df
    keep, _ = train_test_split(np.arange(len(df)), train_size=int(n), random_state=seed,
                               stratify=df[stratify].to_numpy() if stratify else None)
    return df.iloc[np.sort(keep)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# splice


def load_splice(positive: str = "EI", path: str | Path | None = None) -> pd.DataFrame:
    """The UCI primate splice-junction set as ``id, sequence, junction, label``.

    label = 1 for junction == `positive` ("EI" gives 24% positives), else 0.
    """
    path = Path(path) if path else paths.data_dir() / "splice" / "splice.parquet"
    df = _read_parquet(path, ["sequence", "junction"])
    if positive not in set(df["junction"]):
        raise ValueError(f"positive must be one of {sorted(set(df['junction']))}, got {positive!r}")
    df = df[["sequence", "junction"]].reset_index(drop=True)
    df["label"] = (df["junction"] == positive).astype(np.int64)
    df.insert(0, "id", np.arange(len(df), dtype=np.int64))
    return df


def group_split(df: pd.DataFrame, group: str, fracs: Sequence[float] = (0.7, 0.1, 0.2),
                seed: int = 0) -> list[pd.DataFrame]:
    """Split into len(fracs) parts so that rows sharing `group` (e.g. a duplicated sequence)
    never straddle two parts (scikit-learn's `GroupShuffleSplit`, one cut per part, with
    `fracs` counted in groups). Deterministic in `seed`."""
    from sklearn.model_selection import GroupShuffleSplit

    if not math.isclose(sum(fracs), 1.0, abs_tol=1e-6) or min(fracs) <= 0:
        raise ValueError(f"fracs must be positive and sum to 1, got {fracs}")
    parts, rest, left = [], df.reset_index(drop=True), 1.0
    for i, f in enumerate(fracs[:-1]):
        cut = GroupShuffleSplit(n_splits=1, train_size=f / left, random_state=seed + i)
        take, keep = next(cut.split(rest, groups=rest[group]))
        parts.append(rest.iloc[np.sort(take)].reset_index(drop=True))
        rest, left = rest.iloc[np.sort(keep)].reset_index(drop=True), left - f
    return parts + [rest]


# --------------------------------------------------------------------------------------------
# tokenisation


class DNATokenizer:
    """Bases (k=1) or overlapping k-mers of A/C/G/T to ids; 0 = padding, 1 = unknown (e.g. N)."""

    def __init__(self, k: int = 1):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        import itertools

        self.k = k
        self.vocab = {"".join(p): i + 2 for i, p in enumerate(itertools.product("ACGT", repeat=k))}
        self.pad_token_id = 0
        self.name_or_path = f"dna-{k}mer"

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + 2

    def encode(self, seq: str) -> list[int]:
        seq = seq.upper()
        return [self.vocab.get(seq[i:i + self.k], 1) for i in range(len(seq) - self.k + 1)]

    def __call__(self, seqs: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(self.encode(s), dtype=np.int32) for s in seqs]


def tokenizer_id(tokenizer) -> str:
    """A stable identity for a tokenizer (its name/path plus a hash of its vocabulary)."""
    if isinstance(tokenizer, DNATokenizer):
        return tokenizer.name_or_path
    vocab = tokenizer.get_vocab()
    name = Path(str(getattr(tokenizer, "name_or_path", "tok"))).name or "tok"
    return f"{name}-{content_hash(sorted(vocab.items()))}"


def encode_texts(texts: Sequence[str], tokenizer, max_len: int, batch_size: int = 1000,
                 desc: str = "tokenise") -> list[np.ndarray]:
    """Token ids of each text (special tokens included), truncated to `max_len`, unpadded."""
    if max_len < 2:
        raise ValueError(f"max_len must be >= 2, got {max_len}")
    from .progress import tqdm

    if isinstance(tokenizer, DNATokenizer):
        return [ids[:max_len] for ids in tokenizer(texts)]
    out: list[np.ndarray] = []
    for i in tqdm(range(0, len(texts), batch_size), desc=desc, leave=False):
        chunk = [str(t).replace("<br />", " ") for t in texts[i:i + batch_size]]
        enc = tokenizer(chunk, truncation=True, max_length=max_len, add_special_tokens=True)
        out.extend(np.asarray(x, dtype=np.int32) for x in enc["input_ids"])
    return out


def cached_token_ids(df: pd.DataFrame, tokenizer, max_len: int, text_col: str = "text",
                     cache: Path | None = None) -> list[np.ndarray]:
    """encode_texts with a disk cache keyed by (tokenizer, max_len, content of the split).

    Teacher and students read the same cache, so a split is tokenised once.
    """
    key = f"{tokenizer_id(tokenizer)}_L{max_len}_{content_hash(df[['id', text_col]])}"
    path = (cache or paths.cache_dir() / "tokens") / f"{key}.npz"
    if path.exists():
        z = np.load(path)
        return np.split(z["flat"], z["offsets"][1:-1])
    ids = encode_texts(df[text_col].tolist(), tokenizer, max_len)
    path.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in ids])]).astype(np.int64)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, flat=np.concatenate(ids) if ids else np.zeros(0, np.int32), offsets=offsets)
    tmp.replace(path)
    return ids


# --------------------------------------------------------------------------------------------
# datasets and batching


class SeqDataset(torch.utils.data.Dataset):
    """Token-id sequences with binary labels and integer example ids."""

    def __init__(self, token_ids: Sequence[np.ndarray], labels, ids=None, allow_unlabelled: bool = False):
        labels = np.asarray(labels, dtype=np.int64)
        if len(token_ids) != len(labels):
            raise ValueError(f"{len(token_ids)} sequences but {len(labels)} labels")
        check_binary_labels(labels, allow_unlabelled=allow_unlabelled)
        if any(len(t) == 0 for t in token_ids):
            raise ValueError("empty token sequence in dataset")
        self.token_ids = list(token_ids)
        self.labels = labels
        self.ids = np.arange(len(labels), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        self.lengths = np.array([len(t) for t in self.token_ids])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.token_ids[i], self.labels[i], self.ids[i]


class ClassDataset(SeqDataset):
    """A `SeqDataset` whose labels are classes 0..n_classes-1 (e.g. IMDB's star ratings), or -1
    for unlabelled examples when `allow_unlabelled`."""

    def __init__(self, token_ids: Sequence[np.ndarray], labels, ids=None, n_classes: int = 2,
                 allow_unlabelled: bool = False):
        labels = np.asarray(labels, dtype=np.int64)
        bad = (labels >= n_classes) | (labels < (-1 if allow_unlabelled else 0))
        if n_classes < 2 or bad.any():
            raise ValueError(f"labels must be classes 0..{n_classes - 1}" + (" or -1" if allow_unlabelled else "")
                             + f" (n_classes >= 2), found {sorted(set(labels[bad].tolist()))[:10]}")
        super().__init__(token_ids, np.zeros_like(labels), ids)  # SeqDataset's checks of the sequences
        self.labels = labels


@dataclass
class Collate:
    """Pads a batch to its own longest sequence (dynamic padding), or to `pad_to` (naive)."""

    pad_id: int = 0
    pad_to: int | None = None
    min_len: int = 1

    def __call__(self, batch):
        toks, labels, ids = zip(*batch)
        lengths = torch.tensor([len(t) for t in toks])
        width = max(int(lengths.max()), self.min_len) if self.pad_to is None else self.pad_to
        input_ids = torch.full((len(toks), width), self.pad_id, dtype=torch.long)
        for i, t in enumerate(toks):
            input_ids[i, : len(t)] = torch.as_tensor(t[:width], dtype=torch.long)
        attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        return {"input_ids": input_ids, "attention_mask": attention_mask,
                "labels": torch.tensor(labels, dtype=torch.float32), "ids": torch.tensor(ids)}


class BucketBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar lengths: shuffle, cut into chunks of `bucket` batches, sort each
    chunk by length, batch it, shuffle the batches. Deterministic in (seed, epoch): call
    ``set_epoch`` before each epoch (the training loop does)."""

    def __init__(self, lengths, batch_size: int, seed: int = 0, shuffle: bool = True, bucket: int = 50,
                 drop_last: bool = False):
        self.lengths = np.asarray(lengths)
        self.batch_size, self.seed, self.shuffle, self.bucket = batch_size, seed, shuffle, bucket
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        n = len(self.lengths)
        if not self.shuffle:  # evaluation: sorted by length for speed, order restored by ids
            order = np.argsort(self.lengths, kind="stable")
            yield from (order[i:i + self.batch_size].tolist() for i in range(0, n, self.batch_size))
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n)
        chunk = self.batch_size * self.bucket
        batches = []
        for i in range(0, n, chunk):
            c = order[i:i + chunk]
            c = c[np.argsort(self.lengths[c], kind="stable")]
            batches.extend(c[j:j + self.batch_size] for j in range(0, len(c), self.batch_size))
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        for k in rng.permutation(len(batches)):
            yield batches[k].tolist()

    def __len__(self) -> int:
        n = len(self.lengths) // self.batch_size if self.drop_last else math.ceil(len(self.lengths) / self.batch_size)
        return n


def make_loader(dataset: SeqDataset, batch_size: int = 64, shuffle: bool = True, seed: int = 0,
                pad_id: int = 0, bucket: int = 50, min_len: int = 1,
                batch_sampler: torch.utils.data.Sampler | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader with length-bucketed, seeded shuffling (or the given `batch_sampler`) and
    dynamic padding. It owns a seeded `torch.Generator`: iterating it never draws from torch's
    global generator (a DataLoader without one takes a number from it on every pass, so an extra
    evaluation pass would shift every later dropout mask)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    sampler = batch_sampler or BucketBatchSampler(dataset.lengths, batch_size, seed=seed, shuffle=shuffle, bucket=bucket)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, generator=torch.Generator().manual_seed(seed),
                                       collate_fn=Collate(pad_id=pad_id, min_len=min_len))


class PUBatchSampler(torch.utils.data.Sampler):
    """Batches for PU training that always carry labelled positives: each batch has exactly
    `positives` labelled positives (pu label 1, drawn without replacement from a reshuffled list,
    so the rare positives repeat across an epoch) and `batch_size - positives` unlabelled
    examples; an epoch is one pass over the unlabelled ones. Deterministic in (seed, epoch)."""

    def __init__(self, pu_labels, batch_size: int, positives: int, seed: int = 0):
        pu_labels = np.asarray(pu_labels)
        self.pos, self.unl = np.flatnonzero(pu_labels == 1), np.flatnonzero(pu_labels == 0)
        if not 1 <= positives < batch_size:
            raise ValueError(f"positives per batch must be in 1..batch_size-1 ({batch_size - 1}), got {positives}")
        if len(self.pos) == 0 or len(self.unl) == 0:
            raise ValueError(f"PU batches need labelled positives and unlabelled examples, got "
                             f"{len(self.pos)} and {len(self.unl)}")
        self.batch_size, self.positives, self.seed, self.epoch = batch_size, positives, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.unl) / (self.batch_size - self.positives))

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        unl = rng.permutation(self.unl)
        reps = math.ceil(len(self) * self.positives / len(self.pos))
        pos = np.concatenate([rng.permutation(self.pos) for _ in range(reps)])
        per = self.batch_size - self.positives
        for b in range(len(self)):
            yield (pos[b * self.positives:(b + 1) * self.positives].tolist()
                   + unl[b * per:(b + 1) * per].tolist())


class TeacherLogits:
    """Cached teacher logits looked up by example id (never by position)."""

    def __init__(self, ids, logits):
        ids = np.asarray(ids, dtype=np.int64)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("duplicate example ids in teacher logits")
        order = np.argsort(ids)
        self.ids = torch.as_tensor(ids[order])
        self.logits = torch.as_tensor(np.asarray(logits, dtype=np.float32)[order])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, ids) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long).cpu()
        pos = torch.searchsorted(self.ids, ids).clamp(max=len(self.ids) - 1)
        if not torch.equal(self.ids[pos], ids):
            missing = ids[self.ids[pos] != ids][:5].tolist()
            raise KeyError(f"no teacher logit for example id(s) {missing}")
        return self.logits[pos]

    def save(self, path: str | Path, **meta) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, ids=self.ids.numpy(), logits=self.logits.numpy(),
                 **{k: np.asarray(str(v)) for k, v in meta.items()})
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "TeacherLogits":
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no cached teacher logits at {path}: run notebooks/teacher.py first")
        z = np.load(path)
        return cls(z["ids"], z["logits"])
