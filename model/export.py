"""ONNX export of the student, the torch-vs-ONNX parity check and INT8 quantisation.

The graph takes ``cat`` (int64), ``num`` (float32) and ``mask`` (float32, 1 = event) with
dynamic batch and sequence axes, and returns raw ``logits`` (batch, 3); calibration is
applied by the scorer from the manifest, so recalibrating never touches the graph.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

INPUTS = ("cat", "num", "mask")
OPSET = 17


def export_onnx(net: nn.Module, path: Path, n_cat: int, n_num: int, T: int) -> None:
    net = net.eval()
    example = (
        torch.ones((2, T, n_cat), dtype=torch.long),
        torch.zeros((2, T, n_num), dtype=torch.float32),
        torch.ones((2, T), dtype=torch.float32),
    )
    axes = {name: {0: "batch", 1: "seq"} for name in INPUTS}
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated but handles this small graph exactly
        # and needs no extra packages; silence its notices and tracer warnings.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            example,
            str(path),
            input_names=list(INPUTS),
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    import onnx

    onnx.checker.check_model(str(path))


def _session(path: Path, threads: int = 2) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(
    path: Path,
    cat: npt.NDArray[Any],
    num: npt.NDArray[Any],
    mask: npt.NDArray[Any],
    batch: int = 1024,
) -> npt.NDArray[np.float32]:
    sess = _session(path)
    outs = []
    for s in range(0, len(cat), batch):
        feed = {
            "cat": cat[s : s + batch].astype(np.int64),
            "num": num[s : s + batch].astype(np.float32),
            "mask": mask[s : s + batch].astype(np.float32),
        }
        outs.append(sess.run(["logits"], feed)[0])
    return np.concatenate(outs).astype(np.float32)


def parity(
    net: nn.Module,
    path: Path,
    cat: npt.NDArray[Any],
    num: npt.NDArray[Any],
    mask: npt.NDArray[Any],
) -> float:
    """Max absolute logit difference between torch and ONNX Runtime on the same inputs."""
    from model.train import predict_logits

    ref = predict_logits(net, (cat, num, mask))
    got = run_onnx(path, cat, num, mask)
    return float(np.abs(ref - got).max())


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic INT8 weight quantisation of MatMul/Gemm for CPU (activations stay fp32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(
            str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"]
        )
