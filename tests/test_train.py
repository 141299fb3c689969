"""Training loops on a learnable toy task: label = whether token 5 appears in the sequence."""
import random
import time

import numpy as np
import pytest
import torch

from conftest import make_toy_sequences
from kdlib import data, losses, models, train

VOCAB = 20


def _ds(n, seed, ids=None, labels=None):
    seqs, y = make_toy_sequences(n, seed=seed, vocab=VOCAB)
    return data.SeqDataset(seqs, y if labels is None else labels, ids=ids)


def _loaders(n_train=160, batch=16, seed=0):
    train_loader = data.make_loader(_ds(n_train, 0), batch, seed=seed, bucket=2)
    val_loader = data.make_loader(_ds(64, 1), 64, shuffle=False)
    return train_loader, val_loader


def _student(arch="gru", seed=0, **kw):
    return models.build_student(arch, 16, VOCAB, seed=seed, emb_dim=8, **kw)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"parameter {k} differs"


def _strip_time(history):
    """History rows without the wall-clock seconds (everything else must repeat exactly)."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history["epochs"]]


# ------------------------------------------------------------------------------ seed_everything

def test_seed_everything_repeats_all_generators():
    train.seed_everything(11)
    a = (random.random(), np.random.rand(), torch.rand(3))
    train.seed_everything(11)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    train.seed_everything(12)
    assert random.random() != a[0]


def test_seed_everything_makes_two_fits_identical():
    results = []
    for _ in range(2):
        train.seed_everything(0)
        tr, va = _loaders(n_train=64)
        m = _student(dropout=0.3)
        h = train.fit(m, tr, va, train.bce_objective(), epochs=2, lr=1e-2)
        results.append((m, h))
    _assert_same_weights(results[0][0], results[1][0])
    assert [r["train_loss"] for r in results[0][1]["epochs"]] == [r["train_loss"] for r in results[1][1]["epochs"]]


# ------------------------------------------------------------------------------------------ fit

@pytest.mark.parametrize("arch", models.ARCHS)
def test_fit_learns_toy_task_and_keeps_best_epoch(arch, tmp_path):
    train.seed_everything(0)
    tr, va = _loaders()
    m = _student(arch)
    snapshots = {}
    h = train.fit(m, tr, va, train.bce_objective(), epochs=6, lr=1e-2, ckpt_dir=tmp_path / "ck",
                  on_epoch_end=lambda epoch, hist: snapshots.__setitem__(epoch + 1, _state(m)))
    losses_ = [r["train_loss"] for r in h["epochs"]]
    assert len(h["epochs"]) == 6 and sorted(snapshots) == [1, 2, 3, 4, 5, 6]
    assert losses_[-1] < 0.5 * losses_[0]
    aucs = [r["val_roc_auc"] for r in h["epochs"]]
    assert h["best_epoch"] == int(np.argmax(aucs)) + 1  # first epoch reaching the best score
    assert h["best_score"] == max(aucs) and h["select"] == "roc_auc"
    assert h["epochs"][h["best_epoch"] - 1]["val_accuracy"] >= 0.9
    # the model ends with the weights of the best epoch, also saved as best.pt
    for k, v in m.state_dict().items():
        assert torch.equal(v, snapshots[h["best_epoch"]][k])
    best = torch.load(tmp_path / "ck" / "best.pt", weights_only=True)
    for k, v in m.state_dict().items():
        assert torch.equal(v, best[k])
    assert train.evaluate(m, va)["roc_auc"] == pytest.approx(h["best_score"])
    assert (tmp_path / "ck" / "last.pt").exists()


def test_fit_loads_best_not_last_weights():
    # trained on flipped labels, validated on true ones: validation AUC falls every epoch, so the
    # best epoch is the first and the returned weights must be epoch 1's, not the last epoch's
    train.seed_everything(0)
    tr, va = _loaders(n_train=96)
    m = _student()
    snaps = {}
    flipped = lambda logits, batch: torch.nn.functional.binary_cross_entropy_with_logits(logits, 1 - batch["labels"])
    h = train.fit(m, tr, va, flipped, epochs=4, lr=3e-3,
                  on_epoch_end=lambda e, hist: snaps.__setitem__(e + 1, _state(m)))
    aucs = [r["val_roc_auc"] for r in h["epochs"]]
    assert aucs[-1] < aucs[0]
    assert h["best_epoch"] == int(np.argmax(aucs)) + 1 < 4
    for k, v in m.state_dict().items():
        assert torch.equal(v, snaps[h["best_epoch"]][k])
    assert not all(torch.equal(v, snaps[4][k]) for k, v in m.state_dict().items())


def test_fit_validates_arguments():
    tr, va = _loaders(n_train=32)
    with pytest.raises(ValueError, match="epochs"):
        train.fit(_student(), tr, va, train.bce_objective(), epochs=0)
    with pytest.raises(ValueError, match="schedule"):
        train.fit(_student(), tr, va, train.bce_objective(), epochs=1, schedule="cosine")


def test_fit_raises_on_non_finite_loss():
    tr, va = _loaders(n_train=32)
    with pytest.raises(FloatingPointError):
        train.fit(_student(), tr, va, lambda logits, batch: logits.sum() * float("nan"), epochs=1)


def test_fit_linear_schedule_warms_up_and_decays():
    tr, va = _loaders(n_train=64)  # 4 steps per epoch, 8 steps
    lrs = []
    m = _student()
    opt_lr = {}

    def on_step(epoch, step):
        lrs.append(opt_lr["opt"].param_groups[0]["lr"])

    orig = torch.optim.AdamW

    class Spy(orig):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            opt_lr["opt"] = self
    torch.optim.AdamW = Spy
    try:
        train.fit(m, tr, va, train.bce_objective(), epochs=2, lr=1.0, schedule="linear", warmup_frac=0.25,
                  on_step=on_step)
    finally:
        torch.optim.AdamW = orig
    # transformers' schedule, warm = 2 steps: lambda(t) = t / 2 while t < 2, then (8 - t) / 6;
    # lr after step s (scheduler already stepped) = lambda(s + 1)
    expected = [(s + 1) / 2 if s + 1 < 2 else max(0.0, (8 - s - 1) / 6) for s in range(8)]
    np.testing.assert_allclose(lrs, expected)


def test_cosine_restart_rate_hand_values():
    lr, c = 1.0, 4
    rates = [train.cosine_restart_rate(s, lr, c) for s in range(9)]
    half = 0.5 * (1 + np.cos(np.pi / 4))
    np.testing.assert_allclose(rates, [1, half, 0.5, 1 - half, 1, half, 0.5, 1 - half, 1], atol=1e-12)
    warm = [train.cosine_restart_rate(s, lr, c, warmup_steps=2) for s in range(5)]
    np.testing.assert_allclose(warm, [0.5, half, 0.5, 1 - half, 1], atol=1e-12)
    with pytest.raises(ValueError, match="cycle_steps"):
        train.cosine_restart_rate(0, lr, 0)


def _cosine_fit(ckpt_dir, on_step=None):
    tr, va = _loaders()  # 10 steps per epoch
    m = _student(dropout=0.3)
    with train.cosine_restarts(m, 1e-2, cycle_steps=10, warmup_steps=3):
        h = train.fit(m, tr, va, train.bce_objective(), epochs=2, lr=1e-2, schedule="constant",
                      ckpt_dir=ckpt_dir, ckpt_every=3, on_step=on_step)
    return m, h


def test_cosine_restarts_set_each_steps_rate_and_resume_along_the_schedule(tmp_path):
    seen = []
    orig = torch.optim.AdamW.step

    def spy(self, *a, **k):  # the rate each step is taken at (the pre-step hook has run before this)
        out = orig(self, *a, **k)
        seen.append(self.param_groups[0]["lr"])
        return out
    torch.optim.AdamW.step = spy
    try:
        train.seed_everything(0)
        ref, _ = _cosine_fit(tmp_path / "A")
    finally:
        torch.optim.AdamW.step = orig
    np.testing.assert_allclose(seen, [train.cosine_restart_rate(s, 1e-2, 10, 3) for s in range(20)])
    # outside the block the optimizer keeps its own rate
    plain = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))], lr=0.5)
    plain.param_groups[0]["params"][0].grad = torch.ones(2)
    plain.step()
    assert plain.param_groups[0]["lr"] == 0.5

    train.seed_everything(0)

    def stop(epoch, step):
        if epoch == 1 and step == 4:
            raise Interrupt
    with pytest.raises(Interrupt):
        _cosine_fit(tmp_path / "B", on_step=stop)
    train.seed_everything(7)
    resumed, _ = _cosine_fit(tmp_path / "B")
    _assert_same_weights(resumed, ref)


def _run_fit(ckpt_dir, epochs=3, on_step=None, on_epoch_end=None, ckpt_every=3):
    tr, va = _loaders()  # 10 steps per epoch
    m = _student(dropout=0.3)  # dropout: the RNG state must be restored for an exact resume
    h = train.fit(m, tr, va, train.bce_objective(), epochs=epochs, lr=1e-2, schedule="linear",
                  ckpt_dir=ckpt_dir, ckpt_every=ckpt_every, on_step=on_step, on_epoch_end=on_epoch_end)
    return m, h


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def uninterrupted_fit(tmp_path_factory):
    train.seed_everything(0)
    return _run_fit(tmp_path_factory.mktemp("fitA") / "ck")


@pytest.mark.parametrize("stop_step", [4, 6])  # 4: redo steps 3-4 after the step-3 checkpoint; 6: exactly at one
def test_fit_resume_mid_epoch_gives_same_weights(uninterrupted_fit, tmp_path, stop_step):
    ref_model, ref_hist = uninterrupted_fit
    ck = tmp_path / "B"
    train.seed_everything(0)

    def on_step(epoch, step):
        if epoch == 1 and step == stop_step - 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        _run_fit(ck, on_step=on_step)
    saved = torch.load(ck / "last.pt", weights_only=False)
    assert saved["epoch"] == 1 and 0 < saved["step"] < 10  # a mid-epoch checkpoint exists
    assert saved["step"] == (stop_step // 3) * 3
    train.seed_everything(123)  # the resumed run must not depend on the global RNG when it starts
    model, hist = _run_fit(ck)
    _assert_same_weights(model, ref_model)
    assert _strip_time(hist) == _strip_time(ref_hist)
    assert hist["best_epoch"] == ref_hist["best_epoch"]


def test_fit_epoch_seconds_count_the_time_before_an_interruption(tmp_path):
    """A run resumed mid-epoch reports that epoch's full time (both legs), so summed epoch
    seconds are the run's training time however many legs it took."""
    ck = tmp_path / "B"
    train.seed_everything(0)

    def slow_then_stop(epoch, step):
        if epoch == 1:
            time.sleep(0.5)  # steps 0-1 sleep before the step-3 checkpoint: that leg took >= 1 s
            if step == 3:
                raise Interrupt

    with pytest.raises(Interrupt):
        _run_fit(ck, on_step=slow_then_stop)
    assert torch.load(ck / "last.pt", weights_only=False)["step"] == 3
    _, hist = _run_fit(ck)  # the second leg sleeps nowhere: its part of epoch 2 is a few tiny steps
    # the first leg's second counted: only it slept (the second leg's whole run, epochs 2 and 3, took
    # 0.43 s at the worst seen, on a CI machine with two other jobs; a second of it alone would not pass)
    assert hist["epochs"][1]["seconds"] >= 1.0


def test_fit_resume_at_epoch_boundary_gives_same_weights(uninterrupted_fit, tmp_path):
    ref_model, ref_hist = uninterrupted_fit
    ck = tmp_path / "B"
    train.seed_everything(0)

    def on_epoch_end(epoch, history):
        if epoch == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        _run_fit(ck, on_epoch_end=on_epoch_end)
    saved = torch.load(ck / "last.pt", weights_only=False)
    assert saved["epoch"] == 1 and saved["step"] == 0
    train.seed_everything(321)
    model, hist = _run_fit(ck)
    _assert_same_weights(model, ref_model)
    assert _strip_time(hist) == _strip_time(ref_hist)


def test_fit_resume_of_finished_run_does_not_train(tmp_path):
    ck = tmp_path / "C"
    train.seed_everything(0)
    m1, h1 = _run_fit(ck, epochs=2)
    last = torch.load(ck / "last.pt", weights_only=False)
    train.seed_everything(5)
    m2, h2 = _run_fit(ck, epochs=2)  # nothing left to do: the best weights are loaded again
    _assert_same_weights(m1, m2)
    assert h2["epochs"] == h1["epochs"]
    after = torch.load(ck / "last.pt", weights_only=False)
    for k, v in last["model"].items():
        assert torch.equal(v, after["model"][k])  # no training step was taken


# ------------------------------------------------------------------------------- kd_objective

def _batches(ids_perm, seed=0):
    n = len(ids_perm)
    ds = _ds(n, 3, ids=ids_perm)
    return ds, data.make_loader(ds, 8, seed=seed, bucket=1)


def test_kd_objective_alpha0_is_bce():
    ids = np.random.default_rng(0).permutation(np.arange(1000, 1040))
    ds, loader = _batches(ids)
    tl = data.TeacherLogits(ids, np.random.default_rng(1).normal(size=40))
    obj = train.kd_objective(tl, T=2.0, alpha=0.0)
    bce = train.bce_objective()
    g = torch.Generator().manual_seed(0)
    for batch in loader:
        logits = torch.randn(len(batch["ids"]), generator=g)
        assert obj(logits, batch).item() == pytest.approx(
            torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"]).item(), rel=1e-6)
        assert obj(logits, batch).item() == pytest.approx(bce(logits, batch).item(), rel=1e-7)


@pytest.mark.parametrize("alpha,T", [(0.5, 2.0), (1.0, 4.0)])
def test_kd_objective_looks_up_teacher_logits_by_id(alpha, T):
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(500, 540))
    teacher_of = {int(i): float(v) for i, v in zip(ids, rng.normal(size=40) * 3)}
    # stored in a different (shuffled) order from the dataset
    store_order = rng.permutation(ids)
    tl = data.TeacherLogits(store_order, [teacher_of[int(i)] for i in store_order])
    obj = train.kd_objective(tl, T=T, alpha=alpha)
    ds, loader = _batches(ids, seed=1)
    g = torch.Generator().manual_seed(0)
    n_batches, positional_differs = 0, False
    for batch in loader:
        logits = torch.randn(len(batch["ids"]), generator=g)
        t = torch.tensor([teacher_of[int(i)] for i in batch["ids"]], dtype=torch.float32)
        expected = losses.kd_loss(logits, t, batch["labels"], T=T, alpha=alpha)
        assert obj(logits, batch).item() == pytest.approx(expected.item(), rel=1e-6)
        positional = losses.kd_loss(logits, t.flip(0), batch["labels"], T=T, alpha=alpha)
        positional_differs |= abs(positional.item() - expected.item()) > 1e-4
        n_batches += 1
    assert n_batches == 5 and positional_differs


def test_kd_objective_validates_and_missing_id():
    tl = data.TeacherLogits([0, 1], [0.1, 0.2])
    with pytest.raises(ValueError):
        train.kd_objective(tl, T=0.0, alpha=0.5)
    with pytest.raises(ValueError):
        train.kd_objective(tl, T=1.0, alpha=1.5)
    obj = train.kd_objective(tl, T=1.0, alpha=0.5)
    with pytest.raises(KeyError):
        obj(torch.zeros(2), {"ids": torch.tensor([0, 7]), "labels": torch.zeros(2)})


def test_fit_with_kd_objective_learns_from_teacher_only():
    # alpha = 1: only the teacher's logits (a perfect teacher: +-4 from the true label) teach
    train.seed_everything(0)
    ds = _ds(160, 0)
    tl = data.TeacherLogits(ds.ids, np.where(ds.labels == 1, 4.0, -4.0))
    masked = data.SeqDataset(ds.token_ids, np.zeros_like(ds.labels), ids=ds.ids)  # the labels are useless
    tr = data.make_loader(masked, 16, seed=0, bucket=2)
    va = data.make_loader(_ds(64, 1), 64, shuffle=False)
    h = train.fit(_student(), tr, va, train.kd_objective(tl, T=2.0, alpha=1.0), epochs=6, lr=1e-2)
    assert max(r["val_accuracy"] for r in h["epochs"]) >= 0.9


# ------------------------------------------------------------------------------------- predict

def test_predict_sorted_by_id_and_matches_single_examples():
    rng = np.random.default_rng(0)
    ids = rng.permutation(np.arange(200, 230))
    ds = _ds(30, 5, ids=ids)
    loader = data.make_loader(ds, 7, seed=0)
    m = _student(dropout=0.5)
    m.train()
    out = train.predict(m, loader)
    assert m.training  # the mode is restored
    np.testing.assert_array_equal(out["ids"], np.sort(ids))
    m.eval()
    for k in (0, 11, 29):
        j = int(np.flatnonzero(ds.ids == out["ids"][k])[0])
        toks = torch.as_tensor(ds.token_ids[j], dtype=torch.long)[None]
        with torch.no_grad():
            single = m(toks, torch.ones_like(toks)).item()
        assert out["logits"][k] == pytest.approx(single, abs=1e-5)
        assert out["labels"][k] == ds.labels[j]
    assert set(train.evaluate(m, loader)) >= {"accuracy", "roc_auc", "ece"}


# ------------------------------------------------------------------------------ online_distill

def _pu_labels(labels, seed=0, keep=0.5):
    """PU: a random half of the positives stay labelled (1); everything else is unlabelled (0)."""
    rng = np.random.default_rng(seed)
    return np.where((labels == 1) & (rng.random(len(labels)) < keep), 1, 0)


def _online_setup(n_train=96, pu=False, student_arch="gru"):
    seqs, y = make_toy_sequences(n_train, seed=0, vocab=VOCAB)
    y_train = _pu_labels(y) if pu else y
    tr = data.make_loader(data.SeqDataset(seqs, y_train), 16, seed=0, bucket=2)
    evals = {"val": data.make_loader(_ds(32, 1), 32, shuffle=False),
             "test": data.make_loader(_ds(32, 2), 32, shuffle=False)}
    teacher = models.build_student("gru", 16, VOCAB, seed=1, emb_dim=8)
    student = models.build_student(student_arch, 16, VOCAB, seed=2, emb_dim=8)
    return teacher, student, tr, evals


@pytest.mark.parametrize("student_arch", models.ARCHS)
def test_online_distill_logs_both_models_per_split_and_meta_epoch(student_arch):
    train.seed_everything(0)
    teacher, student, tr, evals = _online_setup(student_arch=student_arch)
    t0, s0 = _state(teacher), _state(student)
    log = train.online_distill(teacher, student, tr, evals, losses.naive_pu_loss, losses.naive_pu_loss, alpha=0.5, label_share=0.5, T=2.0, meta_epochs=2, teacher_lr=1e-2, student_lr=1e-2)
    assert len(log) == 8
    for split in ("val", "test"):
        rows = [r for r in log if r["split"] == split]
        assert len(rows) == 4
        assert sorted((r["meta_epoch"], r["model"]) for r in rows) == [
            (1, "student"), (1, "teacher"), (2, "student"), (2, "teacher")]
        assert all(r["n"] == 32 and 0 <= r["accuracy"] <= 1 for r in rows)
    # both models trained
    assert any(not torch.equal(v, t0[k]) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(v, s0[k]) for k, v in student.state_dict().items())


def _count_calls(model):
    calls = {"n": 0}
    model.register_forward_hook(lambda mod, inp, out: calls.__setitem__("n", calls["n"] + 1))
    return calls


@pytest.mark.parametrize("alpha,beta", [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)])
def test_online_distill_alpha_beta_extremes(alpha, beta):
    train.seed_everything(0)
    teacher, student, tr, evals = _online_setup()
    calls = _count_calls(teacher)
    student_calls = {"n": 0}

    def student_loss(s, y):
        student_calls["n"] += 1
        return losses.naive_pu_loss(s, y)

    s0 = _state(student)
    log = train.online_distill(teacher, student, tr, evals, losses.naive_pu_loss, student_loss,
                               alpha=alpha, label_share=beta, T=2.0, meta_epochs=2, teacher_lr=1e-2, student_lr=1e-2)
    assert len(log) == 8
    assert any(not torch.equal(v, s0[k]) for k, v in student.state_dict().items())
    n_train_batches, n_eval_batches = len(tr), sum(len(l) for l in evals.values())
    baseline = 2 * (n_train_batches + n_eval_batches)  # teacher training + evaluation, 2 meta-epochs
    if alpha == 0.0:
        assert calls["n"] == baseline  # never queried while the student trains
        assert student_calls["n"] == 2 * n_train_batches  # beta = 1: every batch all true labels
    elif alpha == 1.0:
        assert calls["n"] == baseline + 2 * n_train_batches  # beta = 0: every batch all teacher
        assert student_calls["n"] == 0
    else:
        assert calls["n"] > baseline and 0 < student_calls["n"] <= 2 * n_train_batches


def test_online_distill_with_pu_losses():
    train.seed_everything(0)
    teacher, student, tr, evals = _online_setup(pu=True)
    pu = losses.pu_loss("nnpu", prior=0.5)
    log = train.online_distill(teacher, student, tr, evals, pu, pu, alpha=0.5, label_share=0.5, T=1.0,
                               meta_epochs=2, teacher_lr=1e-2, student_lr=1e-2)
    assert len(log) == 8
    assert all(np.isfinite(r["roc_auc"]) for r in log)
    imb = losses.pu_loss("imbalanced_nnpu", prior=0.5, target_prior=0.5)
    log2 = train.online_distill(teacher, student, tr, evals, imb, imb, alpha=0.3, label_share=0.7, meta_epochs=1)
    assert len(log2) == 4


@pytest.mark.parametrize("beta", [-0.1, 1.1])
def test_online_distill_rejects_bad_beta(beta):
    teacher, student, tr, evals = _online_setup(n_train=16)
    with pytest.raises(ValueError, match="label_share"):
        train.online_distill(teacher, student, tr, evals, losses.naive_pu_loss, losses.naive_pu_loss,
                             alpha=0.5, label_share=beta, meta_epochs=1)


def test_online_distill_rejects_bad_alpha_T_and_epochs():
    teacher, student, tr, evals = _online_setup(n_train=16)
    args = (teacher, student, tr, evals, losses.naive_pu_loss, losses.naive_pu_loss)
    with pytest.raises(ValueError):
        train.online_distill(*args, alpha=1.5, label_share=0.5)
    with pytest.raises(ValueError):
        train.online_distill(*args, alpha=0.5, label_share=0.5, T=0)
    with pytest.raises(ValueError, match="meta_epochs"):
        train.online_distill(*args, alpha=0.5, label_share=0.5, meta_epochs=0)


def _online_run(meta_epochs, ckpt_dir=None):
    teacher, student, tr, evals = _online_setup()
    teacher.dropout.p = student.dropout.p = 0.3
    log = train.online_distill(teacher, student, tr, evals, losses.naive_pu_loss, losses.naive_pu_loss,
                               alpha=0.5, label_share=0.5, T=2.0, meta_epochs=meta_epochs, seed=3,
                               teacher_lr=1e-2, student_lr=1e-2, ckpt_dir=ckpt_dir)
    return teacher, student, log


def test_online_distill_resume_gives_same_weights_and_log(tmp_path):
    train.seed_everything(0)
    ref_teacher, ref_student, ref_log = _online_run(2)
    train.seed_everything(0)
    _, _, log1 = _online_run(1, ckpt_dir=tmp_path / "B")
    assert len(log1) == 4 and (tmp_path / "B" / "online_last.pt").exists()
    train.seed_everything(999)  # the resumed run restores the RNG state itself
    teacher, student, log = _online_run(2, ckpt_dir=tmp_path / "B")
    _assert_same_weights(teacher, ref_teacher)
    _assert_same_weights(student, ref_student)
    assert log == ref_log
    assert log[:4] == log1


def test_online_distill_finished_run_is_not_recomputed(tmp_path):
    train.seed_everything(0)
    t1, s1, log1 = _online_run(1, ckpt_dir=tmp_path / "C")
    teacher, student, log = _online_run(1, ckpt_dir=tmp_path / "C")
    assert log == log1
    _assert_same_weights(teacher, t1)
    _assert_same_weights(student, s1)


def test_bf16_autocast_trains_and_predicts_on_cpu(tmp_path):
    """The teachers' `amp` (bf16 autocast), which the smoke runs turn off (emulated, ~10x slower on a CPU
    without AVX-512 BF16): fit and predict run under it, and the predictions differ from fp32 ones only
    by bf16 rounding."""
    train.seed_everything(0)
    tr, va = _loaders()
    m = _student("cnn")
    h = train.fit(m, tr, va, train.bce_objective(), epochs=1, lr=1e-2, ckpt_dir=tmp_path / "ck", amp=True)
    assert np.isfinite(h["epochs"][0]["train_loss"])
    with_amp, without = train.predict(m, va, amp=True), train.predict(m, va, amp=False)
    assert np.array_equal(with_amp["ids"], without["ids"])
    assert not np.array_equal(with_amp["logits"], without["logits"])  # autocast did run in bf16
    np.testing.assert_allclose(with_amp["logits"], without["logits"], atol=0.1)
