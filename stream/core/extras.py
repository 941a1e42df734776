"""Optional dependency groups: which extra brings which library, and one clear line when a
command needs one that is not installed.

The base install scores with ONNX Runtime; training (``fraudstream build``) needs the
``train`` extra and the TensorRT backend the ``gpu`` extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from stream.core.cliutil import CommandError

# The extra that provides each optional top-level module.
EXTRA_OF = {
    "torch": "train",
    "transformers": "train",
    "safetensors": "train",
    "onnx": "train",
    "lightgbm": "train",
    "tqdm": "train",
    "tensorrt": "gpu",
}


class MissingExtra(CommandError, ImportError):
    """A command needs a library from an extra that is not installed."""


def install_hint(extra: str) -> str:
    return f"pip install 'fraudstream[{extra}]'"


def missing(*modules: str) -> list[str]:
    """Those of ``modules`` that cannot be imported here (without importing them)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(what: str, *modules: str) -> None:
    """Raise ``MissingExtra`` naming the extra to install when any of ``modules`` is absent."""
    absent = missing(*modules)
    if absent:
        extras = sorted({EXTRA_OF.get(m, "train") for m in absent})
        hint = " ".join(install_hint(e) for e in extras)
        raise MissingExtra(f"{what} needs {', '.join(absent)}, not installed: {hint}")


def import_extra(what: str, module: str) -> ModuleType:
    """``import module`` or raise ``MissingExtra`` saying which extra brings it."""
    require(what, module.split(".")[0])
    return importlib.import_module(module)
