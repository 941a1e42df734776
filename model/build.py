"""The build pipeline: events + labels -> a verified model bundle with its metrics.

Stages, each a function below and run in this order by ``run_build``: load the corpus
(windows and targets by a day split), pretrain the teacher (masked event type), fine-tune
it on all kinds, distil the student, score the splits, gate each kind against the
streaming rules, calibrate (Platt scaling and thresholds on the validation days), export
(ONNX with a parity check and INT8 quantisation), evaluate on the test days against
LightGBM and the rules, and write the bundle. The random generators are drawn from in
that order, so a seed gives the same bundle.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from model.bundle import Bundle, write_bundle
from model.calibrate import Platt, choose_threshold, fit_platt, raise_for_alerts
from model.churn_select import ChurnBaselines, choose_churn, churn_table
from model.config import BuildConfig
from model.dataset import Corpus, Examples, build_corpus, encode
from model.evaluate import Rules, evaluate_kinds, measure_speed, rules_on
from model.features import KINDS, FeatureSpec
from model.selection import (
    TRAINED,
    against_rules,
    distilled_kinds,
    kind_sources,
    rules_keep,
    train_sample,
)
from stream.core.timeutil import HOUR_MS

if TYPE_CHECKING:
    from torch import nn

    from model.nets import ArchConfig

Log = Callable[[str], None]
Windows = tuple[npt.NDArray[np.int16], npt.NDArray[np.float32], npt.NDArray[np.bool_]]
Logits = dict[tuple[str, str], npt.NDArray[np.float32]]  # (net, split) -> logits
BUNDLE_FILES = ("student.onnx", "student.int8.onnx", "student.safetensors", "teacher.safetensors")


def _stderr(msg: str) -> None:
    print(f"[build] {msg}", file=sys.stderr, flush=True)


@dataclass
class Data:
    """The corpus, its scoring points split by day and sampled, and their windows."""

    corpus: Corpus
    spec: FeatureSpec
    why: dict[str, str]  # per kind: TRAINED, or why the rules keep it
    trained: npt.NDArray[np.bool_]  # per kind in KINDS: trained on labels
    train: Examples
    val: Examples
    test: Examples
    d_train: Windows
    d_val: Windows
    d_test: Windows

    @property
    def kinds(self) -> list[str]:
        """The kinds trained on labels (fixed before the rules gate)."""
        return [k for k, t in zip(KINDS, self.trained, strict=True) if t]


@dataclass
class Nets:
    teacher: nn.Module
    student: nn.Module
    t_arch: ArchConfig
    s_arch: ArchConfig
    mlm_loss: float | None  # None: the teacher came from a champion bundle
    distillation: dict[str, Any]


def run_build(
    events: Path,
    labels: Path,
    out: Path,
    cfg: BuildConfig,
    *,
    progress: bool = True,
    log: Log = _stderr,
    init: Bundle | None = None,
    false_fraud: frozenset[str] | None = None,
) -> tuple[Bundle, dict[str, Any]]:
    """With ``init`` (a champion bundle built with the same recipe), the teacher starts from
    its weights instead of a new pretraining: a retrain fine-tunes what the champion knew
    on the recent history, older days included, so old patterns are replayed.

    With ``false_fraud`` (the event ids analysts judged false positives) the labels are
    partial: a decision without a label is unknown rather than honest, and the fraud
    threshold is placed on the judged validation alerts only (``calibrate.raise_for_alerts``)."""
    import torch

    started = time.monotonic()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = load_corpus(events, labels, cfg, rng, log)
    nets = train_nets(data, cfg, rng, progress, log, init)
    logits = score_splits(nets, data)
    rules = rules_on(data.corpus, data.corpus.split.train_end, log, cfg)
    validation = gate_against_rules(data, logits["student", "val"], rules, cfg, log)
    churn = choose_churn_detector(data, logits, rules, cfg, log)
    judged = None if false_fraud is None else judged_fraud(data.corpus, data.val, false_fraud)
    calibration, thresholds = calibrate(data.val, logits["student", "val"], data.kinds, cfg, judged)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        parity_diff, test_int8, val_int8 = export_nets(nets, data, cfg, tmp, log)
        metrics = evaluate(data, nets, logits, test_int8, calibration, rules, cfg, log)
        # The INT8 graph's probabilities differ from the float graph's by up to ~0.1: its
        # own Platt scaling and thresholds, fitted the same way on its validation logits.
        int8 = calibrate(data.val, val_int8, data.kinds, cfg, judged) if len(val_int8) else None
        if churn is not None:
            base, _, record = churn
            metrics["churn_selection"] = record
            metrics["churn_by_history"] = churn_table(
                base, data.test, data.d_test, logits["student", "test"]
            )
        metrics["model"]["onnx_parity_max_abs_diff"] = parity_diff
        metrics["data"] = _data_metrics(data)
        metrics["validation_against_rules"] = validation
        metrics["build_seconds"] = time.monotonic() - started
        manifest = _manifest(cfg, data, nets, calibration, thresholds, metrics, churn)
        if int8 is not None:
            manifest["student"]["onnx_int8_calibration"] = {
                "calibration": {k: c.to_json() for k, c in int8[0].items()},
                "thresholds": int8[1],
            }
        manifest["drift_reference"] = drift_reference(data, logits["student", "val"], calibration)
        bundle = write_bundle(out, {n: tmp / n for n in BUNDLE_FILES}, manifest)
    log(f"bundle {bundle.version} written to {out} in {metrics['build_seconds']:.0f}s")
    return bundle, metrics


def load_corpus(
    events: Path, labels: Path, cfg: BuildConfig, rng: np.random.Generator, log: Log
) -> Data:
    """Scoring points by a day split, the trainable kinds, and the encoded windows."""
    spec = FeatureSpec()
    corpus = build_corpus(
        events,
        labels,
        spec,
        horizon_days=cfg.churn_horizon_days,
        interval_ms=int(cfg.churn_interval_hours * HOUR_MS),
        val_frac=cfg.val_frac,
        test_frac=cfg.test_frac,
    )
    ex = corpus.examples
    parts = [np.flatnonzero(ex.part == p).astype(np.int64) for p in range(3)]
    why = kind_sources(corpus, parts)
    trained = np.array([why[k] == TRAINED for k in KINDS])
    if not trained.any():
        raise ValueError(f"no kind can be trained: {why}")
    log(f"{len(ex)} scoring points from {len(corpus.user_ids)} users; kinds: {why}")
    log(
        f"churn horizon {cfg.churn_horizon_days:g} days, churn clock every "
        f"{cfg.churn_interval_hours:g} hours (the bundle records both)"
    )
    train_idx = train_sample(ex.y[parts[0]], cfg.max_train, rng)
    train = ex.subset(parts[0][train_idx])
    val, test = ex.subset(parts[1]), ex.subset(parts[2])
    d_train, d_val, d_test = (encode(corpus, s, spec, cfg.T) for s in (train, val, test))
    log(f"windows: train {len(train)} (sampled), val {len(val)}, test {len(test)}")
    return Data(corpus, spec, why, trained, train, val, test, d_train, d_val, d_test)


def train_nets(
    data: Data,
    cfg: BuildConfig,
    rng: np.random.Generator,
    progress: bool,
    log: Log,
    init: Bundle | None = None,
) -> Nets:
    """The teacher, pretrained (or the champion's, with ``init``) and fine-tuned, and the
    student distilled from it."""
    from model.nets import ArchConfig

    t_arch = ArchConfig.for_spec(data.spec, "bert", *cfg.teacher)
    s_arch = ArchConfig.for_spec(data.spec, "student", *cfg.student)
    if init is not None:
        teacher, mlm_loss = warm_teacher(init, t_arch, log), None
    else:
        teacher, mlm_loss = pretrain_teacher(data, t_arch, cfg, rng, progress)
    fine_tune_teacher(teacher, data, cfg, progress)
    student, distillation = distil_student(teacher, data, s_arch, cfg, progress, log)
    return Nets(teacher, student, t_arch, s_arch, mlm_loss, distillation)


def pretrain_teacher(
    data: Data, arch: ArchConfig, cfg: BuildConfig, rng: np.random.Generator, progress: bool
) -> tuple[nn.Module, float]:
    """A new teacher pretrained on masked event types; returns it and its last loss."""
    from model.nets import TeacherNet, build_net
    from model.train import FitConfig, pretrain_masked

    teacher = build_net(arch)
    assert isinstance(teacher, TeacherNet)
    n = len(data.train)
    pre = rng.choice(n, min(n, cfg.max_pretrain), replace=False)
    d_pre = tuple(a[pre] for a in data.d_train)
    fc = FitConfig(cfg.pretrain_epochs, cfg.teacher_lr, cfg.batch, seed=cfg.seed)
    loss = pretrain_masked(teacher, d_pre, fc, progress=progress)  # type: ignore[arg-type]
    return teacher, loss


def warm_teacher(init: Bundle, arch: ArchConfig, log: Log) -> nn.Module:
    """The champion's teacher, to be fine-tuned further; its architecture must match."""
    from model.nets import ArchConfig, load_weights

    stored = init.manifest["teacher"]
    if ArchConfig.from_json(stored["arch"]) != arch:
        raise ValueError(
            f"model bundle {init.path}: its teacher was built with another recipe "
            f"({stored['arch']}); retrain with that recipe"
        )
    log(f"teacher from bundle {init.version}")
    return load_weights(stored["arch"], init.file(stored["weights"])).train()


def fine_tune_teacher(teacher: nn.Module, data: Data, cfg: BuildConfig, progress: bool) -> None:
    """Multi-task training of the teacher on the labels of every trained kind."""
    from model.train import FitConfig, fit

    fc = FitConfig(cfg.teacher_epochs, cfg.teacher_lr, cfg.batch, seed=cfg.seed)
    fit(teacher, data.d_train, data.train.y, data.trained, fc, desc="teacher", progress=progress)


def distil_student(
    teacher: nn.Module,
    data: Data,
    arch: ArchConfig,
    cfg: BuildConfig,
    progress: bool,
    log: Log,
) -> tuple[nn.Module, dict[str, Any]]:
    """The student, and per kind whether the teacher was distilled into it.

    The teacher is distilled only for kinds where it ranks the validation days at least
    as well as the same student trained on labels alone: a weaker teacher would pull the
    student down (as the BERT teacher does on churn)."""
    from model.train import predict_logits

    soft = predict_logits(teacher, data.d_train, desc="teacher soft", progress=progress)
    probe = _fit_student(data, arch, cfg, progress, "student (labels only)")
    teacher_val, probe_val = predict_logits(teacher, data.d_val), predict_logits(probe, data.d_val)
    distill, record = distilled_kinds(data.val.y, data.trained, teacher_val, probe_val)
    log(f"distilled kinds: {[k for k, d in zip(KINDS, distill, strict=True) if d]}")
    if not distill.any():
        return probe, record
    return _fit_student(data, arch, cfg, progress, "student", soft, distill), record


def _fit_student(
    data: Data,
    arch: ArchConfig,
    cfg: BuildConfig,
    progress: bool,
    desc: str,
    soft: npt.NDArray[np.float32] | None = None,
    distill: npt.NDArray[np.bool_] | None = None,
) -> nn.Module:
    """A new student trained on the labels and, for the kinds in ``distill``, on the
    teacher's ``soft`` logits."""
    from model.nets import build_net
    from model.train import FitConfig, fit

    student = build_net(arch)
    fc = FitConfig(cfg.student_epochs, cfg.student_lr, cfg.batch, seed=cfg.seed)
    fit(student, data.d_train, data.train.y, data.trained, fc, soft=soft,
        alpha=cfg.distill_alpha, temp=cfg.distill_temp, distill=distill,
        desc=desc, progress=progress)  # fmt: skip
    return student


def score_splits(nets: Nets, data: Data) -> Logits:
    """Teacher and student logits on the validation and test windows."""
    from model.train import predict_logits

    return {
        (who, part): predict_logits(net, windows)
        for who, net in (("teacher", nets.teacher), ("student", nets.student))
        for part, windows in (("val", data.d_val), ("test", data.d_test))
    }


def gate_against_rules(
    data: Data,
    student_val: npt.NDArray[np.float32],
    rules: Rules | None,
    cfg: BuildConfig,
    log: Log,
) -> dict[str, dict[str, float]]:
    """Both validation PR-AUCs per kind; with ``cfg.rules_gate``, kinds the rules rank
    better stay with the rules (``data.why`` says so)."""
    validation = against_rules(data.corpus, data.val, student_val, data.kinds, rules)
    if cfg.rules_gate:
        for k, reason in rules_keep(validation).items():
            data.why[k] = reason
            log(f"{k}: {reason}; the rules keep it")
    return validation


def choose_churn_detector(
    data: Data, logits: Logits, rules: Rules | None, cfg: BuildConfig, log: Log
) -> tuple[ChurnBaselines, str, dict[str, Any]] | None:
    """With churn trained: BG/NBD fitted on the training days and the other baselines, and
    which detector takes churn (``model.churn_select``); with ``cfg.rules_gate`` off the
    student keeps it."""
    if "churn" not in data.kinds:
        return None
    base = ChurnBaselines.fit(data.corpus, data.train, data.d_train, data.spec, rules, cfg)
    source, record = choose_churn(base, data.val, data.d_val, logits["student", "val"])
    if not cfg.rules_gate:
        source = "model"
    data.why["churn"] = TRAINED if source == "model" else record["why"]
    log(f"churn: {source} ({record['val_pr_auc']}); BG/NBD {record['btyd']}")
    return base, source, record


def judged_fraud(
    corpus: Corpus, points: Examples, false_fraud: frozenset[str]
) -> npt.NDArray[np.bool_]:
    """Per scoring point: its fraud label is known, labelled fraud or judged a false positive."""
    j = KINDS.index("fraud")
    known = points.y[:, j] > 0
    for i in np.flatnonzero(~known & (points.y[:, j] >= 0)):
        event = corpus.events[points.user[i]][points.end[i] - 1]
        known[i] = str(event.get("event_id")) in false_fraud
    return known


def calibrate(
    val: Examples,
    student_val: npt.NDArray[np.float32],
    kinds: list[str],
    cfg: BuildConfig,
    judged: npt.NDArray[np.bool_] | None = None,
) -> tuple[dict[str, Platt], dict[str, dict[str, Any]]]:
    """Per kind: Platt scaling of the student's validation logits, and its threshold."""
    calibration: dict[str, Platt] = {}
    thresholds: dict[str, dict[str, Any]] = {}
    for k in kinds:
        calibration[k], thresholds[k] = _calibrate_kind(val, student_val, k, cfg, judged)
    return calibration, thresholds


def _calibrate_kind(
    val: Examples,
    student_val: npt.NDArray[np.float32],
    kind: str,
    cfg: BuildConfig,
    judged: npt.NDArray[np.bool_] | None,
) -> tuple[Platt, dict[str, Any]]:
    j = KINDS.index(kind)
    has = val.y[:, j] >= 0
    platt = fit_platt(student_val[has, j], val.y[has, j])
    probs = platt.apply(student_val[has, j])
    chosen = choose_threshold(probs, val.y[has, j], cfg.target_precision, cfg.alert_budget)
    if kind == "fraud":  # fraud alerts once per user per cooldown: choose for alerts
        chosen = raise_for_alerts(
            chosen, probs, val.y[has, j], val.user[has], val.ts[has],
            cfg.fraud_cooldown_ms, cfg.min_val_alerts,
            None if judged is None else judged[has],
        )  # fmt: skip
    return platt, chosen


def export_nets(
    nets: Nets, data: Data, cfg: BuildConfig, tmp: Path, log: Log
) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The student as ONNX (checked against torch) and INT8 ONNX, and both nets'
    safetensors, into ``tmp``; returns the parity and the INT8 student's test and
    validation logits."""
    from model.export import export_onnx, parity, quantize_int8, run_onnx
    from model.nets import save_weights

    onnx_path, int8_path = tmp / "student.onnx", tmp / "student.int8.onnx"
    export_onnx(nets.student, onnx_path, data.spec.n_cat, data.spec.n_num, cfg.T)
    n_par = min(2048, len(data.val)) or min(2048, len(data.test))
    par_data = tuple(a[:n_par] for a in (data.d_val if len(data.val) else data.d_test))
    parity_diff = parity(nets.student, onnx_path, *par_data)
    quantize_int8(onnx_path, int8_path)
    test_int8 = run_onnx(int8_path, *data.d_test)
    val_int8 = run_onnx(int8_path, *data.d_val)
    save_weights(nets.student, tmp / "student.safetensors")
    save_weights(nets.teacher, tmp / "teacher.safetensors")
    log(f"ONNX parity max |torch - onnx| = {parity_diff:.2e}")
    return parity_diff, test_int8, val_int8


def evaluate(
    data: Data,
    nets: Nets,
    logits: Logits,
    test_int8: npt.NDArray[np.float32],
    calibration: dict[str, Platt],
    rules: Rules | None,
    cfg: BuildConfig,
    log: Log,
) -> dict[str, Any]:
    """Test-day metrics per kind against LightGBM and the rules, and the nets' sizes and
    speeds."""
    from model.nets import n_params

    test_logits = {
        "teacher": logits["teacher", "test"],
        "student": logits["student", "test"],
        "student_int8": test_int8,
    }
    metrics = evaluate_kinds(
        data.corpus, data.test, data.d_test, data.spec, data.kinds, calibration,
        test_logits, lgbm=(data.d_train, data.train.y, cfg), rules=rules, log=log,
    )  # fmt: skip
    speed = measure_speed(nets.teacher, nets.student, data.spec, cfg.T, threads=cfg.threads)
    teacher_params, student_params = n_params(nets.teacher), n_params(nets.student)
    metrics["model"] = {
        "teacher_params": teacher_params,
        "student_params": student_params,
        "param_ratio": teacher_params / student_params,
        "pretrain_masked_type_loss": nets.mlm_loss,
        "distillation": nets.distillation,
        **speed,
    }
    return metrics


def drift_reference(
    data: Data, student_val: npt.NDArray[np.float32], calibration: dict[str, Platt]
) -> dict[str, Any]:
    """What the worker's drift gauges compare live traffic with: the validation and test
    windows' decision features (every scoring point of those days; the training windows are
    sampled, positives over-represented), and the calibrated validation scores
    (``model.drift``)."""
    from model.drift import reference

    cat = np.concatenate([np.asarray(data.d_val[0]), np.asarray(data.d_test[0])])
    num = np.concatenate([np.asarray(data.d_val[1]), np.asarray(data.d_test[1])])
    scores = {}
    for kind, platt in calibration.items():
        has = data.val.y[:, KINDS.index(kind)] >= 0
        scores[kind] = platt.apply(student_val[has, KINDS.index(kind)]).astype(np.float64)
    return reference(cat[:, -1], num[:, -1], scores, data.spec)


def _data_metrics(data: Data) -> dict[str, Any]:
    split = data.corpus.split
    return {
        "scoring_points": len(data.corpus.examples),
        "users": len(data.corpus.user_ids),
        "train_windows": len(data.train),
        "val_windows": len(data.val),
        "test_windows": len(data.test),
        "train_end": split.train_end,
        "val_end": split.val_end,
        "data_end": split.data_end,
    }


def _manifest(
    cfg: BuildConfig,
    data: Data,
    nets: Nets,
    calibration: dict[str, Platt],
    thresholds: dict[str, dict[str, Any]],
    metrics: dict[str, Any],
    churn: tuple[ChurnBaselines, str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec, why, t_arch, s_arch = data.spec, data.why, nets.t_arch, nets.s_arch
    kinds = {k: {"source": "model" if why[k] == TRAINED else "rules", "why": why[k]} for k in KINDS}
    if churn is not None and churn[1] == "btyd":  # the stream runs BG/NBD with these
        kinds["churn"].update(source="btyd", btyd=churn[2]["btyd"], threshold=churn[2]["threshold"])
    if churn is not None and churn[1] == "habits":  # or the habits model
        kinds["churn"].update(
            source="habits", habits=churn[2]["habits"], threshold=churn[2]["threshold"]
        )
    return {
        "feature_spec": spec.to_json(),
        "T": cfg.T,
        "kinds": kinds,
        "calibration": {k: c.to_json() for k, c in calibration.items()},
        "thresholds": thresholds,
        "churn_horizon_days": cfg.churn_horizon_days,
        "churn_interval_ms": int(cfg.churn_interval_hours * HOUR_MS),
        "student": {
            "arch": s_arch.to_json(),
            "weights": "student.safetensors",
            "onnx": "student.onnx",
            "onnx_int8": "student.int8.onnx",
            "onnx_inputs": {
                "cat": "int64 (batch, seq, n_cat)",
                "num": "float32 (batch, seq, n_num)",
                "mask": "float32 (batch, seq), 1 = event",
            },
            "onnx_outputs": {"logits": "float32 (batch, 3): fraud, brushing, churn"},
        },
        "teacher": {"arch": t_arch.to_json(), "weights": "teacher.safetensors"},
        "build_config": cfg.to_json(),
        "metrics": metrics,
    }
