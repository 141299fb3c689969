"""Shared fixtures. Everything offline, tiny and fast (the machine is shared with a long run)."""
import os

# Offline before anything imports kdlib / transformers / datasets.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """No test may read the shared data or write the repository's cache: point both at tmp."""
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "no-data-here"))
    yield


def make_toy_sequences(n, seed=0, vocab=20, min_len=3, max_len=12, marker=5):
    """Token sequences (ids 2..vocab-1) whose label is 1 iff `marker` appears; about half positive."""
    rng = np.random.default_rng(seed)
    others = np.array([v for v in range(2, vocab) if v != marker])
    seqs, labels = [], []
    for i in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        s = rng.choice(others, size=length)
        y = i % 2
        if y:
            s[rng.integers(length)] = marker
        seqs.append(s.astype(np.int32))
        labels.append(y)
    return seqs, np.array(labels, dtype=np.int64)


@pytest.fixture
def toy_data():
    from kdlib import data

    def make(n=64, seed=0, **kw):
        seqs, labels = make_toy_sequences(n, seed=seed, **kw)
        return data.SeqDataset(seqs, labels)
    return make
