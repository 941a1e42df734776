"""TensorRT FP16 engines built from the bundle's ONNX graph, and a scorer that runs them.

``tensorrt`` and CUDA (through torch) are imported inside functions only, so this module
imports cleanly on machines without a GPU. Engines are specific to a GPU and TensorRT
version, so they are built on the target machine at first start and cached (next to the
bundle, or in the user's cache when the bundle is read-only) under a name hashed from
the ONNX graph, TensorRT's version, the GPU and the profile, with the engine's own sha256
beside it; they are never shipped in the bundle. Their shapes (batch and T: min, opt,
max) and builder settings come from one file, build/tensorrt/profile.toml, read when an
engine is built or loaded (a wheel carries it as model/trt_profile.toml).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from model.bundle import Bundle
from model.features import MAX_T
from model.scorer import _Calibrated
from stream.core.extras import require

# The installed copy first, then the source tree's.
PROFILE_PATHS = (
    Path(__file__).with_name("trt_profile.toml"),
    Path(__file__).resolve().parents[1] / "build" / "tensorrt" / "profile.toml",
)


@dataclass(frozen=True)
class EngineProfile:
    batch: tuple[int, int, int]  # min, opt, max
    seq_len: tuple[int, int, int]
    fp16: bool
    workspace_mb: int

    def fits(self, batch: int, seq_len: int) -> bool:
        return batch <= self.batch[2] and seq_len <= self.seq_len[2]


def load_profile(path: Path | None = None) -> EngineProfile:
    """The engine profile from ``path``, else the first of ``PROFILE_PATHS`` that exists."""
    if path is None:
        path = next((p for p in PROFILE_PATHS if p.is_file()), PROFILE_PATHS[-1])
    with path.open("rb") as f:
        data = tomllib.load(f)
    profile = EngineProfile(
        batch=_shape(data, "batch", path),
        seq_len=_shape(data, "seq_len", path),
        fp16=bool(data["builder"]["fp16"]),
        workspace_mb=int(data["builder"]["workspace_mb"]),
    )
    if profile.seq_len[2] > MAX_T:
        raise ValueError(f"{path}: seq_len max {profile.seq_len[2]} exceeds MAX_T {MAX_T}")
    return profile


def _shape(data: dict[str, Any], name: str, path: Path) -> tuple[int, int, int]:
    table = data[name]
    shape = (int(table["min"]), int(table["opt"]), int(table["max"]))
    if not 1 <= shape[0] <= shape[1] <= shape[2]:
        raise ValueError(f"{path}: [{name}] needs 1 <= min <= opt <= max, got {shape}")
    return shape


def build_engine(
    onnx_path: Path,
    n_cat: int,
    n_num: int,
    *,
    fp16: bool | None = None,
    profile: EngineProfile | None = None,
) -> bytes:
    """Serialized TensorRT engine with a dynamic batch and sequence length profile
    (``load_profile()`` by default; ``fp16`` overrides its builder setting)."""
    import tensorrt as trt

    profile = profile or load_profile()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, profile.workspace_mb << 20)
    if profile.fp16 if fp16 is None else fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    shapes = builder.create_optimization_profile()
    widths = {"cat": (n_cat,), "num": (n_num,), "mask": ()}
    for name, tail in widths.items():
        low, opt, high = (
            (b, t, *tail) for b, t in zip(profile.batch, profile.seq_len, strict=True)
        )
        shapes.set_shape(name, low, opt, high)
    config.add_optimization_profile(shapes)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    return bytes(serialized)


def _gpu_name(torch: Any) -> str:
    major, minor = torch.cuda.get_device_capability()
    return f"{torch.cuda.get_device_name()} sm{major}{minor}"


def engine_key(
    bundle: Bundle, profile: EngineProfile, fp16: bool, trt_version: str, gpu: str
) -> str:
    """What an engine depends on, hashed: the ONNX graph (by its manifest hash), TensorRT's
    version, the GPU and the profile. Any change names a different engine file."""
    onnx_sha = bundle.manifest["files"][bundle.manifest["student"]["onnx"]]["sha256"]
    parts = [onnx_sha, trt_version, gpu, repr(profile), f"fp16={fp16}"]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def engine_cache_dir(bundle: Bundle) -> Path:
    """``engines/`` next to the bundle where it is writable (not part of its manifest), else
    the user's cache (an installed package's shipped bundle is often read-only)."""
    beside = bundle.path / "engines"
    if os.access(bundle.path, os.W_OK) or os.access(beside, os.W_OK):
        return beside
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "fraudstream" / "engines" / bundle.version


def read_engine(path: Path) -> bytes | None:
    """A cached engine whose bytes match the sha256 recorded beside it; None otherwise."""
    sidecar = path.with_name(path.name + ".sha256")
    try:
        plan, expected = path.read_bytes(), sidecar.read_text().strip()
    except OSError:
        return None
    return plan if hashlib.sha256(plan).hexdigest() == expected else None


def write_engine(path: Path, plan: bytes) -> None:
    """Write the engine and its sha256 atomically (rename), so a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, data in ((path, plan), (path.with_name(path.name + ".sha256"), None)):
        body = data if data is not None else hashlib.sha256(plan).hexdigest().encode() + b"\n"
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_bytes(body)
        tmp.replace(target)


class TensorRTScorer(_Calibrated):
    """Runs the student on an NVIDIA GPU through a TensorRT engine (FP16 unless the engine
    profile or ``fp16`` says otherwise)."""

    def __init__(
        self, bundle: Bundle, engine_path: Path | None = None, fp16: bool | None = None
    ) -> None:
        super().__init__(bundle)
        require("the tensorrt backend", "tensorrt", "torch")
        import tensorrt as trt
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("TensorRT backend needs a CUDA GPU; none is visible")
        self.profile = load_profile()
        fp16 = self.profile.fp16 if fp16 is None else fp16
        if engine_path is None:
            key = engine_key(bundle, self.profile, fp16, trt.__version__, _gpu_name(torch))
            engine_path = engine_cache_dir(bundle) / f"student-{key}.plan"
        plan = read_engine(engine_path)
        if plan is None:
            onnx_path = bundle.file(bundle.manifest["student"]["onnx"])
            plan = build_engine(
                onnx_path, self.spec.n_cat, self.spec.n_num, fp16=fp16, profile=self.profile
            )
            write_engine(engine_path, plan)
        self.engine_path = engine_path
        self._torch = torch
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        self.backend = "tensorrt-fp16" if fp16 else "tensorrt-fp32"

    def logits(
        self,
        cat: npt.NDArray[np.int64],
        num: npt.NDArray[np.float32],
        mask: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.float32]:
        torch = self._torch
        if not self.profile.fits(cat.shape[0], cat.shape[1]):
            raise ValueError(f"batch {cat.shape[0]} or T {cat.shape[1]} beyond the engine profile")
        inputs = {k: torch.from_numpy(v) for k, v in self._inputs(cat, num, mask).items()}
        out = torch.empty((cat.shape[0], 3), dtype=torch.float32, device="cuda")
        with torch.cuda.stream(self.stream):
            dev = {k: v.to("cuda", non_blocking=True) for k, v in inputs.items()}
            for name, tensor in dev.items():
                self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
            self.context.set_tensor_address("logits", out.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
        self.stream.synchronize()
        result: npt.NDArray[np.float32] = out.cpu().numpy()
        return result


def parity_check(
    bundle: Bundle,
    cat: npt.NDArray[np.int64],
    num: npt.NDArray[np.float32],
    mask: npt.NDArray[np.bool_],
) -> dict[str, float]:
    """Max absolute difference between TensorRT FP16 and ONNX Runtime fp32 outputs."""
    from model.scorer import OnnxScorer

    ref = OnnxScorer(bundle)
    trt_scorer = TensorRTScorer(bundle)
    a, b = ref.logits(cat, num, mask), trt_scorer.logits(cat, num, mask)
    pa, pb = ref.score_batch(cat, num, mask), trt_scorer.score_batch(cat, num, mask)
    prob_diff = max(float(np.abs(pa[k] - pb[k]).max()) for k in ref.kinds) if ref.kinds else 0.0
    return {"max_abs_logit_diff": float(np.abs(a - b).max()), "max_abs_prob_diff": prob_diff}
