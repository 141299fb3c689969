"""Your own text-classification data (notebooks/distill.py): read, validate and split it, score
students on it, and save and load the student it picks.

`prepare(...)` reads a local CSV, Parquet or JSON-lines file (or a Hugging Face dataset id, when the
hub answers), checks it and returns its train / validation / test splits: the given ones, or a
stratified split by one recorded rule (`split_rule`), plus an optional transfer set of unlabelled
texts. Every problem raises `DataError` (a ValueError) whose message names the problem and what is
allowed, before anything is computed or written: nothing here writes a file.

The splits have the columns of the study's frames (``id, text, label``; label a class index
0..K-1, in the order of `Prepared.classes`), plus ``raw_label``, so `kdlib.data`'s token-id cache,
datasets, loaders and `kdlib.train` take them as they are.

`save_student` / `load_student`: the chosen student as safetensors + config.json; `load_student`
returns a `TextClassifier` that predicts class names from raw texts.

The students: `STUDENTS`, the study's GRU and CNN (`models.build_student`) and `minilm3`, the
pretrained teacher model cut to its encoder layers `MINILM3_KEEP` (0, 2, 4 of six: every other one,
as DistilBERT was built; study 5's transformer student, `layers.truncate`), a new head drawn from the
seed. `build(config)` makes any of them from its saved config.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import data as kdata
from . import paths

FORMATS = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet", ".jsonl": "JSON lines", ".ndjson": "JSON lines",
           ".json": "JSON lines"}
ALLOWED_FILES = "a local .csv, .parquet or .jsonl file (one JSON object per line), or a Hugging Face dataset id"
SPLIT_NAMES = {"train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val", "test": "test"}
SPLITS = ("train", "val", "test")
SHOWN = 5  # rows named in a message
STUDENTS = ("gru", "cnn", "minilm3")  # models.ARCHS and the cut transformer
MINILM3_KEEP = (0, 2, 4)


class DataError(ValueError):
    """Data that cannot be distilled on as it is: the message names the problem and what is allowed."""


def _rows(index) -> str:
    index = list(index)
    more = f" and {len(index) - SHOWN} more" if len(index) > SHOWN else ""
    return ", ".join(str(i) for i in index[:SHOWN]) + more


# ---- reading --------------------------------------------------------------------------------------
def resolve(source: str) -> Path | None:
    """The local file `source` names: absolute, else relative to the repository root, else to the
    study's data folder (`paths.data_dir()`); None when none of them exists."""
    p = Path(str(source)).expanduser()
    if p.is_absolute():
        return p if p.exists() else None
    for base in (paths.ROOT, paths.data_dir(required=False)):
        if base is not None and (base / p).exists():
            return (base / p).resolve()
    return None


def read_file(path: str | Path) -> pd.DataFrame:
    """A CSV, Parquet or JSON-lines file as a DataFrame (CSV cells as strings or numbers as pandas
    reads them); DataError when the format is not one of these or the file does not parse."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"data file {path.name!r}: unknown format {path.suffix or '(no suffix)'!r}; allowed: {ALLOWED_FILES}")
    try:
        if kind == "CSV":
            df = pd.read_csv(path, keep_default_na=True)
        elif kind == "Parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_json(path, lines=True)
    except Exception as err:  # noqa: BLE001 - any parser's error gets the same message
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"data file {path.name!r} does not parse as {kind} ({type(err).__name__}: {first}); "
                        f"allowed: {ALLOWED_FILES}") from err
    if not isinstance(df, pd.DataFrame) or df.shape[1] == 0 or len(df) == 0:
        raise DataError(f"data file {path.name!r} holds no rows (or no columns): it needs a header and one row per text")
    return df


def read_hub(name: str) -> dict[str, pd.DataFrame]:
    """The splits of Hugging Face dataset `name` (`datasets.load_dataset`) as DataFrames; fails fast,
    with DataError, when the hub does not answer (HF_HUB_OFFLINE=1 or no network)."""
    if not paths.hub_reachable():
        raise DataError(f"data={name!r} is not a local file, and the Hugging Face hub is not reachable here "
                        f"(offline, or HF_HUB_OFFLINE=1): give {ALLOWED_FILES.replace(', or a Hugging Face dataset id', '')}, "
                        "or run where the hub answers")
    import datasets

    try:
        ds = datasets.load_dataset(name)
    except Exception as err:  # noqa: BLE001
        raise DataError(f"data={name!r}: the Hugging Face hub could not load it ({type(err).__name__}: {err}); "
                        f"allowed: {ALLOWED_FILES}") from err
    return {s: ds[s].to_pandas() for s in ds}


def read_source(source: str) -> tuple[dict[str, pd.DataFrame], str]:
    """The tables of `source`: {"all": frame} for a local file, the dataset's splits for a hub id;
    and a description of the source for the report (never a machine path)."""
    if not isinstance(source, str) or not source.strip():
        raise DataError(f"data must name {ALLOWED_FILES}, got {source!r}")
    path = resolve(source)
    if path is not None:
        if path.is_dir():
            raise DataError(f"data={source!r} is a folder; allowed: {ALLOWED_FILES}")
        from .provenance import rel

        return {"all": read_file(path)}, f"file {rel(path)}"
    if Path(source).suffix.lower() in FORMATS or source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise DataError(f"data file {source!r} not found (looked in the repository root and the data folder "
                        f"{'$KDLIB_DATA' if paths.data_dir(required=False) else '(none)'}); allowed: {ALLOWED_FILES}")
    return read_hub(source.removeprefix("hf:")), f"Hugging Face dataset {source}"


# ---- checking -------------------------------------------------------------------------------------
def check_column(df: pd.DataFrame, column: str, role: str, where: str) -> None:
    """`column` exists in `df` and is not empty (every entry missing or blank)."""
    if column not in df.columns:
        raise DataError(f"{where}: no {role} column {column!r}; its columns are {list(map(str, df.columns))}: "
                        f"set {role}= to one of them")
    col = df[column]
    blank = col.isna() | col.map(lambda v: isinstance(v, str) and not v.strip())
    if blank.all():
        raise DataError(f"{where}: the {role} column {column!r} is empty (all {len(col)} entries missing or blank)")


def check_texts(texts: pd.Series, column: str, where: str) -> None:
    """Every entry a non-empty string; DataError naming the rows otherwise."""
    not_str = texts.map(lambda v: not isinstance(v, str))
    if not_str.any():
        bad = texts[not_str]
        kinds = sorted({"missing" if (v is None or (isinstance(v, float) and math.isnan(v))) else type(v).__name__
                        for v in bad})
        raise DataError(f"{where}: {int(not_str.sum())} entries of the text column {column!r} are not text "
                        f"({', '.join(kinds)}; rows {_rows(bad.index)}): every text must be a non-empty string")
    blank = texts.str.strip() == ""
    if blank.any():
        raise DataError(f"{where}: {int(blank.sum())} entries of the text column {column!r} are empty "
                        f"(rows {_rows(texts.index[blank])}): every text must be a non-empty string")


def _label_value(v):
    """A label as a class name: str, bool, or int (integral floats, as CSV reads a column with gaps,
    become ints); anything else raises DataError."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        if float(v).is_integer():
            return int(v)
        raise DataError(f"labels must be class names (strings or integers), found the number {v!r}: a continuous "
                        "target is regression, not classification")
    if isinstance(v, str):
        return v
    raise DataError(f"labels must be class names (strings or integers), found {type(v).__name__} {v!r}")


def class_order(values) -> list:
    """The classes in their order: numbers ascending, strings alphabetically (mixed: as strings)."""
    values = list(dict.fromkeys(values))
    if all(isinstance(v, (int, bool)) for v in values):
        return sorted(values)
    return sorted(values, key=str)


# ---- splitting -------------------------------------------------------------------------------------
def folds(frac: float) -> int:
    """The folds `data.train_val_split` cuts for a fraction `frac`: one of them is the held-out part."""
    return max(2, int(round(1 / frac)))


def split_rule(val_frac: float, test_frac: float, seed: int) -> str:
    """The recorded rule by which data without given splits is split (`split`)."""
    return (f"test: one fold of {folds(test_frac)} (test_frac={test_frac:g}), then validation: one fold of "
            f"{folds(val_frac / (1 - test_frac))} of the rest (val_frac={val_frac:g} of the whole); "
            f"scikit-learn's StratifiedGroupKFold, shuffled with seed {seed}, stratified by class and grouped by "
            "normalised text (kdlib.data.train_val_split), so a repeated text never sits in two splits")


def min_per_class(val_frac: float, test_frac: float) -> int:
    """The fewest examples a class needs to be split by the rule: one more than the folds of either cut."""
    return max(folds(test_frac), folds(val_frac / (1 - test_frac))) + 1


def split(df: pd.DataFrame, val_frac: float, test_frac: float, seed: int) -> dict[str, pd.DataFrame]:
    """{train, val, test} of a frame with ``text`` and ``label`` columns, by `split_rule`."""
    rest, test = kdata.train_val_split(df, val_frac=test_frac, seed=seed)
    train, val = kdata.train_val_split(rest, val_frac=val_frac / (1 - test_frac), seed=seed)
    return {"train": train, "val": val, "test": test}


# ---- the whole of it ------------------------------------------------------------------------------
@dataclass
class Prepared:
    """What `prepare` returns: the splits ({train, val, test}: id, text, label, raw_label), the
    transfer set (id, text, label -1; or None), the class names in label order, and `info` (source,
    rule, counts, repeats dropped) for the report."""

    splits: dict
    transfer: pd.DataFrame | None
    classes: list
    info: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def hashes(self) -> dict:
        out = {s: kdata.content_hash(df[["id", "text", "label"]]) for s, df in self.splits.items()}
        if self.transfer is not None:
            out["transfer"] = kdata.content_hash(self.transfer[["id", "text"]])
        return out


def _given_splits(tables: dict, split_col: str, where: str) -> dict[str, pd.DataFrame] | None:
    """The given splits: a hub dataset's (train, validation/valid/dev/val, test), or a local file's
    `split_col` values; None when there are none."""
    if split_col:
        df = tables["all"]
        check_column(df, split_col, "split", where)
        names = df[split_col].astype(str).str.strip().str.lower()
        unknown = sorted(set(names) - set(SPLIT_NAMES))
        if unknown:
            raise DataError(f"{where}: the split column {split_col!r} holds {unknown[:SHOWN]}; allowed values: "
                            f"{sorted(SPLIT_NAMES)} (train is needed; validation and test are carved from it when missing)")
        return {s: df[names.map(SPLIT_NAMES) == s] for s in SPLITS if (names.map(SPLIT_NAMES) == s).any()}
    if "all" in tables:
        return None
    out = {}
    for name, df in tables.items():
        s = SPLIT_NAMES.get(name.lower())
        if s and s not in out:
            out[s] = df
    return out


def prepare(source: str, text: str = "text", label: str = "label", split_col: str = "", val_frac: float = 0.15,
            test_frac: float = 0.15, seed: int = 0, transfer: str = "", unlabelled_label=None,
            subset: int | None = None) -> Prepared:
    """Read, check and split `source` (see the module docstring).

    - `text`, `label`: the column names; labels of any type (strings or integers), two or more classes.
    - `split_col`: a column naming each row's split (train, validation|valid|dev|val, test); "" when
      none. A hub dataset's own splits are used. Missing validation / test are carved from train by
      the rule (test first); no split at all: `split_rule(val_frac, test_frac, seed)`.
    - `transfer`: a file of unlabelled texts (its `text` column) for the transfer set; and/or
      `unlabelled_label`: a label value marking rows of `source` that are unlabelled (the transfer set).
    - `subset`: a seeded stratified subsample of the labelled rows first (quick trials; None: all).

    Texts repeated across splits are reported and dropped from validation and test (from test
    when in validation too); a test text is never trained on or chosen by. Raises DataError for a
    missing or empty column, non-text or empty texts, labels that are not class names, one class
    only, a class too small to split, validation/test classes train lacks, an unreadable file."""
    tables, described = read_source(source)
    where = described.split(" ", 1)[1] if described.startswith("file ") else source
    if text == label:
        raise DataError(f"text and label name the same column {text!r}: they must be two columns")
    for name, df in tables.items():
        w = where if name == "all" else f"{where} [{name}]"
        check_column(df, text, "text", w)
    given = _given_splits(tables, split_col, where)
    frames = {"all": tables["all"]} if given is None else given
    if given is not None and "train" not in given:
        raise DataError(f"{where}: the given splits are {sorted(given)}; a train split is needed")
    info = {"source": described, "text_column": text, "label_column": label}

    # labelled rows, unlabelled rows (the transfer set), row numbers as ids
    labelled, pool = {}, []
    offset = 0
    for name, df in frames.items():
        w = where if name == "all" else f"{where} [{name}]"
        check_column(df, label, "label", w)
        df = df.reset_index(drop=True)
        ids = np.arange(offset, offset + len(df), dtype=np.int64)
        offset += len(df)
        raw = df[label]
        if unlabelled_label is not None:
            unl = raw.map(lambda v: str(v) == str(unlabelled_label)).to_numpy()
            if unl.any():
                pool.append(pd.DataFrame({"id": ids[unl], "text": df[text].to_numpy()[unl]}))
            df, ids, raw = df[~unl], ids[~unl], raw[~unl]
        missing = raw.isna()
        if missing.any():
            raise DataError(f"{w}: {int(missing.sum())} rows have no label in column {label!r} (rows "
                            f"{_rows(df.index[missing.to_numpy()])}): every labelled row needs a class; mark "
                            "unlabelled texts with unlabelled_label= (they become the transfer set)")
        check_texts(df[text], text, w)
        values = [_label_value(v) for v in raw]
        labelled[name] = pd.DataFrame({"id": ids, "text": df[text].to_numpy(), "raw_label": values})

    base = labelled["all" if given is None else "train"]
    classes = class_order(base["raw_label"])
    if len(classes) < 2:
        raise DataError(f"{where}: the label column {label!r} has one class only ({classes[0]!r}"
                        f"{' in train' if given is not None else ''}): distillation here needs two or more classes")
    for name, df in labelled.items():
        unknown = class_order(set(df["raw_label"]) - set(classes))
        if unknown:
            raise DataError(f"{where}: the {'validation' if name == 'val' else name} split has labels that train lacks "
                            f"({unknown[:SHOWN]}); every class must have training examples: train has {classes}")
    index = {c: i for i, c in enumerate(classes)}
    for df in labelled.values():
        df["label"] = df["raw_label"].map(index).astype(np.int64)
        df.attrs = {}
    if subset is not None:
        for name, df in labelled.items():
            n = subset if name in ("all", "train") else max(len(classes) * 2, subset // 4)
            if n < len(df):
                labelled[name] = kdata.subsample(df, n, seed=seed)

    # the splits: given, carved, or by the rule
    counts = labelled["all" if given is None else "train"]["label"].value_counts()
    need_carve = given is None or not {"val", "test"} <= set(given)
    if need_carve:
        if given is None:
            need = min_per_class(val_frac, test_frac)
        else:
            cuts = [f for s, f in (("test", test_frac), ("val", val_frac)) if s not in given]
            need = max(folds(f) for f in cuts) + 1
        small = {classes[c]: int(n) for c, n in counts.items() if n < need}
        if small:
            raise DataError(f"{where}: class(es) {small} have too few examples to split: with "
                            f"val_frac={val_frac:g} and test_frac={test_frac:g} every class needs at least {need} "
                            "(give the splits, or more examples of it, or drop the class)")
    if given is None:
        splits = split(labelled["all"], val_frac, test_frac, seed)
        info["split"] = split_rule(val_frac, test_frac, seed)
    else:
        splits = dict(labelled)
        carved = []
        if "test" not in splits:
            splits["train"], splits["test"] = kdata.train_val_split(splits["train"], val_frac=test_frac, seed=seed)
            carved.append(f"test: one fold of {folds(test_frac)} of the given train (test_frac={test_frac:g})")
        if "val" not in splits:
            splits["train"], splits["val"] = kdata.train_val_split(splits["train"], val_frac=val_frac, seed=seed)
            carved.append(f"validation: one fold of {folds(val_frac)} of the given train (val_frac={val_frac:g})")
        info["split"] = "given (" + ", ".join(sorted(given)) + ")" + (
            "; " + "; ".join(carved) + f": StratifiedGroupKFold, seed {seed}, grouped by normalised text" if carved else "")
    splits = {s: splits[s][["id", "text", "label", "raw_label"]].reset_index(drop=True) for s in SPLITS}

    # texts repeated across splits: dropped from validation (in train) and test (in train or validation)
    repeats = {"val_in_train": 0, "test_in_train_or_val": 0}
    for s, others, key in (("val", ["train"], "val_in_train"), ("test", ["train", "val"], "test_in_train_or_val")):
        kept = kdata.drop_overlap(splits[s], [splits[o] for o in others], s, verbose=False)
        repeats[key] = kept.attrs["dropped"]["overlap"]
        kept.attrs = {}
        splits[s] = kept
    norm = kdata.normalise_text(splits["train"]["text"])
    repeats["within_train"] = int(norm.duplicated().sum())
    info["repeats"] = repeats
    for s, df in splits.items():
        absent = [classes[c] for c in range(len(classes)) if not (df["label"] == c).any()]
        if s == "train" and absent:
            raise DataError(f"{where}: after splitting, train has no example of {absent}: too few examples to split")
        if absent and s != "train":
            if need_carve and given is None:
                raise DataError(f"{where}: after splitting (and dropping repeated texts), the "
                                f"{'validation' if s == 'val' else s} split has no example of class(es) {absent}: "
                                "too few examples of them to split; give more, or the splits")
            info.setdefault("absent", {})[s] = absent
    info["counts"] = {s: {str(classes[c]): int((df["label"] == c).sum()) for c in range(len(classes))}
                      for s, df in splits.items()}

    # the transfer set: unlabelled rows and/or a file, without texts of the labelled splits or repeats
    if transfer:
        t_tables, t_desc = read_source(transfer)
        t_df = next(iter(t_tables.values()))
        t_where = t_desc.split(" ", 1)[1] if t_desc.startswith("file ") else transfer
        check_column(t_df, text, "text", t_where)
        check_texts(t_df[text].reset_index(drop=True), text, t_where)
        pool.append(pd.DataFrame({"id": np.arange(len(t_df), dtype=np.int64) + offset, "text": t_df[text].to_numpy()}))
        info["transfer_source"] = t_desc
    transfer_df = None
    if pool:
        t = pd.concat(pool, ignore_index=True)
        check_texts(t["text"], text, "the unlabelled texts")
        t = kdata.drop_overlap(t, list(splits.values()), "transfer set", dedupe=True, verbose=False)
        info["transfer"] = {"n": len(t), **t.attrs["dropped"]}
        t.attrs = {}
        t["id"] = t["id"] + kdata.TRANSFER_ID_OFFSET
        t["label"] = -1
        transfer_df = t[["id", "text", "label"]] if len(t) else None
    info["classes"] = [str(c) for c in classes]
    return Prepared(splits, transfer_df, classes, info)


# ---- scores -----------------------------------------------------------------------------------------
def scores(labels, logits) -> dict[str, float]:
    """accuracy, macro_f1 and roc_auc (binary; K classes: one-vs-rest, the mean over the classes that
    `labels` holds with examples on both sides) from single logits (N,) or K-class logits (N, K)."""
    from scipy.special import expit, softmax
    from sklearn import metrics as skm

    y = np.asarray(labels).astype(int)
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 1:
        p = expit(z)
        pred = (p >= 0.5).astype(int)
        auc = float(skm.roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
        k = 2
    else:
        p = softmax(z, axis=1)
        pred, k = p.argmax(1), z.shape[1]
        aucs = [skm.roc_auc_score(y == c, p[:, c]) for c in range(k) if 0 < (y == c).sum() < len(y)]
        auc = float(np.mean(aucs)) if aucs else float("nan")
    return {"accuracy": float(skm.accuracy_score(y, pred)),
            "macro_f1": float(skm.f1_score(y, pred, average="macro", labels=list(range(k)), zero_division=0)),
            "roc_auc": auc, "n": int(len(y))}


METRICS = ("accuracy", "macro_f1", "roc_auc")


def comparison(runs: pd.DataFrame, metrics=METRICS, split: str = "test") -> pd.DataFrame:
    """KD − scratch per architecture and metric, paired by seed (`report.paired_row`: a pair whose runs
    record different `init_hash` is an error): one row each with n, the means, the difference, its 95%
    CI, p, and wins/losses. `runs` has columns arch, arm ("kd" | "scratch"), seed and `<split>_<metric>`."""
    from . import report

    rows = [{**report.paired_row(g[g["arm"] == "kd"], g[g["arm"] == "scratch"], f"{split}_{m}", arch=arch), "metric": m}
            for arch, g in runs.groupby("arch", sort=False) for m in metrics]
    return pd.DataFrame(rows)


def verdict(row) -> str:
    """In words: did distillation help on this metric (the 95% CI of KD − scratch above 0), hurt
    (below 0), or is it undecided (the CI holds 0, or there is none)?"""
    lo, hi = row["ci_low"], row["ci_high"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided (no interval: too few seeds or identical differences)"
    if lo > 0:
        return "helped"
    if hi < 0:
        return "hurt"
    return "undecided (the interval holds 0)"


# ---- the saved student ------------------------------------------------------------------------------
CONFIG = "config.json"
WEIGHTS = "model.safetensors"


def label(arch: str, hidden: int) -> str:
    """How a student is named on the page: GRU-64, CNN-64, MiniLM-3."""
    return "MiniLM-3" if arch == "minilm3" else f"{arch.upper()}-{hidden}"


def build_minilm3(base: str, n_classes: int, seed: int, keep=MINILM3_KEEP):
    """The pretrained `base` (a `models.teacher_record` name) cut to its encoder layers `keep`, with a
    new head (one logit for two classes, else `n_classes`) drawn from `seed` alone: a fine-tuned
    twin and a distilled twin built with one seed start from the same weights."""
    import torch

    from . import layers, models

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = layers.truncate(models.load_teacher(base, attention_dropout=0.0), keep)
    if n_classes > 2:
        model = models.with_classes(model, n_classes, seed)
    return model


def config_keys(arch: str) -> set:
    """What a saved student's config.json must hold for `build` and `load_student`."""
    common = {"arch", "pad_id", "n_classes", "classes", "max_len", "tokenizer"}
    return common | ({"base", "keep"} if arch == "minilm3" else {"hidden", "vocab_size", "emb_dim", "dropout"})


def build(config: dict):
    """The student `config` describes, freshly initialised: a GRU/CNN (arch, hidden, vocab_size,
    emb_dim, dropout, pad_id, n_classes, bidirectional: `models.build_student`, + `with_classes` for
    K > 2) or MiniLM-3 (base, keep, n_classes: `build_minilm3`)."""
    from . import models

    if config["arch"] == "minilm3":
        return build_minilm3(config["base"], config["n_classes"], 0, config["keep"])
    kw = {"emb_dim": config["emb_dim"], "dropout": config["dropout"], "pad_id": config["pad_id"]}
    if config["arch"] == "gru":
        kw["bidirectional"] = config.get("bidirectional", False)
    model = models.build_student(config["arch"], config["hidden"], config["vocab_size"], 0, **kw)
    if config["n_classes"] > 2:
        model = models.with_classes(model, config["n_classes"], 0)
    return model


def save_student(model, folder: str | Path, config: dict) -> Path:
    """`model`'s weights as `model.safetensors` and `config` (what `build` needs, plus classes,
    max_len and the tokenizer's record: `config_keys`) as config.json in `folder`; returns the folder."""
    from safetensors.torch import save_file

    if config.get("arch") not in STUDENTS:
        raise ValueError(f"the student's config names arch {config.get('arch')!r}; allowed: {STUDENTS}")
    missing = sorted(config_keys(config["arch"]) - set(config))
    if missing:
        raise ValueError(f"the student's config lacks {missing}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS))
    (folder / CONFIG).write_text(json.dumps(config, indent=1, default=str))
    return folder


class TextClassifier:
    """A saved student ready for raw texts: `predict(texts)` gives class names, `predict_proba(texts)`
    the (N, K) class probabilities in the order of `classes`."""

    def __init__(self, model, tokenizer, config: dict):
        self.model, self.tokenizer, self.config = model.eval(), tokenizer, config
        self.classes = list(config["classes"])
        self.max_len = int(config["max_len"])

    def logits(self, texts, batch_size: int = 64) -> np.ndarray:
        import torch

        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        check_texts(pd.Series(texts, dtype=object), "texts", "predict")
        ids = kdata.encode_texts(texts, self.tokenizer, self.max_len)
        collate = kdata.Collate(pad_id=self.config["pad_id"])
        out = []
        with torch.no_grad():
            for i in range(0, len(ids), batch_size):
                chunk = ids[i:i + batch_size]
                batch = collate([(t, 0, j) for j, t in enumerate(chunk)])
                out.append(self.model(batch["input_ids"], batch["attention_mask"]).float().numpy())
        return np.concatenate(out)

    def predict_proba(self, texts, batch_size: int = 64) -> np.ndarray:
        from scipy.special import expit, softmax

        z = self.logits(texts, batch_size).astype(np.float64)
        if z.ndim == 1:
            p = expit(z)
            return np.stack([1 - p, p], axis=1)
        return softmax(z, axis=1)

    def predict(self, texts, batch_size: int = 64) -> list:
        return [self.classes[i] for i in self.predict_proba(texts, batch_size).argmax(1)]

    __call__ = predict


def load_student(folder: str | Path) -> TextClassifier:
    """The student saved by `save_student` (notebooks/distill.py's best student) with its tokenizer:
    ``load_student("results/distill/bbc/student").predict(["some text"])``."""
    from safetensors.torch import load_file

    from . import models

    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(f"{folder} holds no saved student ({CONFIG} and {WEIGHTS}): run notebooks/distill.py")
    config = json.loads((folder / CONFIG).read_text())
    model = build(config)
    model.load_state_dict(load_file(str(folder / WEIGHTS)))
    tok = models.load_recorded_tokenizer(config["tokenizer"])
    return TextClassifier(model, tok, config)
