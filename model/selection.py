"""Which kinds the build trains, distils and hands to the model, with the reasons the
manifest records: a kind needs labels and positives to train on and to calibrate with,
the teacher is distilled only where it helps, and the streaming rules keep a kind they
rank better than the student."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from model.calibrate import ranking_metrics
from model.dataset import Corpus, Examples
from model.evaluate import Rules, rule_ranking
from model.features import KINDS

TRAINED = "trained on labels"


def train_sample(
    y: npt.NDArray[np.float32], cap: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """All windows positive for some kind, plus random others up to ``cap`` in total.

    Where positives alone would fill more than half of ``cap`` (a shop whose customers
    mostly leave: most churn points are positive), the positives of the kinds that have
    more than a sixth of ``cap`` are sampled down to half of it, so that negatives remain
    and a build's time follows ``cap``."""
    pos = np.flatnonzero((y > 0).any(1))
    if len(pos) > cap // 2:
        many = (y[pos] > 0).sum(0) > cap // 6  # the kinds to sample
        rare_kind = (y[pos][:, ~many] > 0).any(1)
        keep, rest = pos[rare_kind], pos[~rare_kind]
        room = max(0, cap // 2 - len(keep))
        pos = np.sort(np.r_[keep, rng.choice(rest, min(room, len(rest)), replace=False)])
    neg = np.flatnonzero(~(y > 0).any(1))
    take = min(len(neg), max(0, cap - len(pos)))
    return np.sort(np.r_[pos, rng.choice(neg, take, replace=False)]).astype(np.int64)


def kind_sources(corpus: Corpus, parts: list[npt.NDArray[np.int64]]) -> dict[str, str]:
    """Why each kind is or is not trained (``TRAINED`` where it is)."""
    why: dict[str, str] = {}
    for j, k in enumerate(KINDS):
        y_train, y_val = corpus.examples.y[parts[0], j], corpus.examples.y[parts[1], j]
        if not corpus.kinds[k]:
            why[k] = "no labels of this kind"
        elif k == "churn" and not ((y_train >= 0).any() and (y_val >= 0).any()):
            why[k] = (
                "no churn evaluation point in the training or validation days (no tick of "
                "the churn clock within a horizon of some user's events)"
            )
        elif not (y_train > 0).any() or not (y_val > 0).any():
            why[k] = "no positive example in the training or validation days"
        else:
            why[k] = TRAINED
    return why


def val_pr_auc(
    scores: npt.NDArray[np.float32], y_val: npt.NDArray[np.float32], j: int
) -> float | None:
    """PR-AUC of kind ``j``'s scores on the validation points it applies to; None where
    those hold no positive."""
    has = y_val[:, j] >= 0
    if not (y_val[has, j] > 0).any():
        return None
    return ranking_metrics(scores[has, j], y_val[has, j])["pr_auc"]


def distilled_kinds(
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
        t_auc = val_pr_auc(teacher_val, y_val, j)
        s_auc = val_pr_auc(labels_only_val, y_val, j)
        if not trained[j] or t_auc is None or s_auc is None:
            continue
        distill[j] = t_auc >= s_auc
        record[k] = {
            "teacher_val_pr_auc": t_auc,
            "labels_only_student_val_pr_auc": s_auc,
            "distilled": bool(distill[j]),
        }
    return distill, record


def against_rules(
    corpus: Corpus,
    val: Examples,
    student_val: npt.NDArray[np.float32],
    kinds: list[str],
    rules: Rules | None,
) -> dict[str, dict[str, float]]:
    """Validation PR-AUC of the student and of the streaming rules, per kind both score."""
    out: dict[str, dict[str, float]] = {}
    for k in kinds:
        student = val_pr_auc(student_val, val.y, KINDS.index(k))
        if rules is None or k not in rules or student is None:
            continue
        out[k] = {
            "student_pr_auc": student,
            "rules_pr_auc": rule_ranking(corpus, val, rules, k)["pr_auc"],
        }
    return out


def rules_keep(validation: dict[str, dict[str, float]]) -> dict[str, str]:
    """The kinds the rules rank better than the student on the validation days, and why."""
    return {
        k: (
            f"the rules rank the validation days better than the student "
            f"(PR-AUC {v['student_pr_auc']:.3f} against {v['rules_pr_auc']:.3f})"
        )
        for k, v in validation.items()
        if v["student_pr_auc"] < v["rules_pr_auc"]
    }
