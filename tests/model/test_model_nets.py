from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.features import FeatureSpec

torch = pytest.importorskip("torch")

from model.nets import (  # noqa: E402
    ArchConfig,
    build_net,
    load_weights,
    n_params,
    save_weights,
)

SPEC = FeatureSpec()


def _inputs(batch: int, n: int, T: int, seed: int = 0) -> tuple[object, object, object]:
    """``n`` real events right-aligned in windows of length T (the rest padding)."""
    g = torch.Generator().manual_seed(seed)
    cat = torch.zeros(batch, T, SPEC.n_cat, dtype=torch.long)
    real = torch.stack(
        [torch.randint(1, c, (batch, n), generator=g) for c in SPEC.cardinalities], -1
    )
    cat[:, T - n :] = real
    num = torch.zeros(batch, T, SPEC.n_num)
    num[:, T - n :] = torch.randn(batch, n, SPEC.n_num, generator=g)
    mask = torch.zeros(batch, T)
    mask[:, T - n :] = 1.0
    return cat, num, mask


@pytest.mark.parametrize("kind", ["student", "bert"])
def test_padding_and_window_length_do_not_change_scores(kind: str) -> None:
    torch.manual_seed(0)
    net = build_net(ArchConfig.for_spec(SPEC, kind, 32, 2, 4, 64)).eval()
    short, long_ = _inputs(3, 10, 16), _inputs(3, 10, 64)
    with torch.inference_mode():
        a, b = net(*short), net(*long_)
    assert a.shape == (3, 3)
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)


def test_weights_round_trip_through_safetensors(tmp_path: Path) -> None:
    arch = ArchConfig.for_spec(SPEC, "student", 16, 1, 2, 32)
    net = build_net(arch).eval()
    save_weights(net, tmp_path / "w.safetensors")
    again = load_weights(arch.to_json(), tmp_path / "w.safetensors")
    x = _inputs(2, 5, 8)
    with torch.inference_mode():
        np.testing.assert_array_equal(net(*x).numpy(), again(*x).numpy())
    assert n_params(again) == n_params(net)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_net(ArchConfig.for_spec(SPEC, "lstm", 16, 1, 2, 32))
