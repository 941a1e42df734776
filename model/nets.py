"""Torch networks: the event embedding, the BERT teacher and the small student.

Both map ``(cat, num, mask)`` to one logit per kind (fraud, brushing, churn), read from the
decision event, which ``model.features`` always puts at the last position. Positions are
counted back from the decision event, so the same weights serve any T up to 64.
Architectures are described by plain JSON (``ArchConfig``) stored in the bundle manifest;
weights live in safetensors, so rebuilding a network never unpickles anything.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from model.features import MAX_T, FeatureSpec

N_KINDS = 3


@dataclass(frozen=True)
class ArchConfig:
    kind: str  # "bert" (teacher) or "student"
    d: int
    layers: int
    heads: int
    ff: int
    cardinalities: tuple[int, ...]
    n_num: int
    dropout: float = 0.1

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArchConfig:
        return cls(**{**data, "cardinalities": tuple(data["cardinalities"])})

    @classmethod
    def for_spec(
        cls,
        spec: FeatureSpec,
        kind: str,
        d: int,
        layers: int,
        heads: int,
        ff: int,
        dropout: float = 0.1,
    ) -> ArchConfig:
        return cls(kind, d, layers, heads, ff, spec.cardinalities, spec.n_num, dropout)


class EventEmbedding(nn.Module):
    """Sum of one embedding per categorical feature plus a projection of the numbers."""

    def __init__(self, cardinalities: tuple[int, ...], n_num: int, d: int) -> None:
        super().__init__()
        offsets = torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.table = nn.Embedding(sum(cardinalities), d)
        self.num = nn.Linear(n_num, d)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, cat: Tensor, num: Tensor) -> Tensor:
        out: Tensor = self.table(cat + self.get_buffer("offsets")).sum(dim=2) + self.num(num)
        return out


class Block(nn.Module):
    """Pre-norm transformer block; ``last_only`` computes the final position alone."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.kv, self.out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, bias: Tensor, last_only: bool = False) -> Tensor:
        b, t, d = x.shape
        h = self.ln1(x)
        hq = h[:, -1:] if last_only else h
        q = self.q(hq).reshape(b, -1, self.heads, self.dh).transpose(1, 2)
        k, v = self.kv(h).reshape(b, t, 2, self.heads, self.dh).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.dh)) + bias
        ctx = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, -1, d)
        x = (x[:, -1:] if last_only else x) + self.drop(self.out(ctx))
        out: Tensor = x + self.drop(self.ff(self.ln2(x)))
        return out


class StudentNet(nn.Module):
    """A small encoder; its last block attends from the decision event only."""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        self.embed = EventEmbedding(cfg.cardinalities, cfg.n_num, cfg.d)
        self.pos = nn.Parameter(torch.zeros(MAX_T, cfg.d))
        self.blocks = nn.ModuleList(
            Block(cfg.d, cfg.heads, cfg.ff, cfg.dropout) for _ in range(cfg.layers)
        )
        self.ln = nn.LayerNorm(cfg.d)
        self.head = nn.Linear(cfg.d, N_KINDS)

    def pooled(self, cat: Tensor, num: Tensor, mask: Tensor) -> Tensor:
        t = cat.shape[1]
        # Row i of pos is "i events before the decision"; flip so the decision gets row 0.
        x = self.embed(cat, num) + self.pos[:t].flip(0)
        bias = ((1.0 - mask) * -1e4)[:, None, None, :]
        for i, block in enumerate(self.blocks):
            x = block(x, bias, last_only=i == len(self.blocks) - 1)
        out: Tensor = self.ln(x[:, -1])
        return out

    def forward(self, cat: Tensor, num: Tensor, mask: Tensor) -> Tensor:
        logits: Tensor = self.head(self.pooled(cat, num, mask))
        return logits


class TeacherNet(nn.Module):
    """A Hugging Face ``BertModel`` fed summed event embeddings via ``inputs_embeds``."""

    def __init__(self, cfg: ArchConfig) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        bert_cfg = BertConfig(
            vocab_size=1,
            hidden_size=cfg.d,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            intermediate_size=cfg.ff,
            max_position_embeddings=MAX_T,
            type_vocab_size=1,
            hidden_dropout_prob=cfg.dropout,
            attention_probs_dropout_prob=cfg.dropout,
        )
        self.embed = EventEmbedding(cfg.cardinalities, cfg.n_num, cfg.d)
        # Typed in some transformers releases, not in others.
        self.bert = BertModel(bert_cfg, add_pooling_layer=False)  # type: ignore[no-untyped-call,unused-ignore]
        self.head = nn.Linear(cfg.d, N_KINDS)
        # Masked event-type prediction over every type code (the type embedding's size).
        self.mlm = nn.Linear(cfg.d, cfg.cardinalities[0])

    def hidden(self, cat: Tensor, num: Tensor, mask: Tensor) -> Tensor:
        t = cat.shape[1]
        positions = torch.arange(t - 1, -1, -1, device=cat.device).expand(cat.shape[0], t)
        out = self.bert(
            inputs_embeds=self.embed(cat, num),
            attention_mask=mask.long(),
            position_ids=positions,
        )
        hidden: Tensor = out.last_hidden_state
        return hidden

    def forward(self, cat: Tensor, num: Tensor, mask: Tensor) -> Tensor:
        logits: Tensor = self.head(self.hidden(cat, num, mask)[:, -1])
        return logits


def build_net(cfg: ArchConfig) -> nn.Module:
    if cfg.kind == "bert":
        return TeacherNet(cfg)
    if cfg.kind == "student":
        return StudentNet(cfg)
    raise ValueError(f"unknown architecture kind {cfg.kind!r}")


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def save_weights(net: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(path))


def load_weights(arch: dict[str, Any], path: Path) -> nn.Module:
    """Rebuild a network from its manifest description and safetensors weights (eval mode)."""
    from safetensors.torch import load_file

    net = build_net(ArchConfig.from_json(arch))
    net.load_state_dict(load_file(str(path)), strict=True)
    return net.eval()
