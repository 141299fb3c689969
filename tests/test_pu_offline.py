"""Issue 55, point 6: offline students taught by an intermediate teacher of the shared trajectory
(`train.online_distill(..., teacher_candidates=...)`, online_pu.py's `offline_teacher`). The teacher
after epoch k of an offline run is the online trajectory's teacher after that epoch; offline_teacher=m
distils from the one after meta-epoch m, frozen; "selected" from the meta-epoch its PU criterion
rates best, measured as online mode measures it. The default offline run is compared bit for bit with
the code every committed offline run was made with (copied below from commit eb43212).
notebooks/smoke/online_pu-offline.yaml runs the notebook with offline_teacher="selected"; its last
cell checks the kept teacher against the cached epoch."""
import math

import numpy as np
import pytest
import torch
from conftest import make_toy_sequences

from kdlib import data, losses, models, train

VOCAB, M, TE, SE = 20, 3, 2, 1  # the offline schedule: one meta-epoch of M*TE teacher and M*SE student epochs
LR, ALPHA, SHARE, T, SEED = 3e-2, 0.5, 0.5, 1.0, 0


def _setup(val_labels=None):
    """A toy PU task batched as online_pu.py batches it (labelled positives in every batch), a PU
    validation set (or `val_labels`), true-label eval loaders; a GRU teacher with dropout (so its
    epochs draw from their RNG streams) and a CNN student."""
    seqs, y = make_toy_sequences(96, seed=0, vocab=VOCAB)
    y_pu = np.where((y == 1) & (np.random.default_rng(0).random(len(y)) < 0.5), 1, 0)
    tr = data.make_loader(data.SeqDataset(seqs, y_pu), 16, seed=SEED,
                          batch_sampler=data.PUBatchSampler(y_pu, 16, 3, seed=SEED))
    vs, vy = make_toy_sequences(48, seed=5, vocab=VOCAB)
    v_pu = np.where((vy == 1) & (np.arange(len(vy)) % 4 == 1), 1, 0) if val_labels is None else val_labels(vy)
    val = data.make_loader(data.SeqDataset(vs, v_pu), 64, shuffle=False)
    es, ey = make_toy_sequences(32, seed=7, vocab=VOCAB)
    evals = {"test": data.make_loader(data.SeqDataset(es, ey), 32, shuffle=False)}
    teacher = models.build_student("gru", 16, VOCAB, seed=1, emb_dim=8, dropout=0.3)
    student = models.build_student("cnn", 16, VOCAB, seed=2, emb_dim=8)
    return teacher, student, tr, val, evals


def _reversed(vy):
    """Validation 'PU labels' that mark true negatives: a criterion that falls as the teacher learns,
    so the best meta-epoch is not the last (a construction for the test, never a PU set)."""
    return np.where(vy == 0, 1, 0)


def _run(distill=None, select_by="last", val_labels=None, online=False, **kw):
    """One run of `distill` (train.online_distill by default): offline (1 meta-epoch of M*TE teacher
    and M*SE student epochs) or `online` (M meta-epochs); the teacher after each of its meta-epochs
    kept (online)."""
    train.seed_everything(0)
    teacher, student, tr, val, evals = _setup(val_labels)
    loss = losses.pu_loss("imbalanced_nnpu", prior=0.3)
    selection = train.PUSelection(val, 0.3, select_by)
    after = {}
    schedule = dict(meta_epochs=M, teacher_epochs=TE, student_epochs=SE) if online else \
        dict(meta_epochs=1, teacher_epochs=M * TE, student_epochs=M * SE)
    steps = []
    log = (distill or train.online_distill)(
        teacher, student, tr, evals, loss, loss, alpha=ALPHA, label_share=SHARE, T=T, teacher_lr=LR, student_lr=LR,
        seed=SEED, selection=selection, steps=steps, **schedule, **kw,
        on_student_epoch=lambda meta, e, t, s: after.setdefault(meta + 1, _copy(t)))
    return dict(teacher=teacher, student=student, log=log, selection=selection, steps=steps, after=after,
                loader=tr, loss=loss, evals=evals)


def _copy(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    a, b = (x.state_dict() if hasattr(x, "state_dict") else x for x in (a, b))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _cached(cache, k):
    return torch.load(cache / f"teacher_epoch{k}.pt", map_location="cpu", weights_only=False)["teacher"]


def _student_by_hand(teacher_weights, run):
    """The student trained alone from a frozen teacher with `teacher_weights`: the offline student's
    M*SE epochs (meta-epoch 0, its RNG streams and batches), with nothing of online_distill."""
    teacher, student, *_ = _setup()
    teacher.load_state_dict(teacher_weights)
    opt_s = torch.optim.AdamW(student.parameters(), lr=LR, weight_decay=0.0)
    for e in range(M * SE):
        train._student_epoch(student, teacher, opt_s, run["loader"], run["loss"], ALPHA, SHARE, T, SEED, 0, e,
                             torch.device("cpu"), False, 1.0)
    return student


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_offline_teacher_m_is_the_trajectory_s_teacher_after_meta_epoch_m(schedule, tmp_path):
    """offline_teacher=2: the teacher after epoch 2*TE, on the schedule of all M*TE epochs (linear:
    the warm-up and decay of the whole trajectory), equal to the online teacher after meta-epoch 2 and
    to the cached epoch; later epochs are not trained; the student is the one trained by hand from it."""
    cache = tmp_path / "tc"
    run = _run(teacher_candidates=(2 * TE,), teacher_cache=cache, teacher_schedule=schedule)
    online = _run(online=True, teacher_schedule=schedule)
    assert _same(run["teacher"], online["after"][2]) and _same(run["teacher"], _cached(cache, 2 * TE))
    assert not (cache / f"teacher_epoch{2 * TE + 1}.pt").exists()
    assert _same(run["student"], _student_by_hand(_cached(cache, 2 * TE), run))
    assert run["selection"].chosen["teacher"] == {"meta_epoch": 1, "epoch": 2 * TE, "value": None}
    last = _run(teacher_schedule=schedule)  # the default: the final teacher, another student
    assert _same(last["teacher"], online["after"][M]) and not _same(last["student"], run["student"])
    assert _same(last["student"], _student_by_hand(_copy(last["teacher"]), last))
    teacher_rows = [r for r in run["log"] if r["model"] == "teacher"]  # the log's teacher is the one taught with
    assert teacher_rows[0]["roc_auc"] == train.evaluate(run["teacher"], run["evals"]["test"])["roc_auc"]
    assert teacher_rows[0]["pu_batches"] == 2 * TE * len(run["loader"])


# --- the default offline run as committed runs computed it (kdlib/train.py at eb43212) ------------

def _old_online_distill(teacher, student, train_loader, eval_loaders, teacher_loss, student_loss, alpha, label_share,
                        T=1.0, meta_epochs=5, teacher_epochs=1, student_epochs=1, teacher_lr=1e-3, student_lr=1e-3,
                        weight_decay=0.0, seed=0, device=None, amp=False, grad_clip=1.0, teacher_cache=None,
                        on_student_epoch=None, teacher_weight_decay=None, teacher_schedule="constant",
                        teacher_warmup_frac=0.1, accumulate=1, selection=None, steps=None):
    """eb43212's online_distill without its checkpoint and progress print (offline runs have none;
    neither changes a number); its helpers are unchanged since."""
    device = torch.device(device) if device else next(student.parameters()).device
    teacher.to(device)
    student.to(device)
    opt_t = torch.optim.AdamW(teacher.parameters(), lr=teacher_lr,
                              weight_decay=weight_decay if teacher_weight_decay is None else teacher_weight_decay)
    opt_s = torch.optim.AdamW(student.parameters(), lr=student_lr, weight_decay=weight_decay)
    sched_t = None if teacher_schedule == "constant" else train._scheduler(
        opt_t, teacher_schedule, meta_epochs * teacher_epochs * math.ceil(len(train_loader) / accumulate),
        teacher_warmup_frac)
    log = []
    for meta in range(meta_epochs):
        train._teacher_turn(teacher, opt_t, sched_t, train_loader, teacher_loss, meta, teacher_epochs, seed, device,
                            amp, grad_clip, teacher_cache, accumulate, steps)
        k = (meta + 1) * teacher_epochs
        if selection is not None:
            selection.offer("teacher", teacher, train._teacher_metrics(
                teacher, f"pu_val-prior{selection.prior!r}", selection.loader, k, teacher_cache, device, amp,
                measure=lambda: selection.measure(teacher, device, amp)), meta + 1, k)
        for e in range(student_epochs):
            train._student_epoch(student, teacher, opt_s, train_loader, student_loss, alpha, label_share, T, seed,
                                 meta, e, device, amp, grad_clip, steps, meta * student_epochs + e + 1)
            if selection is not None:
                selection.offer("student", student, selection.measure(student, device, amp), meta + 1,
                                meta * student_epochs + e + 1)
            if on_student_epoch:
                on_student_epoch(meta, e, teacher, student)
        columns = {"teacher": train.pu_log_columns("teacher", range(k - teacher_epochs + 1, k + 1), steps, selection),
                   "student": train.pu_log_columns("student", range(meta * student_epochs + 1,
                                                                    (meta + 1) * student_epochs + 1), steps, selection)}
        for name, loader in eval_loaders.items():
            log.append({"meta_epoch": meta + 1, "model": "teacher", "split": name,
                        **train._teacher_metrics(teacher, name, loader, k, teacher_cache, device, amp),
                        **columns["teacher"]})
            log.append({"meta_epoch": meta + 1, "model": "student", "split": name,
                        **train.evaluate(student, loader, device, amp, desc=f"eval student {name}"), **columns["student"]})
    if selection is not None:
        selection.load_chosen(("teacher", teacher), ("student", student))
    return log


def _nan_equal(a, b):
    return a.keys() == b.keys() and all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k]))
                                        for k in a)


@pytest.mark.parametrize("select_by,schedule", [("last", "constant"), ("lu_auc", "linear")])
def test_the_default_offline_run_is_the_committed_code_bit_for_bit(select_by, schedule, tmp_path):
    """Default, and with the last epoch as the only candidate (offline_teacher=M): the same teacher,
    student, log, batch records and choices as eb43212's code, on a cold teacher cache and a warm one."""
    old = _run(_old_online_distill, select_by, teacher_cache=tmp_path / "old", teacher_schedule=schedule)
    for cache, candidates in (("new", None), ("new", None), ("last", (M * TE,))):
        new = _run(None, select_by, teacher_cache=tmp_path / cache, teacher_schedule=schedule,
                   **({} if candidates is None else {"teacher_candidates": candidates}))
        assert _same(new["teacher"], old["teacher"]) and _same(new["student"], old["student"])
        assert len(new["log"]) == len(old["log"]) and all(_nan_equal(a, b) for a, b in zip(new["log"], old["log"]))
        assert new["steps"] == old["steps"]
        assert new["selection"].history == old["selection"].history and new["selection"].chosen == old["selection"].chosen


@pytest.mark.parametrize("criterion", ["pu_risk", "lu_auc"])
def test_selected_is_the_meta_epoch_whose_teacher_the_criterion_rates_best(criterion, tmp_path):
    """The teacher measured at every meta-epoch's end with the values an online run measures; the
    best (not the last, by construction) teaches the student, which is then the student of that
    meta-epoch's offline_teacher=m run."""
    cache = tmp_path / "tc"
    run = _run(None, criterion, _reversed, teacher_candidates=tuple(m * TE for m in range(1, M + 1)),
               teacher_cache=cache)
    online = _run(None, criterion, _reversed, online=True)
    hist = [r for r in run["selection"].history if r["model"] == "teacher"]
    assert [r["epoch"] for r in hist] == [m * TE for m in range(1, M + 1)]
    assert [r[f"val_{criterion}"] for r in hist] == [r[f"val_{criterion}"] for r in online["selection"].history
                                                     if r["model"] == "teacher"]
    values = [r[f"val_{criterion}"] for r in hist]
    best = (min if criterion == "pu_risk" else max)(values)
    chosen = run["selection"].chosen["teacher"]
    assert chosen["value"] == best and chosen["epoch"] == (values.index(best) + 1) * TE != M * TE
    assert _same(run["teacher"], _cached(cache, chosen["epoch"]))
    given = _run(None, criterion, _reversed, teacher_candidates=(chosen["epoch"],), teacher_cache=tmp_path / "given")
    assert _same(run["student"], given["student"])
    assert [r["roc_auc"] for r in run["log"]] == [r["roc_auc"] for r in given["log"]]


def test_teacher_candidates_are_checked():
    teacher, student, tr, val, evals = _setup()
    loss = losses.pu_loss("imbalanced_nnpu", prior=0.3)
    args = (teacher, student, tr, evals, loss, loss)
    kw = dict(alpha=0.5, label_share=0.5, teacher_epochs=4, student_epochs=1)
    last, lu_auc = train.PUSelection(val, 0.3, "last"), train.PUSelection(val, 0.3, "lu_auc")
    for bad, more in (((2,), dict(meta_epochs=2)),  # online: the student learns from every meta-epoch's teacher
                      ((5,), {}), ((0,), {}), ((), {}), ((4, 2), {}), ((2, 2), {}),
                      ((2, 4), dict(selection=lu_auc)),  # several, no cache
                      ((2, 4), dict(selection=last, teacher_cache="unused"))):  # several, no criterion
        with pytest.raises(ValueError, match="teacher_candidates"):
            train.online_distill(*args, **{"meta_epochs": 1, **kw, **more}, teacher_candidates=bad)
