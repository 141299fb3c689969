"""Issue 55, points 1, 2 and 7 in kdlib: the PU losses' parts and knobs (`losses.PULoss`,
`losses.nnpu_risk`), the online loop's batch records and PU-only model selection
(`train.online_distill`, `train.PUSelection`), the kept teacher and student (`pu.save_run_models`,
`pu.load_run_models`). The defaults must be the study's runs so far, operation for operation: the
default loss is compared bit for bit with the code every committed PU run was made with (copied
below from commit fad4021). notebooks/smoke/online_pu-select.yaml runs the notebook with every
option off its default; its last cell recomputes the test metrics from the kept models."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_toy_sequences

from kdlib import data, losses, models, pu, train

VOCAB = 20


# --- the study's PU losses as committed runs computed them (kdlib/losses.py at fad4021) ----------

def _old_sigmoid_loss(z, y):
    return torch.sigmoid(-y * z)


def _old_pu_parts(scores, labels, prior):
    labels = labels.float()
    pos, unl = labels == 1, labels == 0
    n_p, n_u = pos.sum(), unl.sum().clamp(min=1)
    r_p_plus = _old_sigmoid_loss(scores[pos], 1).sum() / n_p
    r_p_minus = _old_sigmoid_loss(scores[pos], -1).sum() / n_p
    r_u_minus = _old_sigmoid_loss(scores[unl], -1).sum() / n_u
    return r_p_plus, r_u_minus - prior * r_p_minus


def _old_non_negative(positive_risk, negative_risk, beta, gamma):
    if negative_risk < -beta:
        return -gamma * negative_risk
    return positive_risk + negative_risk


def _old_pu_loss(kind, prior, target_prior=0.5, beta=0.0, gamma=1.0):
    if kind in ("supervised", "naive"):
        return lambda s, y: F.binary_cross_entropy_with_logits(s, y.to(s.dtype))
    if kind == "nnpu":
        def nnpu(s, y):
            r_p_plus, r_neg = _old_pu_parts(s, y, prior)
            return _old_non_negative(prior * r_p_plus, r_neg, beta, gamma)
        return nnpu

    def imbalanced(s, y):
        r_p_plus, r_neg = _old_pu_parts(s, y, prior)
        w = (1 - target_prior) / (1 - prior)
        return _old_non_negative(target_prior * r_p_plus, w * r_neg, beta, gamma)
    return imbalanced


def _batch(seed, n=32, k_pos=3, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, generator=g) * scale
    labels = torch.zeros(n, dtype=torch.int64)
    labels[torch.randperm(n, generator=g)[:k_pos]] = 1
    return scores, labels


STUDY_KINDS = ("nnpu", "imbalanced_nnpu", "naive", "supervised")  # the kinds of the committed runs


def test_the_study_s_kinds_are_still_pu_kinds():
    assert set(STUDY_KINDS) <= set(losses.PU_KINDS)


@pytest.mark.parametrize("kind", STUDY_KINDS)
@pytest.mark.parametrize("seed,scale,shift", [(0, 1.0, 0.0), (1, 3.0, 0.0), (2, 4.0, -6.0), (3, 0.5, 2.0)])
@pytest.mark.parametrize("beta,gamma", [(0.0, 1.0), (0.05, 0.3)])
def test_the_default_pu_loss_is_the_study_s_loss_bit_for_bit(kind, seed, scale, shift, beta, gamma):
    """Value and gradient equal (torch.equal, float32) to the committed runs' code, on batches where the
    correction fires (shift -6: the unlabelled scored very negative) and where it does not."""
    scores, labels = _batch(seed, scale=scale)
    scores = scores + shift * (1 - 2 * labels)  # shift < 0: the unlabelled pushed down, the labelled up
    kw = dict(prior=0.2, target_prior=0.5) | ({} if kind in ("naive", "supervised") else dict(beta=beta, gamma=gamma))
    new_s, old_s = scores.clone().requires_grad_(), scores.clone().requires_grad_()
    new = losses.pu_loss(kind, **kw)(new_s, labels)
    old = _old_pu_loss(kind, **kw)(old_s, labels)
    new.backward()
    old.backward()
    assert torch.equal(new, old) and torch.equal(new_s.grad, old_s.grad)
    r = losses.pu_loss(kind, **kw).risk(scores, labels)
    assert torch.equal(r.loss, old.detach())


def test_the_correction_fires_on_the_shifted_batch_and_not_on_the_plain_one():
    fired = [losses.pu_loss("imbalanced_nnpu", prior=0.2).risk(s + shift * (1 - 2 * y), y).fired
             for (s, y), shift in ((_batch(2, scale=4.0), -6.0), (_batch(0), 0.0))]
    assert fired == [True, False]


def test_pu_loss_parts_and_knobs():
    s, y = _batch(4)
    r = losses.pu_loss("imbalanced_nnpu", prior=0.2, target_prior=0.5, surrogate="logistic").risk(s, y)
    ref = losses.nnpu_risk(s, y, 0.2, "logistic", target_prior=0.5)
    assert torch.equal(r.loss, ref.loss) and torch.equal(r.negative_risk, ref.negative_risk)
    plain = losses.nnpu_risk(s, y, 0.2, "logistic")  # the re-weighting of imbalanced nnPU on the parts
    assert r.positive_risk.item() == pytest.approx(0.5 / 0.2 * plain.positive_risk.item(), rel=1e-6)
    assert r.negative_risk.item() == pytest.approx(0.5 / 0.8 * plain.negative_risk.item(), rel=1e-6)
    naive = losses.pu_loss("naive").risk(s, y)
    assert naive.positive_risk is None and naive.negative_risk is None and not naive.fired
    for bad in (dict(surrogate="hinge"), dict(beta=-0.1), dict(gamma=0.0)):
        with pytest.raises(ValueError):
            losses.pu_loss("nnpu", prior=0.2, **bad)


# --- the online loop: batch records, PU-only selection, the teacher's knobs ------------------------

def _setup(val_labels=None, eval_permute=False):
    """A toy PU task: train PU-labelled (half the positives labelled), a PU validation set (or
    `val_labels`), true-label eval loaders (their labels permuted with `eval_permute`)."""
    seqs, y = make_toy_sequences(96, seed=0, vocab=VOCAB)
    rng = np.random.default_rng(0)
    y_pu = np.where((y == 1) & (rng.random(len(y)) < 0.5), 1, 0)
    tr = data.make_loader(data.SeqDataset(seqs, y_pu), 16, seed=0, bucket=2)
    vs, vy = make_toy_sequences(48, seed=5, vocab=VOCAB)
    v_pu = np.where((vy == 1) & (np.arange(len(vy)) % 4 == 1), 1, 0) if val_labels is None else val_labels(vy)
    val = data.make_loader(data.SeqDataset(vs, v_pu), 64, shuffle=False)
    evals = {}
    for name, seed in (("train", 0), ("test", 7)):
        es, ey = make_toy_sequences(32, seed=seed, vocab=VOCAB)
        evals[name] = data.make_loader(data.SeqDataset(es, np.random.default_rng(1).permutation(ey) if eval_permute else ey),
                                       32, shuffle=False)
    teacher = models.build_student("gru", 16, VOCAB, seed=1, emb_dim=8)
    student = models.build_student("cnn", 16, VOCAB, seed=2, emb_dim=8)
    return teacher, student, tr, val, evals


def _run(select_by=None, val_labels=None, eval_permute=False, meta_epochs=3, ckpt_dir=None, teacher_cache=None,
         kind="imbalanced_nnpu", **kw):
    train.seed_everything(0)
    teacher, student, tr, val, evals = _setup(val_labels, eval_permute)
    loss = losses.pu_loss(kind, prior=0.3)
    selection = None if select_by is None else train.PUSelection(val, 0.3, select_by)
    seen = {"teacher": {}, "student": {}}

    def keep(meta, e, t, s):  # the weights after every epoch, to check what was chosen
        seen["student"][meta * 2 + e + 1] = {k: v.clone() for k, v in s.state_dict().items()}
        seen["teacher"][meta + 1] = {k: v.clone() for k, v in t.state_dict().items()}
    steps = [] if select_by is not None else None
    log = train.online_distill(teacher, student, tr, evals, loss, loss, alpha=0.5, label_share=0.5, meta_epochs=meta_epochs,
                               teacher_epochs=1, student_epochs=2, teacher_lr=3e-2, student_lr=3e-2, seed=0,
                               on_student_epoch=keep, selection=selection, steps=steps, ckpt_dir=ckpt_dir,
                               teacher_cache=teacher_cache, **kw)
    return dict(teacher=teacher, student=student, log=log, selection=selection, steps=steps, seen=seen, loader=tr)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


TRUE_METRICS = ("accuracy", "roc_auc", "pr_auc", "f1", "ece")


def test_recording_and_select_by_last_change_nothing():
    plain = _run(None)
    logged = _run("last", teacher_weight_decay=0.0, teacher_schedule="constant", accumulate=1)
    for who in ("teacher", "student"):
        assert _same(plain[who].state_dict(), logged[who].state_dict())
    assert [{k: r[k] for k in TRUE_METRICS} for r in plain["log"]] == [{k: r[k] for k in TRUE_METRICS} for r in logged["log"]]
    assert set(logged["log"][0]) - set(plain["log"][0]) == {"val_pu_risk", "val_lu_auc", "pu_positive_risk",
                                                            "pu_negative_risk", "pu_fired_share", "pu_batches"}
    assert logged["selection"].chosen == {"teacher": {"meta_epoch": 3, "epoch": 3, "value": None},
                                          "student": {"meta_epoch": 3, "epoch": 6, "value": None}}


def _reversed(vy):
    """Validation 'PU labels' that mark true negatives: a criterion that falls as the models learn,
    so the best epoch is not the last (a construction for the test, never a PU set)."""
    return np.where(vy == 0, 1, 0)


@pytest.mark.parametrize("criterion", ["pu_risk", "lu_auc"])
def test_select_by_a_criterion_keeps_each_model_at_its_best_epoch(criterion):
    last = _run("last", val_labels=_reversed)
    run = _run(criterion, val_labels=_reversed)
    sel, best = run["selection"], (min if criterion == "pu_risk" else max)
    for who, n in (("teacher", 3), ("student", 6)):
        hist = [r for r in sel.history if r["model"] == who]
        assert [r["epoch"] for r in hist] == list(range(1, n + 1))  # teacher per meta-epoch, student per epoch
        values = [r[f"val_{criterion}"] for r in hist]
        chosen = sel.chosen[who]
        assert chosen["value"] == best(values) and chosen["epoch"] == values.index(best(values)) + 1
        assert chosen["epoch"] != n  # the construction: last and the criterion differ
        assert _same(run[who].state_dict(), run["seen"][who][chosen["epoch"]])  # the run ends with the chosen weights
        assert not _same(run[who].state_dict(), last[who].state_dict())
    # choosing changes no step of training: the same trajectory, row for row
    assert [{k: r[k] for k in TRUE_METRICS} for r in run["log"]] == [{k: r[k] for k in TRUE_METRICS} for r in last["log"]]
    for r in run["log"]:  # every row carries its model's criteria after that meta-epoch
        epoch = r["meta_epoch"] * (1 if r["model"] == "teacher" else 2)
        assert r[f"val_{criterion}"] == sel.values(r["model"], epoch)[f"val_{criterion}"]


def test_no_true_label_chooses_anything():
    """The eval loaders' true labels permuted: the same choice and the same chosen weights."""
    a, b = _run("lu_auc"), _run("lu_auc", eval_permute=True)
    assert a["selection"].chosen == b["selection"].chosen
    assert a["selection"].history == b["selection"].history
    for who in ("teacher", "student"):
        assert _same(a[who].state_dict(), b[who].state_dict())
    assert [r["roc_auc"] for r in a["log"]] != [r["roc_auc"] for r in b["log"]]  # the permutation did reach the metrics


def test_pu_selection_arguments():
    _, _, _, val, _ = _setup()
    with pytest.raises(ValueError, match="select_by"):
        train.PUSelection(val, 0.3, "roc_auc")
    with pytest.raises(ValueError, match="prior"):
        train.PUSelection(val, None, "pu_risk")
    assert math.isnan(train.PUSelection(val, None, "lu_auc").measure(models.build_student("cnn", 16, VOCAB, seed=0),
                                                                       "cpu", False)["val_pu_risk"])


def test_batch_records_and_their_summary_in_the_log():
    run = _run("last")
    steps, n = run["steps"], len(run["loader"])
    teacher = [s for s in steps if s["model"] == "teacher"]
    assert len(teacher) == 3 * n and {s["epoch"] for s in teacher} == {1, 2, 3}
    assert all(s["fired"] in (True, False) and np.isfinite(s["negative_risk"]) for s in steps)
    for r in run["log"]:
        epochs = range(r["meta_epoch"], r["meta_epoch"] + 1) if r["model"] == "teacher" else \
            range(2 * r["meta_epoch"] - 1, 2 * r["meta_epoch"] + 1)
        mine = [s for s in steps if s["model"] == r["model"] and s["epoch"] in epochs]
        assert r["pu_batches"] == len(mine) > 0
        assert r["pu_fired_share"] == pytest.approx(np.mean([s["fired"] for s in mine]))
        assert r["pu_negative_risk"] == pytest.approx(np.mean([s["negative_risk"] for s in mine]))
    naive = train.step_summary([{"positive_risk": math.nan, "negative_risk": math.nan, "fired": None}])
    assert math.isnan(naive["pu_fired_share"]) and naive["pu_batches"] == 1


def test_selection_and_records_resume_and_come_from_the_teacher_cache(tmp_path):
    ref = _run("pu_risk")
    _run("pu_risk", meta_epochs=1, ckpt_dir=tmp_path / "ck", teacher_cache=tmp_path / "tc")
    again = _run("pu_risk", ckpt_dir=tmp_path / "ck", teacher_cache=tmp_path / "tc")  # resumed after meta-epoch 1
    assert again["selection"].chosen == ref["selection"].chosen and again["steps"] == ref["steps"]
    for who in ("teacher", "student"):
        assert _same(again[who].state_dict(), ref[who].state_dict())
    cached = _run("pu_risk", teacher_cache=tmp_path / "tc")  # every teacher epoch read from the cache
    assert cached["steps"] == ref["steps"] and cached["selection"].history == ref["selection"].history


def test_gradient_accumulation_is_one_step_over_the_batches():
    """accumulate=2 over two equal halves of a batch (mean loss) is one step over the whole batch."""
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8)
    steps = {}
    for acc in (1, 2):
        model = torch.nn.Linear(3, 1)
        torch.nn.init.constant_(model.weight, 0.1)
        opt = torch.optim.AdamW(model.parameters(), lr=0.1)
        parts = [(x, y)] if acc == 1 else [(x[:4], y[:4]), (x[4:], y[4:])]
        for i, (xb, yb) in enumerate(parts):
            train._optimizer_step(model, opt, None, ((model(xb).squeeze(1) - yb) ** 2).mean(), i, len(parts), acc, None)
        steps[acc] = model.weight.detach().clone()
    torch.testing.assert_close(steps[1], steps[2])


def test_the_teacher_knobs_move_only_the_teacher_and_are_checked():
    base, knobbed = _run("last"), _run("last", teacher_weight_decay=0.1, teacher_schedule="linear",
                                        teacher_warmup_frac=0.2, accumulate=2)
    assert not _same(base["teacher"].state_dict(), knobbed["teacher"].state_dict())
    assert len([s for s in knobbed["steps"] if s["model"] == "teacher"]) == 3 * len(base["loader"])  # every batch recorded
    teacher, student, tr, _, evals = _setup()
    for bad in (dict(teacher_schedule="cosine"), dict(teacher_warmup_frac=1.0), dict(accumulate=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            train.online_distill(teacher, student, tr, evals, losses.naive_pu_loss, losses.naive_pu_loss, alpha=0.5,
                                 label_share=0.5, meta_epochs=1, **bad)


# --- the kept teacher and student (save S and T) -------------------------------------------------

def test_kept_models_reload_with_one_call(tmp_path):
    teacher = models.PositionalCNN(VOCAB, seq_len=12)
    student = models.build_student("cnn", 16, VOCAB, seed=3)
    spec = {"teacher": {"kind": "poscnn", "vocab": VOCAB, "seq_len": 12},
            "student": {"arch": "cnn", "hidden": 16, "vocab": VOCAB, "seed": 3}}
    with torch.no_grad():
        for p in list(teacher.parameters()) + list(student.parameters()):
            p.add_(0.01)  # trained weights, not the initial ones a rebuild would give
    key = "run-0123456789ab"
    pu.save_run_models(pu.run_models_dir(key), teacher, student, spec)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"models_key": key}))
    t2, s2 = pu.load_run_models(run_dir)
    assert _same(t2.state_dict(), teacher.state_dict()) and _same(s2.state_dict(), student.state_dict())
    assert not t2.training and not s2.training
    (run_dir / "metrics.json").write_text(json.dumps({"models_key": "other-key"}))
    with pytest.raises(FileNotFoundError, match="rerun"):
        pu.load_run_models(run_dir)


# --- issue 55.3: the methods people compare against, in the online loop --------------------------

@pytest.mark.parametrize("kind", ["upu", "naive_weighted", "vpu"])
def test_the_new_kinds_train_in_the_loop_and_repeat_and_resume_bit_for_bit(kind, tmp_path):
    """Teacher and student train on each new kind; a second run, and one stopped after meta-epoch 1
    and resumed, give the same weights (VPU's MixUp draws from the loop's per-epoch streams). uPU
    logs its parts and never fires; the others log no parts."""
    ref = _run("last", meta_epochs=2, kind=kind)
    _run("last", meta_epochs=1, kind=kind, ckpt_dir=tmp_path / "ck", teacher_cache=tmp_path / "tc")
    again = _run("last", meta_epochs=2, kind=kind, ckpt_dir=tmp_path / "ck", teacher_cache=tmp_path / "tc")
    for who in ("teacher", "student"):
        assert _same(ref[who].state_dict(), again[who].state_dict()), who
    assert all(math.isfinite(r["roc_auc"]) for r in ref["log"])
    parts = [s["negative_risk"] for s in ref["steps"]]
    if kind == "upu":
        assert all(math.isfinite(v) for v in parts) and not any(s["fired"] for s in ref["steps"])
    else:
        assert all(math.isnan(v) for v in parts) and all(s["fired"] is None for s in ref["steps"])
