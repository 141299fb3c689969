"""Loading (IMDB, splice) from tiny generated parquet files, splits, tokenisation, caching, batching."""
import numpy as np
import pandas as pd
import pytest
import torch

from kdlib import data, paths


# ------------------------------------------------------------------------------------------ IMDB

def _imdb_frame(n, seed, offset=0):
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "film", "plot", "actor", "great", "awful", "scene"]
    return pd.DataFrame({
        "text": [" ".join(rng.choice(words, size=int(rng.integers(3, 9)))) + f" #{offset + i}" for i in range(n)],
        "label": np.array([i % 2 for i in range(n)], dtype=np.int64),
    })


@pytest.fixture
def imdb_dir(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "imdb").mkdir(parents=True)
    _imdb_frame(40, 0).to_parquet(root / "imdb" / "train.parquet")
    _imdb_frame(20, 1, offset=1000).to_parquet(root / "imdb" / "test.parquet")
    monkeypatch.setenv("KDLIB_DATA", str(root))
    return root


def test_load_imdb_local(imdb_dir, capsys):
    out = data.load_imdb(source="local")
    assert set(out) == {"train", "test"}
    train, test = out["train"], out["test"]
    assert list(train.columns) == ["id", "text", "label"]
    assert len(train) == 40 and len(test) == 20
    np.testing.assert_array_equal(train["id"], np.arange(40))
    assert train["id"].dtype == np.int64
    pd.testing.assert_series_equal(train["text"], _imdb_frame(40, 0)["text"])
    printed = capsys.readouterr().out
    assert "IMDB source -> local: <data>/imdb" in printed and str(imdb_dir) not in printed
    assert train.attrs["source"].startswith("local")


def test_load_imdb_auto_offline_uses_local(imdb_dir, capsys, monkeypatch):
    monkeypatch.setattr(paths, "hub_reachable", lambda *a, **k: False)
    out = data.load_imdb(splits=("test",), source="auto")
    assert list(out) == ["test"] and len(out["test"]) == 20
    assert "local" in capsys.readouterr().out


def test_load_imdb_verbose_false_prints_nothing(imdb_dir, capsys):
    data.load_imdb(splits=("train",), source="local", verbose=False)
    assert capsys.readouterr().out == ""


def test_load_imdb_rejects_unknown_source():
    with pytest.raises(ValueError, match="source"):
        data.load_imdb(source="s3")


def test_load_imdb_missing_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="KDLIB_DATA"):
        data.load_imdb(source="local")


def test_load_imdb_missing_file(imdb_dir):
    (imdb_dir / "imdb" / "test.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"test\.parquet"):
        data.load_imdb(source="local")
    # the split that exists still loads
    assert len(data.load_imdb(splits=("train",), source="local", drop_test_duplicates=False)["train"]) == 40


def test_load_imdb_wrong_schema(imdb_dir):
    _imdb_frame(10, 0).rename(columns={"label": "sentiment"}).to_parquet(imdb_dir / "imdb" / "train.parquet")
    with pytest.raises(ValueError, match="missing column"):
        data.load_imdb(source="local")


def test_load_imdb_non_binary_labels(imdb_dir):
    df = _imdb_frame(10, 0)
    df.loc[3, "label"] = 2
    df.to_parquet(imdb_dir / "imdb" / "train.parquet")
    with pytest.raises(ValueError, match="binary"):
        data.load_imdb(source="local")


def test_load_imdb_unsupervised_allows_minus_one(imdb_dir):
    df = _imdb_frame(6, 0)
    df["label"] = -1
    df.to_parquet(imdb_dir / "imdb" / "unsupervised.parquet")
    out = data.load_imdb(splits=("unsupervised",), source="local", verbose=False)
    assert (out["unsupervised"]["label"] == -1).all()


def test_imdb_transfer_set_seeded_subsample_with_offset_ids(imdb_dir):
    df = _imdb_frame(30, 2, offset=5000)
    df["label"] = -1
    df.to_parquet(imdb_dir / "imdb" / "unsupervised.parquet")
    a = data.imdb_transfer_set(10, seed=3, source="local")
    b = data.imdb_transfer_set(10, seed=3, source="local")
    c = data.imdb_transfer_set(10, seed=4, source="local")
    assert len(a) == 10 and (a["label"] == -1).all()
    assert a.equals(b) and not a["id"].equals(c["id"])
    assert (a["id"] >= data.TRANSFER_ID_OFFSET).all() and a["id"].is_unique
    assert a.attrs["source"].startswith("local")
    full = data.load_imdb(("unsupervised",), source="local", verbose=False)["unsupervised"]
    assert (full.set_index("id").loc[a["id"] - data.TRANSFER_ID_OFFSET, "text"].to_numpy() == a["text"].to_numpy()).all()
    # ids never meet the train ids, so train and transfer logits share one TeacherLogits
    train = data.load_imdb(("train",), source="local", verbose=False)["train"]
    assert not set(train["id"]) & set(a["id"])
    for bad in (0, -5, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            data.imdb_transfer_set(bad, source="local")


def test_check_binary_labels():
    data.check_binary_labels([0, 1, 1, 0])
    data.check_binary_labels([0, 1, -1], allow_unlabelled=True)
    with pytest.raises(ValueError):
        data.check_binary_labels([0, 1, -1])
    with pytest.raises(ValueError):
        data.check_binary_labels([0.5, 1])


# ----------------------------------------------------------------------------------------- splits

def _labelled(n, pos_share=0.3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.zeros(n, dtype=np.int64)
    labels[rng.choice(n, size=int(n * pos_share), replace=False)] = 1
    return pd.DataFrame({"id": np.arange(n, dtype=np.int64), "text": [f"t{i}" for i in range(n)], "label": labels})


def test_train_val_split_deterministic_disjoint_stratified():
    df = _labelled(200, pos_share=0.3)
    tr1, va1 = data.train_val_split(df, val_frac=0.2, seed=4)
    tr2, va2 = data.train_val_split(df, val_frac=0.2, seed=4)
    pd.testing.assert_frame_equal(tr1, tr2)
    pd.testing.assert_frame_equal(va1, va2)
    _, va3 = data.train_val_split(df, val_frac=0.2, seed=5)
    assert set(va3["id"]) != set(va1["id"])
    # disjoint and complete
    assert not set(tr1["id"]) & set(va1["id"])
    assert sorted(set(tr1["id"]) | set(va1["id"])) == list(range(200))
    # stratified: exactly 20% of each class (60 positives, 140 negatives)
    assert len(va1) == 40
    assert (va1["label"] == 1).sum() == 12 and (va1["label"] == 0).sum() == 28


def test_train_val_split_unstratified_and_bad_frac():
    df = _labelled(50)
    tr, va = data.train_val_split(df, val_frac=0.1, seed=0, stratify=None)
    assert len(va) == 5 and len(tr) == 45
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            data.train_val_split(df, val_frac=bad)


def test_validation_never_from_test(imdb_dir):
    out = data.load_imdb(source="local", verbose=False)
    train, val = data.train_val_split(out["train"], val_frac=0.25, seed=0)
    test_texts = set(out["test"]["text"])
    assert not set(val["text"]) & test_texts
    assert set(val["text"]) <= set(out["train"]["text"])
    assert len(val) == 10 and len(train) == 30


def test_subsample_stratified_and_seeded():
    df = _labelled(100, pos_share=0.2)
    a = data.subsample(df, 50, seed=1)
    assert len(a) == 50 and (a["label"] == 1).sum() == 10
    pd.testing.assert_frame_equal(a, data.subsample(df, 50, seed=1))
    assert list(a["id"]) == sorted(a["id"])
    assert data.subsample(df, None) is df and data.subsample(df, 1000) is df


# ----------------------------------------------------------------------------------------- splice

def _splice_frame(seed=0):
    rng = np.random.default_rng(seed)
    seqs, junctions = [], []
    bases = np.array(list("ACGT"))
    for i in range(30):
        s = "".join(rng.choice(bases, size=12))
        if i % 10 == 3:
            s = s[:5] + "N" + s[6:]
        j = ["EI", "IE", "N"][i % 3]
        copies = 1 + (i % 4 == 0) + (i % 7 == 0)  # some sequences appear 2 or 3 times
        seqs.extend([s] * copies)
        junctions.extend([j] * copies)
    return pd.DataFrame({"sequence": seqs, "junction": junctions, "extra": 0})


@pytest.fixture
def splice_path(tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "splice").mkdir(parents=True)
    path = root / "splice" / "splice.parquet"
    _splice_frame().to_parquet(path)
    monkeypatch.setenv("KDLIB_DATA", str(root))
    return path


def test_load_splice(splice_path):
    df = data.load_splice()
    raw = _splice_frame()
    assert list(df.columns) == ["id", "sequence", "junction", "label"]
    assert len(df) == len(raw)
    np.testing.assert_array_equal(df["label"], (raw["junction"] == "EI").astype(int))
    np.testing.assert_array_equal(df["id"], np.arange(len(raw)))
    ie = data.load_splice(positive="IE", path=splice_path)
    np.testing.assert_array_equal(ie["label"], (raw["junction"] == "IE").astype(int))
    with pytest.raises(ValueError, match="positive"):
        data.load_splice(positive="XX")


def test_load_splice_missing_and_bad_schema(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.load_splice(path=tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"seq": ["ACGT"], "junction": ["EI"]}).to_parquet(bad)
    with pytest.raises(ValueError, match="missing column"):
        data.load_splice(path=bad)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_split_keeps_duplicates_together(splice_path, seed):
    df = data.load_splice()
    assert df["sequence"].duplicated().any()  # the fixture really has duplicates
    parts = data.group_split(df, "sequence", (0.6, 0.2, 0.2), seed=seed)
    assert len(parts) == 3
    assert sum(len(p) for p in parts) == len(df)
    ids = [set(p["id"]) for p in parts]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    seqs = [set(p["sequence"]) for p in parts]
    assert not (seqs[0] & seqs[1]) and not (seqs[0] & seqs[2]) and not (seqs[1] & seqs[2])
    # group counts follow the fractions (30 unique sequences -> 18 / 6 / 6)
    assert [len(s) for s in seqs] == [18, 6, 6]
    again = data.group_split(df, "sequence", (0.6, 0.2, 0.2), seed=seed)
    for a, b in zip(parts, again):
        pd.testing.assert_frame_equal(a, b)


def test_group_split_rejects_bad_fracs(splice_path):
    with pytest.raises(ValueError, match="sum to 1"):
        data.group_split(data.load_splice(), "sequence", (0.5, 0.2))


# --------------------------------------------------------------------------------- tokenisation

def test_dna_tokenizer_k1():
    tok = data.DNATokenizer(1)
    assert tok.vocab == {"A": 2, "C": 3, "G": 4, "T": 5}
    assert tok.vocab_size == 6 and tok.pad_token_id == 0
    assert tok.encode("ACGTN") == [2, 3, 4, 5, 1]
    assert tok.encode("acgt") == [2, 3, 4, 5]
    out = tok(["GA", "T"])
    assert [x.tolist() for x in out] == [[4, 2], [5]] and out[0].dtype == np.int32


def test_dna_tokenizer_k3():
    tok = data.DNATokenizer(3)
    assert tok.vocab_size == 64 + 2
    assert tok.vocab["AAA"] == 2 and tok.vocab["AAC"] == 3 and tok.vocab["TTT"] == 65
    # overlapping 3-mers: ACGTA -> ACG, CGT, GTA
    acg = 2 + 0 * 16 + 1 * 4 + 2
    cgt = 2 + 1 * 16 + 2 * 4 + 3
    gta = 2 + 2 * 16 + 3 * 4 + 0
    assert tok.encode("ACGTA") == [acg, cgt, gta]
    assert tok.encode("ACNTA") == [1, 1, 1]
    assert tok.encode("AC") == []
    with pytest.raises(ValueError):
        data.DNATokenizer(0)


def test_encode_texts_truncates():
    ids = data.encode_texts(["ACGTACGT", "AC"], data.DNATokenizer(1), max_len=5)
    assert [x.tolist() for x in ids] == [[2, 3, 4, 5, 2], [2, 3]]
    with pytest.raises(ValueError):
        data.encode_texts(["A"], data.DNATokenizer(1), max_len=1)


def test_cached_token_ids_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "kcache"))
    df = pd.DataFrame({"id": np.arange(4), "sequence": ["ACGTAC", "GG", "TTTTACG", "CAT"]})
    tok = data.DNATokenizer(2)
    first = data.cached_token_ids(df, tok, max_len=4, text_col="sequence")
    files = list((tmp_path / "kcache" / "tokens").glob("*.npz"))
    assert len(files) == 1 and "dna-2mer" in files[0].name and "_L4_" in files[0].name
    assert not list((tmp_path / "kcache" / "tokens").glob("*.tmp*"))

    def boom(*a, **k):
        raise AssertionError("the cache was not used")
    monkeypatch.setattr(data, "encode_texts", boom)
    second = data.cached_token_ids(df, tok, max_len=4, text_col="sequence")
    assert len(second) == len(first) == 4
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert [len(x) for x in second] == [4, 1, 4, 2]
    # a different split content is a different key (so it tries to encode again)
    df2 = df.assign(sequence=["ACGTAC", "GG", "TTTTACG", "CAG"])
    with pytest.raises(AssertionError, match="cache was not used"):
        data.cached_token_ids(df2, tok, max_len=4, text_col="sequence")


def test_cached_token_ids_explicit_cache_folder(tmp_path):
    df = pd.DataFrame({"id": [0, 1], "text": ["ACG", "TTA"]})
    ids = data.cached_token_ids(df, data.DNATokenizer(1), max_len=8, cache=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1
    assert [x.tolist() for x in ids] == [[2, 3, 4], [5, 5, 2]]


def test_content_hash_stable_and_sensitive():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert data.content_hash(df) == data.content_hash(df.copy())
    assert data.content_hash(df) != data.content_hash(df.assign(b=["x", "z"]))
    assert len(data.content_hash("abc")) == 12


# ------------------------------------------------------------------------------------ batching

def _lengths(n=103, seed=0):
    return np.random.default_rng(seed).integers(1, 40, size=n)


def test_bucket_batch_sampler_deterministic_and_covering():
    lengths = _lengths()
    s = data.BucketBatchSampler(lengths, batch_size=8, seed=3, bucket=4)
    s.set_epoch(0)
    e0 = list(s)
    assert list(s) == e0  # same (seed, epoch) -> same batches
    s2 = data.BucketBatchSampler(lengths, batch_size=8, seed=3, bucket=4)
    s2.set_epoch(0)
    assert list(s2) == e0
    s.set_epoch(1)
    e1 = list(s)
    assert e1 != e0
    s3 = data.BucketBatchSampler(lengths, batch_size=8, seed=4, bucket=4)
    assert list(s3) != e0
    for batches in (e0, e1):
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(lengths)))  # every index exactly once
        assert len(batches) == len(s) == 13
        assert all(len(b) <= 8 for b in batches)


def test_bucket_batch_sampler_buckets_by_length():
    lengths = _lengths(400, seed=1)
    s = data.BucketBatchSampler(lengths, batch_size=10, seed=0, bucket=40)  # one chunk: fully sorted
    spreads = [np.ptp(lengths[b]) for b in s]
    rng = np.random.default_rng(0)
    random_spreads = [np.ptp(lengths[rng.choice(400, 10, replace=False)]) for _ in range(40)]
    assert np.mean(spreads) < np.mean(random_spreads) / 3


def test_bucket_batch_sampler_eval_and_drop_last():
    lengths = np.array([5, 1, 3, 2, 4])
    ev = data.BucketBatchSampler(lengths, batch_size=2, shuffle=False)
    assert list(ev) == [[1, 3], [2, 4], [0]]
    dl = data.BucketBatchSampler(lengths, batch_size=2, seed=0, drop_last=True)
    batches = list(dl)
    assert len(batches) == len(dl) == 2 and all(len(b) == 2 for b in batches)


def test_collate_dynamic_padding_and_mask():
    batch = [(np.array([4, 5, 6]), 1, 10), (np.array([7]), 0, 3), (np.array([8, 9]), 1, 7)]
    out = data.Collate(pad_id=0)(batch)
    assert out["input_ids"].tolist() == [[4, 5, 6], [7, 0, 0], [8, 9, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert out["labels"].dtype == torch.float32 and out["labels"].tolist() == [1.0, 0.0, 1.0]
    assert out["ids"].tolist() == [10, 3, 7]
    assert out["input_ids"].dtype == torch.long
    # min_len and a non-zero pad id
    out = data.Collate(pad_id=99, min_len=5)(batch[1:])
    assert out["input_ids"].tolist() == [[7, 99, 99, 99, 99], [8, 9, 99, 99, 99]]
    assert out["attention_mask"].tolist() == [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]
    # naive padding to a fixed width
    out = data.Collate(pad_to=4)(batch)
    assert out["input_ids"].shape == (3, 4) and out["attention_mask"].sum().item() == 6


def test_make_loader_yields_padded_batches():
    seqs = [np.arange(2, 2 + n) for n in (3, 1, 5, 2, 4)]
    ds = data.SeqDataset(seqs, [0, 1, 0, 1, 0], ids=[50, 51, 52, 53, 54])
    loader = data.make_loader(ds, batch_size=2, seed=0)
    seen = []
    for b in loader:
        assert b["input_ids"].shape[1] == int(b["attention_mask"].sum(1).max())
        seen.extend(b["ids"].tolist())
    assert sorted(seen) == [50, 51, 52, 53, 54]


def test_seq_dataset_validation():
    with pytest.raises(ValueError):
        data.SeqDataset([np.array([1])], [0, 1])
    with pytest.raises(ValueError):
        data.SeqDataset([np.array([1]), np.array([2])], [0, 2])
    with pytest.raises(ValueError, match="empty"):
        data.SeqDataset([np.array([1]), np.array([], dtype=np.int32)], [0, 1])
    ds = data.SeqDataset([np.array([1]), np.array([2, 3])], [0, -1], allow_unlabelled=True)
    assert ds.lengths.tolist() == [1, 2] and ds.ids.tolist() == [0, 1]


def test_teacher_logits_lookup_by_id():
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(100, 150))
    logits = ids * 0.5 - 30.0  # a known function of the id
    tl = data.TeacherLogits(ids, logits)
    assert len(tl) == 50
    query = rng.permutation(ids)[:17]
    torch.testing.assert_close(tl[query], torch.tensor(query * 0.5 - 30.0, dtype=torch.float32))
    torch.testing.assert_close(tl[torch.tensor(query)], tl[query.tolist()])
    # the same ids in another order give the same logits in that order
    q2 = query[::-1].copy()
    torch.testing.assert_close(tl[q2], tl[query].flip(0))


@pytest.mark.parametrize("missing", [[100, 99], [150], [100, 125, 1000], [-1]])
def test_teacher_logits_missing_id(missing):
    tl = data.TeacherLogits(np.arange(100, 150), np.zeros(50))
    with pytest.raises(KeyError):
        tl[missing]


def test_teacher_logits_duplicates_and_save_load(tmp_path):
    with pytest.raises(ValueError, match="duplicate"):
        data.TeacherLogits([1, 2, 1], [0.0, 1.0, 2.0])
    tl = data.TeacherLogits([3, 1, 2], [0.3, 0.1, 0.2])
    tl.save(tmp_path / "t" / "logits.npz", teacher="minilm")
    back = data.TeacherLogits.load(tmp_path / "t" / "logits.npz")
    torch.testing.assert_close(back[[1, 2, 3]], torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(FileNotFoundError):
        data.TeacherLogits.load(tmp_path / "none.npz")
