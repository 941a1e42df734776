"""Training loops: masked-event pretraining, multi-task fine-tuning and distillation.

Arrays stay in numpy (int16 codes) and are turned into tensors per batch, so a million
windows fit in memory. One loop serves fine-tuning and distillation: the loss is the
labelled binary cross-entropy per kind, optionally mixed with a soft-target term against
the teacher's tempered probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from model.features import MASK_TYPE
from model.nets import TeacherNet

Arrays = tuple[npt.NDArray[np.int16], npt.NDArray[np.float32], npt.NDArray[np.bool_]]


@dataclass(frozen=True)
class FitConfig:
    epochs: float
    lr: float
    batch: int = 256
    weight_decay: float = 0.01
    seed: int = 0


def _tensors(data: Arrays, idx: npt.NDArray[np.int64]) -> tuple[Tensor, Tensor, Tensor]:
    cat, num, mask = data
    return (
        torch.from_numpy(cat[idx].astype(np.int64)),
        torch.from_numpy(num[idx]),
        torch.from_numpy(mask[idx].astype(np.float32)),
    )


def _batches(n: int, cfg: FitConfig, rng: np.random.Generator) -> Iterator[npt.NDArray[np.int64]]:
    """Shuffled batches for ``cfg.epochs`` passes (fractions allowed)."""
    steps = max(1, math.ceil(cfg.epochs * n / cfg.batch))
    order = rng.permutation(n)
    pos = 0
    for _ in range(steps):
        if pos + cfg.batch > n:
            order, pos = rng.permutation(n), 0
        yield order[pos : pos + cfg.batch].astype(np.int64)
        pos += cfg.batch


def _optimiser(
    net: nn.Module, cfg: FitConfig, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, steps // 20)

    def factor(step: int) -> float:  # linear warm-up, then cosine decay to 5%
        if step < warm:
            return (step + 1) / warm
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _steps(n: int, cfg: FitConfig) -> int:
    return max(1, math.ceil(cfg.epochs * n / cfg.batch))


def pretrain_masked(
    teacher: TeacherNet,
    data: Arrays,
    cfg: FitConfig,
    mask_rate: float = 0.15,
    progress: bool = False,
) -> float:
    """Masked event-type prediction on unlabelled windows; returns the final mean loss."""
    rng = np.random.default_rng(cfg.seed)
    n = len(data[0])
    opt, sched = _optimiser(teacher, cfg, _steps(n, cfg))
    teacher.train()
    avg = 0.0
    bar = tqdm(_batches(n, cfg, rng), total=_steps(n, cfg), desc="pretrain", disable=not progress)
    for idx in bar:
        cat, num, mask = _tensors(data, idx)
        chosen = (torch.rand(mask.shape) < mask_rate) & (mask > 0)
        chosen[:, -1] |= True  # always ask for the decision event: it is never padding
        target = cat[..., 0][chosen]
        cat = cat.clone()
        cat[..., 0][chosen] = MASK_TYPE
        loss = F.cross_entropy(teacher.mlm(teacher.hidden(cat, num, mask)[chosen]), target)
        avg = _step(loss, teacher, opt, sched, avg)
        bar.set_postfix(loss=f"{avg:.3f}")
    return avg


def _step(
    loss: Tensor,
    net: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    avg: float,
) -> float:
    """One clipped optimiser step; returns the running mean of the loss for the bar."""
    opt.zero_grad()
    torch.autograd.backward(loss)
    nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    sched.step()
    value = float(loss.detach())
    return 0.98 * avg + 0.02 * value if avg else value


def multitask_loss(
    logits: Tensor,
    y: Tensor,
    soft: Tensor | None,
    kinds: Tensor,
    alpha: float,
    temp: float,
    pos_weight: Tensor | None = None,
    distill: Tensor | None = None,
) -> Tensor:
    """Masked BCE per kind (labels); for the kinds in ``distill`` (default: all trained
    kinds) mixed with distillation against ``soft`` teacher logits, weight ``1 - alpha``."""
    has = (y >= 0) & kinds
    hard = F.binary_cross_entropy_with_logits(
        logits, y.clamp(min=0), pos_weight=pos_weight, reduction="none"
    )
    per_kind = (hard * has).sum(0) / has.sum(0).clamp(min=1)
    if soft is None:
        return per_kind.sum()
    target = torch.sigmoid(soft / temp)
    kd = F.binary_cross_entropy_with_logits(logits / temp, target, reduction="none")
    kd_kind = kd.mean(0) * temp * temp
    mixed = (distill if distill is not None else kinds) & kinds
    return torch.where(mixed, alpha * per_kind + (1 - alpha) * kd_kind, per_kind).sum()


def positive_weights(y: npt.NDArray[np.float32], cap: float = 10.0) -> npt.NDArray[np.float32]:
    """Per-kind weight of positives, sqrt(negatives / positives) capped: rare positives get
    more gradient without the ranking collapsing onto them; calibration undoes the skew."""
    pos, neg = (y == 1).sum(0), (y == 0).sum(0)
    weights: npt.NDArray[np.float32] = np.clip(np.sqrt(neg / np.maximum(pos, 1)), 1.0, cap)
    return weights.astype(np.float32)


def fit(
    net: nn.Module,
    data: Arrays,
    y: npt.NDArray[np.float32],
    kinds: npt.NDArray[np.bool_],
    cfg: FitConfig,
    *,
    soft: npt.NDArray[np.float32] | None = None,
    alpha: float = 0.5,
    temp: float = 2.0,
    distill: npt.NDArray[np.bool_] | None = None,
    desc: str = "fit",
    progress: bool = False,
) -> float:
    """Train ``net`` on labels, and on teacher logits ``soft`` when given (for the kinds in
    ``distill``, default all); returns the last loss."""
    rng = np.random.default_rng(cfg.seed)
    n = len(y)
    opt, sched = _optimiser(net, cfg, _steps(n, cfg))
    kinds_t = torch.from_numpy(kinds.astype(np.bool_))
    pos_weight = torch.from_numpy(positive_weights(y))
    distill_t = torch.from_numpy(distill.astype(np.bool_)) if distill is not None else None
    net.train()
    avg = 0.0
    bar = tqdm(_batches(n, cfg, rng), total=_steps(n, cfg), desc=desc, disable=not progress)
    for idx in bar:
        cat, num, mask = _tensors(data, idx)
        soft_t = torch.from_numpy(soft[idx]) if soft is not None else None
        logits = net(cat, num, mask)
        y_t = torch.from_numpy(y[idx])
        loss = multitask_loss(logits, y_t, soft_t, kinds_t, alpha, temp, pos_weight, distill_t)
        avg = _step(loss, net, opt, sched, avg)
        bar.set_postfix(loss=f"{avg:.3f}")
    net.eval()
    return avg


@torch.inference_mode()
def predict_logits(
    net: nn.Module, data: Arrays, batch: int = 512, desc: str = "score", progress: bool = False
) -> npt.NDArray[np.float32]:
    net.eval()
    n = len(data[0])
    out = np.zeros((n, 3), dtype=np.float32)
    for start in tqdm(range(0, n, batch), desc=desc, disable=not progress):
        idx = np.arange(start, min(n, start + batch), dtype=np.int64)
        out[idx] = net(*_tensors(data, idx)).numpy()
    return out
