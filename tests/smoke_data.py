"""A small copy of the study's data for the smoke runs: every IMDB split cut to a few hundred reviews.

A smoke run checks that a notebook runs from its first cell to its last on tiny parameters; it is
never a result. On the whole IMDB files every notebook spends half a minute loading, deduplicating and
splitting 100,000 reviews before its first step, whatever its subset; on this copy that takes a second.
The copy keeps the files' columns, dtypes and order (label, then review_id), both labels in every
labelled split and every star rating, and is made under build/ (never committed) from ../shared/data;
splice/ and bbc/ are linked, they are small already.

    python tests/smoke_data.py build/smoke/data     # what the smoke tests do first
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

# reviews kept per split: enough for the smoke parameters' subsets (train_subset up to 96 of ~720
# train after the validation split; validation >= 64; test_subset 32; a transfer set of up to 32)
KEEP = {"train": 800, "test": 600, "unsupervised": 600}


def make(source: Path, dest: Path) -> Path:
    """Write the small copy of `source` (the data folder, holding imdb/, splice/, bbc/) into `dest`;
    an existing complete copy is kept. Returns `dest`."""
    imdb = dest / "imdb"
    if all((imdb / f"{s}.parquet").exists() for s in KEEP):
        return dest
    imdb.mkdir(parents=True, exist_ok=True)
    for split, n in KEEP.items():
        df = pd.read_parquet(source / "imdb" / f"{split}.parquet")
        # every label (and star rating) in proportion, a fixed draw, the file's own order
        small = df.groupby(["label", "rating"], group_keys=False).sample(frac=n / len(df), random_state=0)
        small = small.sort_values(["label", "review_id"]).reset_index(drop=True)
        tmp = imdb / f"{split}.parquet.tmp"
        small.to_parquet(tmp, index=False)
        tmp.replace(imdb / f"{split}.parquet")
    for other in ("splice", "bbc"):
        link = dest / other
        if not link.exists() and (source / other).exists():
            link.symlink_to((source / other).resolve(), target_is_directory=True)
    return dest


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print(make(root.parent / "shared" / "data", Path(sys.argv[1]) if len(sys.argv) > 1 else root / "build" / "smoke" / "data"))
