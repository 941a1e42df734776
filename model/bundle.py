"""Model bundles: a directory of ONNX and safetensors files described by ``manifest.json``.

The manifest lists every file with its sha256 and size. The version id is a hash of the
manifest's content (file hashes included, creation time excluded), so two identical
builds share a version and any change to a file or to the metadata (thresholds,
calibration) changes it. Loading verifies everything and refuses a bundle that does not
match. Nothing is unpickled: weights are safetensors, graphs are ONNX, the rest is JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT = "fraudstream-model-bundle/1"
_VOLATILE = ("version", "created_at")


class BundleError(ValueError):
    """A bundle that is missing, malformed or does not match its manifest."""


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def file(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise BundleError(f"model bundle {self.path}: has no file {name!r}")
        return self.path / name

    def has(self, name: str) -> bool:
        return name in self.manifest["files"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_version(manifest: Mapping[str, Any]) -> str:
    """The version id: sha256 of the canonical manifest without volatile fields."""
    body = {k: v for k, v in manifest.items() if k not in _VOLATILE}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:20]


def write_bundle(
    out: Path, files: Mapping[str, Path], meta: Mapping[str, Any], *, overwrite: bool = True
) -> Bundle:
    """Copy ``files`` (bundle name -> source path) into ``out`` and write the manifest.

    The directory is assembled beside ``out`` and renamed into place, so a reader never
    sees a half-written bundle.
    """
    for name in files:
        if name == MANIFEST or "/" in name or name.startswith("."):
            raise BundleError(f"invalid bundle file name {name!r}")
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    entries: dict[str, dict[str, Any]] = {}
    for name, src in sorted(files.items()):
        dst = tmp / name
        shutil.copyfile(src, dst)
        entries[name] = {"sha256": sha256_file(dst), "bytes": dst.stat().st_size}
    manifest: dict[str, Any] = {"format": FORMAT, **meta, "files": entries}
    manifest["created_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    manifest["version"] = content_version(manifest)
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False)
    (tmp / MANIFEST).write_text(text + "\n", encoding="utf-8")
    if out.exists():
        if not overwrite:
            shutil.rmtree(tmp)
            raise BundleError(f"{out} already exists")
        shutil.rmtree(out)
    tmp.rename(out)
    return Bundle(out, manifest)


def _read_manifest(path: Path) -> dict[str, Any]:
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"model bundle {path}: no {MANIFEST} (not a model bundle directory)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"model bundle {path}: {MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"model bundle {path}: {MANIFEST} is not a {FORMAT} manifest")
    if not isinstance(manifest.get("files"), dict) or "version" not in manifest:
        raise BundleError(f"model bundle {path}: {MANIFEST} lacks 'files' or 'version'")
    return manifest


def peek_manifest(path: Path | str) -> dict[str, Any] | None:
    """A bundle's manifest, unverified; None if there is none to read."""
    try:
        return _read_manifest(Path(path))
    except (BundleError, OSError):
        return None


def bundle_version(path: Path | str) -> str | None:
    """The version a bundle's manifest claims, unverified; None if there is none to read.
    Cheap enough to poll: a running worker reloads when it changes."""
    manifest = peek_manifest(path)
    return None if manifest is None else str(manifest["version"])


def load_bundle(path: Path | str) -> Bundle:
    """Read and verify a bundle; raise ``BundleError`` naming the first file that fails."""
    path = Path(path)
    manifest = _read_manifest(path)
    for name, entry in sorted(manifest["files"].items()):
        fpath = path / name
        if "/" in name or not fpath.is_file():
            raise BundleError(
                f"model bundle {path}: file {name!r} listed in the manifest is missing"
            )
        actual = sha256_file(fpath)
        if actual != entry.get("sha256"):
            raise BundleError(
                f"model bundle {path}: file {name!r} fails its sha256 check (manifest "
                f"{str(entry.get('sha256'))[:12]}..., file {actual[:12]}...); refusing a "
                "modified or corrupt bundle"
            )
    expected = content_version(manifest)
    if manifest["version"] != expected:
        raise BundleError(
            f"model bundle {path}: {MANIFEST} content does not match its version id "
            f"{manifest['version']!r}; refusing a modified manifest"
        )
    return Bundle(path, manifest)


def promote_bundle(challenger: Path, champion: Path) -> Path:
    """Put ``challenger`` where workers load ``champion`` from, so hot reload picks it up.

    A symlink is re-pointed with one rename (atomic); a directory is moved aside to
    ``.<name>.previous-<version>`` (kept for a rollback) and the challenger renamed into
    its place, so a worker polling in between sees no manifest and keeps the old model.
    Returns where the challenger now lives."""
    load_bundle(challenger)  # never promote a bundle that would not load
    version = bundle_version(challenger)
    if champion.is_symlink():
        target = champion.resolve().parent / f"{champion.name}-{version}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(challenger), target)
        link = champion.with_name(f".{champion.name}.link-{os.getpid()}")
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        os.replace(link, champion)
        return target
    staged = champion.with_name(f".{champion.name}.next-{os.getpid()}")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.move(str(challenger), staged)
    if champion.exists():
        previous = champion.with_name(f".{champion.name}.previous-{bundle_version(champion)}")
        shutil.rmtree(previous, ignore_errors=True)
        champion.rename(previous)
    staged.rename(champion)
    return champion
