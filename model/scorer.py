"""The ``Scorer`` interface and its CPU backends; the worker picks one at start-up.

Every backend takes the arrays from ``model.features`` stacked into a batch and returns
calibrated probabilities per kind the bundle was trained for (kinds without labels at build
time are absent: the stream keeps its rules for them). torch is imported only by
``TorchScorer``; TensorRT lives in ``model.trt`` and is imported only when asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from model.bundle import Bundle, BundleError, load_bundle
from model.calibrate import Platt
from model.features import KINDS, FeatureSpec
from stream.core.extras import require

ScoreDict = dict[str, npt.NDArray[np.float32]]
BACKENDS = ("auto", "onnx", "onnx-int8", "torch", "tensorrt")
log = logging.getLogger("fraudstream")


@runtime_checkable
class Scorer(Protocol):
    backend: str
    version: str
    kinds: tuple[str, ...]

    def score_batch(
        self,
        cat: npt.NDArray[np.int64],
        num: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_],
    ) -> ScoreDict: ...


class _Calibrated:
    """Shared bundle reading and logit -> probability mapping."""

    backend = "none"

    def __init__(self, bundle: Bundle, calibrated: Mapping[str, Any] | None = None) -> None:
        """``calibrated``: the graph's own ``calibration`` and ``thresholds`` where they are
        not the manifest's (the INT8 graph's), else the manifest's."""
        m = bundle.manifest
        self.bundle = bundle
        self.version = bundle.version
        self.spec = FeatureSpec.from_json(m["feature_spec"])
        self.T = int(m["T"])
        self.kinds = tuple(k for k in KINDS if m["kinds"][k]["source"] == "model")
        own = m if calibrated is None else calibrated
        self.calibration = {k: Platt.from_json(own["calibration"][k]) for k in self.kinds}
        self.thresholds = {k: float(own["thresholds"][k]["threshold"]) for k in self.kinds}

    def _check(self, cat: npt.NDArray[Any], num: npt.NDArray[Any], mask: npt.NDArray[Any]) -> None:
        if cat.ndim != 3 or cat.shape[2] != self.spec.n_cat or num.shape[2] != self.spec.n_num:
            raise ValueError(
                f"expected cat (B, T, {self.spec.n_cat}) and num (B, T, {self.spec.n_num}), "
                f"got {cat.shape} and {num.shape}"
            )
        if mask.shape != cat.shape[:2] or num.shape[:2] != cat.shape[:2]:
            raise ValueError(f"mask {mask.shape} and num {num.shape} disagree with cat {cat.shape}")

    def _inputs(
        self, cat: npt.NDArray[Any], num: npt.NDArray[Any], mask: npt.NDArray[Any]
    ) -> dict[str, npt.NDArray[Any]]:
        """Checked, contiguous inputs under the graph's names, in the dtypes it takes."""
        self._check(cat, num, mask)
        return {
            "cat": np.ascontiguousarray(cat, dtype=np.int64),
            "num": np.ascontiguousarray(num, dtype=np.float32),
            "mask": mask.astype(np.float32),
        }

    def logits(
        self,
        cat: npt.NDArray[np.int64],
        num: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.float32]:
        raise NotImplementedError  # each backend runs the student its own way

    def score_batch(
        self,
        cat: npt.NDArray[np.int64],
        num: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_],
    ) -> ScoreDict:
        return self._probabilities(self.logits(cat, num, mask))

    def _probabilities(self, logits: npt.NDArray[Any]) -> ScoreDict:
        return {
            k: self.calibration[k].apply(logits[:, KINDS.index(k)]).astype(np.float32)
            for k in self.kinds
        }


def usable_cores() -> int:
    """The cores this process may run on (``taskset`` narrows them), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxScorer(_Calibrated):
    """ONNX Runtime on CPU; ``int8`` selects the dynamically quantised graph."""

    def __init__(self, bundle: Bundle, threads: int | None = None, int8: bool = False) -> None:
        own = bundle.manifest["student"].get("onnx_int8_calibration") if int8 else None
        if int8 and own is None:
            # Bundles built before the INT8 graph had its own calibration: the float
            # graph's thresholds, which its probabilities miss by up to ~0.1.
            log.warning(
                "model bundle %s: no calibration of its INT8 graph; using the float graph's",
                bundle.path,
            )
        super().__init__(bundle, own)
        import onnxruntime as ort

        key = "onnx_int8" if int8 else "onnx"
        name = bundle.manifest["student"].get(key)
        if not name:
            raise BundleError(f"model bundle {bundle.path}: no {key} graph in this bundle")
        opts = ort.SessionOptions()
        # As many threads as the cores this process may run on (at most 2), and no spinning:
        # pinned to one core, two spinning threads made every call 2-2.6x slower, and on a
        # shared machine a spinning thread takes the cycles the event loop needs.
        opts.intra_op_num_threads = threads or min(2, usable_cores())
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(bundle.file(name)), opts, providers=["CPUExecutionProvider"]
        )
        self.backend = "onnx-int8" if int8 else "onnx"

    def logits(
        self,
        cat: npt.NDArray[np.int64],
        num: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = self.session.run(["logits"], self._inputs(cat, num, mask))[0]
        return out


class TorchScorer(_Calibrated):
    """The student in torch, rebuilt from the manifest and safetensors weights."""

    def __init__(self, bundle: Bundle, device: str = "cpu", threads: int | None = None) -> None:
        super().__init__(bundle)
        require("the torch backend", "torch", "safetensors")
        import torch

        from model.nets import load_weights

        if threads:
            torch.set_num_threads(threads)
        student = bundle.manifest["student"]
        self.net = load_weights(student["arch"], bundle.file(student["weights"])).to(device)
        self.device = device
        self.backend = "torch"

    def logits(
        self,
        cat: npt.NDArray[np.int64],
        num: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.float32]:
        import torch

        inputs = self._inputs(cat, num, mask)
        with torch.inference_mode():
            out = self.net(
                *(torch.from_numpy(inputs[k]).to(self.device) for k in ("cat", "num", "mask"))
            )
        result: npt.NDArray[np.float32] = out.float().cpu().numpy()
        return result


def _gpu_available() -> bool:
    try:
        import tensorrt  # noqa: F401
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def load_scorer(
    bundle_dir: Path | str, backend: str = "auto", threads: int | None = None
) -> Scorer:
    """Verify the bundle and open a backend: auto is TensorRT on a GPU, else ONNX Runtime."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown scorer backend {backend!r}; choose from {', '.join(BACKENDS)}")
    bundle = load_bundle(bundle_dir)
    if backend == "auto":
        backend = "tensorrt" if _gpu_available() else "onnx"
    if backend == "tensorrt":
        from model.trt import TensorRTScorer

        return TensorRTScorer(bundle)
    if backend == "torch":
        return TorchScorer(bundle, threads=threads)
    return OnnxScorer(bundle, threads=threads, int8=backend == "onnx-int8")
