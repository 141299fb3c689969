"""kdlib.pu's selection-biased labelling (SAR, issue 55.5): the SCAR default is the draw it was before,
bit for bit; a SAR draw labels as many positives, biased towards a high attribute, and seeded; its
arguments are refused before anything is computed; the attributes the PU notebook offers."""
import json

import numpy as np
import pandas as pd
import pytest

from kdlib import pu
from kdlib.data import content_hash


def frame(n_pos=500, n_neg=1500, seed=0):
    """Like test_pu.frame, with a continuous attribute `a` (independent of the label) and a tied one `t`."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)])
    return pd.DataFrame({"id": np.arange(len(labels)) * 7, "text": [f"t{i}" for i in range(len(labels))],
                         "label": labels, "a": rng.lognormal(size=len(labels)),
                         "t": rng.integers(7, 11, size=len(labels))})


def old_make_pu(df, prior, labelled_frac, seed, n=None, label_col="label"):
    """make_pu's body as it was before SAR (commit eb43212), copied: the reference of the default."""
    pu.check_pu_args(prior, labelled_frac, n)
    if label_col not in df.columns:
        raise ValueError(f"make_pu: no {label_col!r} column in {list(df.columns)}")
    out = pu.subsample_to_prior(df, prior, seed, n, label_col)
    y = out[label_col].to_numpy()
    pos = np.flatnonzero(y == 1)
    n_lab = max(1, int(round(labelled_frac * len(pos))))
    rng = np.random.default_rng([seed, 2])
    pu_ = np.zeros(len(out), dtype=np.int64)
    pu_[rng.choice(pos, n_lab, replace=False)] = 1
    out["pu_label"] = pu_
    n_rows, n_pos = len(out), int(len(pos))
    achieved_prior = n_pos / n_rows
    info = {
        "prior_requested": prior, "prior": achieved_prior,
        "labelled_frac_requested": labelled_frac, "labelled_frac": n_lab / n_pos,
        "n": n_rows, "n_positive": n_pos, "n_labelled": n_lab, "n_unlabelled": n_rows - n_lab,
        "unlabelled_prior": (n_pos - n_lab) / (n_rows - n_lab),
        "unlabelled_prior_formula": "pi_u = pi (1 - c) / (1 - pi c)",
        "seed": seed, "n_requested": n,
        "hash": content_hash(out[["id", "pu_label"]] if "id" in out.columns else out[["pu_label"]]),
    }
    return out, info


# --- (1) the default is the old SCAR draw, bit for bit ------------------------------------------

@pytest.mark.parametrize("prior,c,seed,n", [(None, 0.2, 0, None), (0.1, 0.2, 1, None), (0.3, 0.5, 7, 800),
                                            (0.24, 1.0, 3, None), (0.1, 0.05, 12345, 400)])
def test_default_is_the_old_scar_draw(prior, c, seed, n):
    df = frame(seed=seed % 5)
    new, new_info = pu.make_pu(df, prior, c, seed=seed, n=n)
    explicit, explicit_info = pu.make_pu(df, prior, c, seed=seed, n=n, labelling="scar", sar_by=None, sar_strength=1.0)
    old, old_info = old_make_pu(df, prior, c, seed=seed, n=n)
    for frame_, info in ((new, new_info), (explicit, explicit_info)):
        pd.testing.assert_frame_equal(frame_, old, check_exact=True)
        assert np.array_equal(frame_["pu_label"].to_numpy(), old["pu_label"].to_numpy())
        assert info == old_info and json.dumps(info) == json.dumps(old_info)  # no new key in a SCAR record


# --- (2) the SAR draw ------------------------------------------------------------------------------

def sar(df=None, by="a", k=1.0, seed=0, c=0.2, prior=0.3, n=None):
    return pu.make_pu(frame() if df is None else df, prior, c, seed=seed, n=n, labelling="sar", sar_by=by,
                      sar_strength=k)


@pytest.mark.parametrize("by", ["a", "t"])
@pytest.mark.parametrize("c", [0.1, 0.2, 0.5])
def test_sar_labels_as_many_positives_biased_up(by, c):
    df, info = sar(by=by, c=c)
    lab, pos = df["pu_label"] == 1, df["label"] == 1
    assert df.loc[lab, "label"].eq(1).all()  # only positives are ever labelled
    assert lab.sum() == round(c * pos.sum()) == info["n_labelled"]  # as many as SCAR labels
    scar_df, scar_info = pu.make_pu(frame(), 0.3, c, seed=0)
    pd.testing.assert_frame_equal(df.drop(columns="pu_label"), scar_df.drop(columns="pu_label"))  # same sample
    assert info["hash"] != scar_info["hash"]  # other PU labels: another teacher_key in notebooks/online_pu.py
    assert info["sar_mean_positive"] == pytest.approx(df.loc[pos, by].mean())
    assert info["sar_mean_labelled"] == pytest.approx(df.loc[lab, by].mean())
    # the labelled positives' attribute sits well above the positives' (by more than SCAR's noise would give)
    sd_mean = df.loc[pos, by].std() * np.sqrt((1 - c) / lab.sum())
    assert info["sar_mean_labelled"] > info["sar_mean_positive"] + 3 * sd_mean
    assert {k: info[k] for k in ("labelling", "sar_by", "sar_strength")} == {"labelling": "sar", "sar_by": by,
                                                                             "sar_strength": 1.0}
    assert 0 < info["sar_propensity_min"] < c < info["sar_propensity_max"]
    json.dumps(info)


def test_sar_is_seeded():
    a, ia = sar(seed=5)
    b, ib = sar(seed=5)
    c, ic = sar(seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert ia == ib and ia["hash"] != ic["hash"]


def test_strength_sets_the_bias_and_tends_to_scar():
    """The mean bias (over seeds) grows with the strength; near 0 it is SCAR's (none), and the
    propensities are all c."""
    bias = {k: np.mean([(lambda i: i["sar_mean_labelled"] - i["sar_mean_positive"])(sar(k=k, seed=s)[1])
                        for s in range(20)]) for k in (1e-4, 0.5, 2.0)}
    scar = np.mean([(lambda d: d.loc[d.pu_label == 1, "a"].mean() - d.loc[d.label == 1, "a"].mean())(
        pu.make_pu(frame(), 0.3, 0.2, seed=s)[0]) for s in range(20)])
    sd = frame().loc[lambda d: d.label == 1, "a"].std() * np.sqrt(0.8 / 100) / np.sqrt(20)  # of a 20-seed mean
    assert abs(bias[1e-4]) < 4 * sd and abs(scar) < 4 * sd
    assert bias[1e-4] + 4 * sd < bias[0.5] < bias[2.0]
    _, info = sar(k=1e-4)
    assert info["sar_propensity_min"] == pytest.approx(0.2, rel=1e-3)
    assert info["sar_propensity_max"] == pytest.approx(0.2, rel=1e-3)


def test_propensity_formula():
    """w = exp(k z), z the standardised mid-rank: ties share a weight, scale and skew do not matter."""
    x = np.array([3.0, 1.0, 1.0, 1000.0])
    r = np.array([3.0, 1.5, 1.5, 4.0])
    z = (r - r.mean()) / r.std()
    assert np.allclose(pu.sar_propensity(x, 0.7), np.exp(0.7 * z))
    assert np.allclose(pu.sar_propensity(np.log(x), 0.7), pu.sar_propensity(x, 0.7))  # a monotone map: same weights
    assert np.allclose(pu.sar_propensity(np.full(4, 2.0), 3.0), 1.0)  # constant: equal weights


def test_each_draw_is_proportional_to_the_weights_left():
    """One draw of three with weights 1, 2, 5 picks each in proportion; two draws pick the pair
    {i, j} with probability w_i/W * w_j/(W - w_i) + the other order (successive sampling)."""
    pos, w = np.array([10, 20, 30]), np.array([1.0, 2.0, 5.0])
    n = 20_000
    rng = np.random.default_rng(0)
    first = np.array([pu._draw_labelled(rng, pos, 1, w)[0] for _ in range(n)])
    assert np.allclose([np.mean(first == p) for p in pos], w / w.sum(), atol=0.015)
    left_out = np.array([np.setdiff1d(pos, pu._draw_labelled(rng, pos, 2, w))[0] for _ in range(n)])
    W = w.sum()
    pair = lambda i, j: w[i] / W * w[j] / (W - w[i]) + w[j] / W * w[i] / (W - w[j])  # noqa: E731
    expected = [pair(1, 2), pair(0, 2), pair(0, 1)]  # leaving out 10, 20, 30
    assert np.allclose([np.mean(left_out == p) for p in pos], expected, atol=0.015)


# --- (3) argument errors, before anything is computed ------------------------------------------------

def nan_frame():
    return frame().assign(a=lambda d: d["a"].where(d.index != 3, np.nan))


@pytest.mark.parametrize("kw,df,msg", [
    (dict(labelling="SAR"), None, r"labelling must be one of \('scar', 'sar'\), got 'SAR'"),
    (dict(labelling="mnar", sar_by="a"), None, "labelling must be one of"),
    (dict(labelling="sar"), None, r"sar_by must name a column of the frame .*, got None"),
    (dict(labelling="sar", sar_by="stars"), None, r"sar_by must name a column of the frame \['id', 'text', 'label', "
                                                  r"'a', 't'\] with labelling='sar', got 'stars'"),
    (dict(labelling="sar", sar_by="text"), None, "sar_by must name a numeric column, got 'text'"),
    (dict(labelling="sar", sar_by="a"), "nan", r"sar_by column 'a' must hold finite values only, got 1 NaN"),
    (dict(labelling="sar", sar_by="a"), "inf", "sar_by column 'a' must hold finite values only"),
    (dict(labelling="sar", sar_by="a"), "const", "sar_by column 'a' must vary over the positives"),
    (dict(labelling="sar", sar_by="a", sar_strength=0), None, "sar_strength must be a finite number > 0, got 0"),
    (dict(labelling="sar", sar_by="a", sar_strength=-1.0), None, "sar_strength must be a finite number > 0, got -1.0"),
    (dict(labelling="sar", sar_by="a", sar_strength=float("inf")), None, "sar_strength must be a finite number > 0"),
    (dict(labelling="sar", sar_by="a", sar_strength="2"), None, "sar_strength must be a finite number > 0, got '2'"),
    (dict(labelling="sar", sar_by="a", sar_strength=True), None, "sar_strength must be a finite number > 0, got True"),
    (dict(sar_by="a"), None, "sar_by must be None with labelling='scar'.*, got 'a'"),
    (dict(sar_strength=2.0), None, "sar_strength must be 1.0 with labelling='scar'.*, got 2.0"),
])
def test_errors_before_compute(kw, df, msg, monkeypatch):
    base = frame()
    df = {None: base, "nan": nan_frame(), "inf": base.assign(a=np.where(base.index == 5, np.inf, base["a"])),
          "const": base.assign(a=np.where(base["label"] == 1, 2.0, base["a"]))}[df]

    def computed(*args, **kwargs):
        raise AssertionError("make_pu computed before refusing its arguments")

    monkeypatch.setattr(pu, "subsample_to_prior", computed)
    with pytest.raises(ValueError, match=msg):
        pu.make_pu(df, 0.3, 0.2, seed=0, **kw)


def test_nan_in_a_row_the_sample_would_drop_is_still_refused():
    """The whole column is checked, not only the rows the subsample keeps: the refusal does not hang on the seed."""
    df = frame()
    neg = df.index[df["label"] == 0][0]
    with pytest.raises(ValueError, match="finite"):
        pu.make_pu(df.assign(a=np.where(df.index == neg, np.nan, df["a"])), 0.3, 0.2, seed=0, n=100,
                   labelling="sar", sar_by="a")


# --- the attributes of notebooks/online_pu.py ------------------------------------------------------

def test_attributes():
    seqs = pd.DataFrame({"id": [0, 1], "sequence": ["GGCC" + "A" * 6, "ACGT" * 2 + "TT"], "label": [1, 1]})
    assert pu.add_sar_attribute(seqs, "gc", "sequence")["gc"].tolist() == [0.4, 0.4]
    reviews = pd.DataFrame({"id": [0, 1], "text": ["short", "a longer review"], "label": [1, 1]})
    assert pu.add_sar_attribute(reviews, "length", "text")["length"].tolist() == [5, 15]
    with pytest.raises(ValueError, match="by must be one of"):
        pu.add_sar_attribute(reviews, "rating", "text")
    assert set(pu.SAR_ATTRIBUTES) == {"splice", "imdb"}


def test_stars_need_the_local_files():
    reviews = pd.DataFrame({"id": [0, 1], "text": ["a", "b"], "label": [1, 1]})
    reviews.attrs["source"] = "hub: stanfordnlp/imdb"
    with pytest.raises(ValueError, match="local IMDB files"):
        pu.add_sar_attribute(reviews, "stars", "text")


def test_stars_of_local_positive_reviews(tmp_path, monkeypatch):
    """Stars read by the reviews' ids from a small local IMDB (as tests/test_classes.py fakes it); the
    labels stay binary and the labelled positives lean to the high ratings."""
    from kdlib import data

    monkeypatch.setenv("KDLIB_DATA", str(tmp_path / "data"))
    rng = np.random.default_rng(0)
    stars = rng.choice(data.RATING_STARS, 400)
    (tmp_path / "data" / "imdb").mkdir(parents=True)
    for split in ("train", "test"):
        pd.DataFrame({"text": [f"review {i} " * 3 for i in range(400)], "label": (stars >= 7).astype(np.int64),
                      "review_id": np.arange(400, dtype=np.int32),
                      "rating": stars.astype(np.int8)}).to_parquet(tmp_path / "data" / "imdb" / f"{split}.parquet")
    tr = data.load_imdb(("train",), source="local", verbose=False, drop_test_duplicates=False)["train"]
    tr = tr.iloc[rng.permutation(len(tr))[:300]].reset_index(drop=True)  # a shuffled subset keeps its ids
    with_stars = pu.add_sar_attribute(tr, "stars", "text")
    assert with_stars["stars"].tolist() == stars[tr["id"]].tolist()
    df, info = pu.make_pu(with_stars, 0.3, 0.3, seed=0, labelling="sar", sar_by="stars", sar_strength=2.0)
    assert set(df.loc[df.label == 1, "stars"]) <= {7, 8, 9, 10} and df["label"].isin([0, 1]).all()
    assert info["sar_mean_labelled"] > info["sar_mean_positive"]
