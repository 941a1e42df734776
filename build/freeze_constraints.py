#!/usr/bin/env python3
"""Write build/constraints.txt: the installed version of every library fraudstream needs
(its dependencies and theirs, without the dev tools), as pins for pip's ``-c``.

    python build/freeze_constraints.py    # after installing what a bundle was built with

A bundle is reproducible only with the libraries it was built with: torch, transformers,
onnx, onnxruntime, numpy and lightgbm all change numbers between versions.
"""

from __future__ import annotations

import importlib.metadata as md
import platform
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

OUT = Path(__file__).resolve().parent / "constraints.txt"


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str) -> dict[str, str]:
    """Installed versions of ``root``'s requirements, transitively (extras left out)."""
    found: dict[str, str] = {}
    todo = [root]
    while todo:
        name = todo.pop()
        if _key(name) in found:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional or platform-specific requirement not installed here
        found[_key(name)] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    found.pop(_key(root), None)
    return found


def main() -> int:
    pins = closure("fraudstream")
    header = [
        "# Library versions model bundles are built with (build/freeze_constraints.py).",
        f"# Python {platform.python_version()} on {platform.system()} {platform.machine()}.",
        "# pip install -e . -c build/constraints.txt",
    ]
    OUT.write_text("\n".join([*header, *(f"{k}=={v}" for k, v in sorted(pins.items()))]) + "\n")
    print(f"{len(pins)} pins written to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
