"""Test-day evaluation per kind (teacher, student, INT8 student, LightGBM, rules) and the
teacher-versus-student speed measurement."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from model.baseline import LightGBMBaseline, window_features
from model.calibrate import Platt, ranking_metrics
from model.features import KINDS, FeatureSpec

if TYPE_CHECKING:
    from torch import nn

    from model.config import BuildConfig
    from model.dataset import Corpus, Examples

Arrays = tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]
Rules = dict[str, dict[str, float]]  # kind -> scoring point key -> rule score


def _clean(value: Any) -> Any:
    """JSON-safe: NaN (a kind without test positives) becomes null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def rules_on(
    corpus: Corpus, since_ms: int, log: Callable[[str], None], cfg: BuildConfig | None = None
) -> Rules | None:
    """The streaming rules' scores from ``since_ms`` on (``model.rules_eval``), with the
    build's churn horizon and clock interval, or None."""
    try:
        from model.rules_eval import rule_scores
        from stream.core.timeutil import HOUR_MS
        from stream.detect.churn import ChurnConfig

        churn = None
        if cfg is not None:
            churn = ChurnConfig(
                horizon_days=cfg.churn_horizon_days,
                interval_ms=int(cfg.churn_interval_hours * HOUR_MS),
                budget_per_1000=None,
            )
        return rule_scores(corpus.events_path, since_ms, churn)
    except Exception as exc:  # the rules are optional context, never a reason to fail
        log(f"rules not evaluated: {type(exc).__name__}: {exc}")
        return None


def rule_point_scores(
    corpus: Corpus, ex: Examples, rules: Rules, kind: str
) -> npt.NDArray[np.float64]:
    """The rules' score at each of ``ex``'s points (0 where the rules did not score it)."""
    from model.rules_eval import churn_key

    book = rules.get(kind, {})
    scores = []
    for u, e, ts, clock in zip(ex.user, ex.end, ex.ts, ex.clock, strict=True):
        # Keyed by the event, or by the user and tick of a churn point.
        key = (
            churn_key(corpus.user_ids[u], int(ts))
            if clock
            else str(corpus.events[u][e - 1].get("event_id"))
        )
        scores.append(book.get(key, 0.0))
    return np.array(scores, np.float64)


def rule_ranking(corpus: Corpus, ex: Examples, rules: Rules, kind: str) -> dict[str, float]:
    """PR-AUC and recall at precision 0.9 of the rules' scores at ``ex``'s points of
    ``kind`` (points the rules did not score count as 0)."""
    j = KINDS.index(kind)
    has = ex.y[:, j] >= 0
    return ranking_metrics(rule_point_scores(corpus, ex, rules, kind)[has], ex.y[has, j])


def evaluate_kinds(
    corpus: Corpus,
    test: Examples,
    d_test: Arrays,
    spec: FeatureSpec,
    kinds: list[str],
    calibration: dict[str, Platt],
    logits: dict[str, npt.NDArray[np.float32]],
    lgbm: tuple[Arrays, npt.NDArray[np.float32], BuildConfig],
    rules: Rules | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    d_train, y_train, cfg = lgbm
    gbm = LightGBMBaseline(cfg.lgbm_estimators, cfg.threads, cfg.seed)
    gbm.fit(window_features(*d_train, spec), y_train, [KINDS.index(k) for k in kinds])
    x_test = window_features(*d_test, spec)
    out: dict[str, Any] = {}
    for k in kinds:
        j = KINDS.index(k)
        has = test.y[:, j] >= 0
        y = test.y[has, j]
        res: dict[str, Any] = {who: ranking_metrics(z[has, j], y) for who, z in logits.items()}
        res["lightgbm"] = ranking_metrics(gbm.predict(x_test, j)[has], y)
        if rules is not None and k in rules:
            res["rules"] = rule_ranking(corpus, test, rules, k)
        p32 = calibration[k].apply(logits["student"][has, j])
        p8 = calibration[k].apply(logits["student_int8"][has, j])
        res["int8_max_abs_prob_diff"] = float(np.abs(p32 - p8).max()) if has.any() else 0.0
        res["student_brier"] = float(np.mean((p32 - y) ** 2)) if has.any() else float("nan")
        t_auc, s_auc = res["teacher"]["pr_auc"], res["student"]["pr_auc"]
        res["student_over_teacher_pr_auc"] = s_auc / t_auc if t_auc and t_auc > 0 else float("nan")
        out[k] = res
        log(
            f"{k}: PR-AUC teacher {t_auc:.3f} student {s_auc:.3f} int8 "
            f"{res['student_int8']['pr_auc']:.3f} lightgbm {res['lightgbm']['pr_auc']:.3f}"
            + (f" rules {res['rules']['pr_auc']:.3f}" if "rules" in res else "")
            + f" (test positives {int(y.sum())}/{len(y)})"
        )
    return {"test": _clean(out)}


def measure_speed(
    teacher: nn.Module,
    student: nn.Module,
    spec: FeatureSpec,
    T: int,
    batch: int = 256,
    reps: int = 5,
    threads: int = 2,
) -> dict[str, float]:
    """Torch CPU sequences per second of both networks on the same random batch."""
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    cat = torch.stack(
        [torch.randint(0, c, (batch, T), generator=g) for c in spec.cardinalities], -1
    )
    num = torch.randn(batch, T, spec.n_num, generator=g)
    mask = torch.ones(batch, T)
    rates = {}
    with torch.inference_mode():
        for name, net in (("teacher", teacher.eval()), ("student", student.eval())):
            net(cat, num, mask)
            best = math.inf
            for _ in range(reps):
                t0 = time.perf_counter()
                net(cat, num, mask)
                best = min(best, time.perf_counter() - t0)
            rates[f"{name}_torch_seq_per_s"] = batch / best
    rates["speed_ratio"] = rates["student_torch_seq_per_s"] / rates["teacher_torch_seq_per_s"]
    return rates
