"""The build pipeline: events + labels -> a verified model bundle with its metrics.

Steps: windows and targets by a day split; teacher pretraining (masked event type) and
multi-task fine-tuning; student distillation; Platt calibration and thresholds on the
validation days; ONNX export with a parity check and INT8 quantisation; evaluation on the
test days against LightGBM (and the streaming rules where available); the bundle.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from model.bundle import Bundle, write_bundle
from model.calibrate import (
    Platt,
    choose_threshold,
    fit_platt,
    raise_for_alerts,
    ranking_metrics,
)
from model.config import BuildConfig
from model.dataset import Corpus, Examples, build_corpus, encode
from model.evaluate import Rules, evaluate_kinds, measure_speed, rule_ranking, rules_on
from model.features import KINDS, FeatureSpec

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"[build] {msg}", file=sys.stderr, flush=True)


def _train_sample(
    y: npt.NDArray[np.float32], cap: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """All windows positive for some kind, plus random others up to ``cap`` in total."""
    pos = np.flatnonzero((y > 0).any(1))
    neg = np.flatnonzero(~(y > 0).any(1))
    take = min(len(neg), max(0, cap - len(pos)))
    return np.sort(np.r_[pos, rng.choice(neg, take, replace=False)]).astype(np.int64)


TRAINED = "trained on labels"


def _val_pr_auc(
    scores: npt.NDArray[np.float32], y_val: npt.NDArray[np.float32], j: int
) -> float | None:
    """PR-AUC of kind ``j``'s scores on the validation points it applies to; None where
    those hold no positive."""
    has = y_val[:, j] >= 0
    if not (y_val[has, j] > 0).any():
        return None
    return ranking_metrics(scores[has, j], y_val[has, j])["pr_auc"]


def _against_rules(
    corpus: Corpus,
    val: Examples,
    student_val: npt.NDArray[np.float32],
    kinds: list[str],
    rules: Rules | None,
) -> dict[str, dict[str, float]]:
    """Validation PR-AUC of the student and of the streaming rules, per kind both score."""
    out: dict[str, dict[str, float]] = {}
    for k in kinds:
        student = _val_pr_auc(student_val, val.y, KINDS.index(k))
        if rules is None or k not in rules or student is None:
            continue
        out[k] = {
            "student_pr_auc": student,
            "rules_pr_auc": rule_ranking(corpus, val, rules, k)["pr_auc"],
        }
    return out


def _distilled_kinds(
    y_val: npt.NDArray[np.float32],
    trained: npt.NDArray[np.bool_],
    teacher_val: npt.NDArray[np.float32],
    labels_only_val: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.bool_], dict[str, Any]]:
    """Kinds whose teacher ranks the validation windows at least as well as a student
    trained on labels alone, with both PR-AUCs for the record."""
    distill = np.zeros(len(KINDS), np.bool_)
    record: dict[str, Any] = {}
    for j, k in enumerate(KINDS):
        t_auc = _val_pr_auc(teacher_val, y_val, j)
        s_auc = _val_pr_auc(labels_only_val, y_val, j)
        if not trained[j] or t_auc is None or s_auc is None:
            continue
        distill[j] = t_auc >= s_auc
        record[k] = {
            "teacher_val_pr_auc": t_auc,
            "labels_only_student_val_pr_auc": s_auc,
            "distilled": bool(distill[j]),
        }
    return distill, record


def _kind_sources(corpus: Corpus, parts: list[npt.NDArray[np.int64]]) -> dict[str, str]:
    """Why each kind is or is not trained: it needs labels and positives to train on and to
    calibrate with."""
    why: dict[str, str] = {}
    for j, k in enumerate(KINDS):
        y_train, y_val = corpus.examples.y[parts[0], j], corpus.examples.y[parts[1], j]
        if not corpus.kinds[k]:
            why[k] = "no labels of this kind"
        elif k == "churn" and not ((y_train >= 0).any() and (y_val >= 0).any()):
            why[k] = (
                "no churn evaluation point in the training or validation days (a user "
                "needs 5 events before a tick of the churn clock)"
            )
        elif not (y_train > 0).any() or not (y_val > 0).any():
            why[k] = "no positive example in the training or validation days"
        else:
            why[k] = TRAINED
    return why


def run_build(
    events: Path,
    labels: Path,
    out: Path,
    cfg: BuildConfig,
    *,
    progress: bool = True,
    log: Log = _stderr,
) -> tuple[Bundle, dict[str, Any]]:
    import torch

    from model.export import export_onnx, parity, quantize_int8, run_onnx
    from model.nets import ArchConfig, TeacherNet, build_net, n_params, save_weights
    from model.train import FitConfig, fit, predict_logits, pretrain_masked

    started = time.monotonic()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    spec = FeatureSpec()
    corpus = build_corpus(
        events,
        labels,
        spec,
        horizon_days=cfg.churn_horizon_days,
        val_frac=cfg.val_frac,
        test_frac=cfg.test_frac,
    )
    ex = corpus.examples
    parts = [np.flatnonzero(ex.part == p).astype(np.int64) for p in range(3)]
    why = _kind_sources(corpus, parts)
    trained = np.array([why[k] == TRAINED for k in KINDS])
    if not trained.any():
        raise ValueError(f"no kind can be trained: {why}")
    log(f"{len(ex)} scoring points from {len(corpus.user_ids)} users; kinds: {why}")
    train_idx = _train_sample(ex.y[parts[0]], cfg.max_train, rng)
    train = ex.subset(parts[0][train_idx])
    val, test = ex.subset(parts[1]), ex.subset(parts[2])
    d_train, d_val, d_test = (encode(corpus, s, spec, cfg.T) for s in (train, val, test))
    log(f"windows: train {len(train)} (sampled), val {len(val)}, test {len(test)}")

    t_arch = ArchConfig.for_spec(spec, "bert", *cfg.teacher)
    s_arch = ArchConfig.for_spec(spec, "student", *cfg.student)
    teacher = build_net(t_arch)
    assert isinstance(teacher, TeacherNet)
    pre = rng.choice(len(train), min(len(train), cfg.max_pretrain), replace=False)
    d_pre = tuple(a[pre] for a in d_train)
    fc = FitConfig(cfg.pretrain_epochs, cfg.teacher_lr, cfg.batch, seed=cfg.seed)
    mlm_loss = pretrain_masked(teacher, d_pre, fc, progress=progress)  # type: ignore[arg-type]
    fit(
        teacher,
        d_train,
        train.y,
        trained,
        replace(fc, epochs=cfg.teacher_epochs),
        desc="teacher",
        progress=progress,
    )
    soft = predict_logits(teacher, d_train, desc="teacher soft", progress=progress)

    # The teacher is distilled only for kinds where it ranks the validation days at least
    # as well as the same student trained on labels alone: a weaker teacher would pull the
    # student down (as the BERT teacher does on churn).
    s_fit = FitConfig(cfg.student_epochs, cfg.student_lr, cfg.batch, seed=cfg.seed)
    probe = build_net(s_arch)
    fit(probe, d_train, train.y, trained, s_fit, desc="student (labels only)", progress=progress)
    distill, distillation = _distilled_kinds(
        val.y, trained, predict_logits(teacher, d_val), predict_logits(probe, d_val)
    )
    log(f"distilled kinds: {[k for k, d in zip(KINDS, distill, strict=True) if d]}")
    student = probe
    if distill.any():
        student = build_net(s_arch)
        fit(
            student,
            d_train,
            train.y,
            trained,
            s_fit,
            soft=soft,
            alpha=cfg.distill_alpha,
            temp=cfg.distill_temp,
            distill=distill,
            desc="student",
            progress=progress,
        )

    logits = {
        (who, part): predict_logits(net, data)
        for who, net in (("teacher", teacher), ("student", student))
        for part, data in (("val", d_val), ("test", d_test))
    }
    kinds = [k for k in KINDS if why[k] == TRAINED]
    rules = rules_on(corpus, corpus.split.train_end, log)
    validation = _against_rules(corpus, val, logits["student", "val"], kinds, rules)
    if cfg.rules_gate:
        for k, v in validation.items():
            if v["student_pr_auc"] < v["rules_pr_auc"]:
                why[k] = (
                    f"the rules rank the validation days better than the student "
                    f"(PR-AUC {v['student_pr_auc']:.3f} against {v['rules_pr_auc']:.3f})"
                )
                log(f"{k}: {why[k]}; the rules keep it")
    calibration: dict[str, Platt] = {}
    thresholds: dict[str, dict[str, Any]] = {}
    for k in kinds:
        j = KINDS.index(k)
        has = val.y[:, j] >= 0
        calibration[k] = fit_platt(logits["student", "val"][has, j], val.y[has, j])
        probs = calibration[k].apply(logits["student", "val"][has, j])
        thresholds[k] = choose_threshold(
            probs, val.y[has, j], cfg.target_precision, cfg.alert_budget
        )
        if k == "fraud":
            thresholds[k] = raise_for_alerts(
                thresholds[k], probs, val.y[has, j], val.user[has], val.ts[has],
                cfg.fraud_cooldown_ms, cfg.min_val_alerts,
            )  # fmt: skip

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        onnx_path, int8_path = tmp / "student.onnx", tmp / "student.int8.onnx"
        export_onnx(student, onnx_path, spec.n_cat, spec.n_num, cfg.T)
        n_par = min(2048, len(val)) or min(2048, len(test))
        par_data = tuple(a[:n_par] for a in (d_val if len(val) else d_test))
        parity_diff = parity(student, onnx_path, *par_data)
        quantize_int8(onnx_path, int8_path)
        test_int8 = run_onnx(int8_path, *d_test)
        save_weights(student, tmp / "student.safetensors")
        save_weights(teacher, tmp / "teacher.safetensors")
        log(f"ONNX parity max |torch - onnx| = {parity_diff:.2e}")

        metrics = evaluate_kinds(
            corpus,
            test,
            d_test,
            spec,
            kinds,
            calibration,
            {
                "teacher": logits["teacher", "test"],
                "student": logits["student", "test"],
                "student_int8": test_int8,
            },
            lgbm=(d_train, train.y, cfg),
            rules=rules,
            log=log,
        )
        speed = measure_speed(teacher, student, spec, cfg.T, threads=cfg.threads)
        metrics["model"] = {
            "teacher_params": n_params(teacher),
            "student_params": n_params(student),
            "param_ratio": n_params(teacher) / n_params(student),
            "pretrain_masked_type_loss": mlm_loss,
            "distillation": distillation,
            **speed,
            "onnx_parity_max_abs_diff": parity_diff,
        }
        metrics["data"] = {
            "scoring_points": len(ex),
            "users": len(corpus.user_ids),
            "train_windows": len(train),
            "val_windows": len(val),
            "test_windows": len(test),
            "train_end": corpus.split.train_end,
            "val_end": corpus.split.val_end,
            "data_end": corpus.split.data_end,
        }
        metrics["validation_against_rules"] = validation
        metrics["build_seconds"] = time.monotonic() - started
        manifest = _manifest(cfg, spec, why, t_arch, s_arch, calibration, thresholds, metrics)
        files = {
            n: tmp / n
            for n in (
                "student.onnx",
                "student.int8.onnx",
                "student.safetensors",
                "teacher.safetensors",
            )
        }
        bundle = write_bundle(out, files, manifest)
    log(f"bundle {bundle.version} written to {out} in {metrics['build_seconds']:.0f}s")
    return bundle, metrics


def _manifest(
    cfg: BuildConfig,
    spec: FeatureSpec,
    why: dict[str, str],
    t_arch: Any,
    s_arch: Any,
    calibration: dict[str, Platt],
    thresholds: dict[str, dict[str, Any]],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    return {
        "feature_spec": spec.to_json(),
        "T": cfg.T,
        "kinds": {
            k: {"source": "model" if why[k] == TRAINED else "rules", "why": why[k]} for k in KINDS
        },
        "calibration": {k: c.to_json() for k, c in calibration.items()},
        "thresholds": thresholds,
        "churn_horizon_days": cfg.churn_horizon_days,
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
