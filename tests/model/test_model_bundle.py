from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.bundle import MANIFEST, BundleError, load_bundle, write_bundle


def _files(tmp: Path) -> dict[str, Path]:
    (tmp / "src").mkdir(exist_ok=True)
    a, b = tmp / "src" / "a.onnx", tmp / "src" / "w.safetensors"
    a.write_bytes(b"graph bytes")
    b.write_bytes(b"weight bytes")
    return {"student.onnx": a, "student.safetensors": b}


META = {"T": 32, "thresholds": {"fraud": {"threshold": 0.8}}}


def test_round_trip_and_content_version(tmp_path: Path) -> None:
    files = _files(tmp_path)
    one = write_bundle(tmp_path / "one", files, META)
    two = write_bundle(tmp_path / "two", files, META)
    loaded = load_bundle(tmp_path / "one")
    assert loaded.version == one.version == two.version  # same content, same id
    assert loaded.manifest["T"] == 32
    assert set(loaded.manifest["files"]) == {"student.onnx", "student.safetensors"}
    assert loaded.file("student.onnx").read_bytes() == b"graph bytes"
    other = write_bundle(tmp_path / "three", files, {**META, "T": 16})
    assert other.version != one.version


def test_tampered_file_is_refused_by_name(tmp_path: Path) -> None:
    write_bundle(tmp_path / "b", _files(tmp_path), META)
    (tmp_path / "b" / "student.onnx").write_bytes(b"graph bytes, changed")
    with pytest.raises(BundleError, match=r"'student\.onnx' fails its sha256 check"):
        load_bundle(tmp_path / "b")


def test_tampered_manifest_is_refused(tmp_path: Path) -> None:
    write_bundle(tmp_path / "b", _files(tmp_path), META)
    path = tmp_path / "b" / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["thresholds"]["fraud"]["threshold"] = 0.01
    path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="does not match its version id"):
        load_bundle(tmp_path / "b")


def test_missing_file_and_not_a_bundle(tmp_path: Path) -> None:
    write_bundle(tmp_path / "b", _files(tmp_path), META)
    (tmp_path / "b" / "student.safetensors").unlink()
    with pytest.raises(BundleError, match=r"'student\.safetensors' .* missing"):
        load_bundle(tmp_path / "b")
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path / "c")


def test_rejects_bad_names_and_replaces_atomically(tmp_path: Path) -> None:
    files = _files(tmp_path)
    with pytest.raises(BundleError, match="invalid bundle file name"):
        write_bundle(tmp_path / "b", {"../x": files["student.onnx"]}, META)
    write_bundle(tmp_path / "b", files, META)
    write_bundle(tmp_path / "b", files, {**META, "T": 8})
    assert load_bundle(tmp_path / "b").manifest["T"] == 8
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(BundleError, match="already exists"):
        write_bundle(tmp_path / "b", files, META, overwrite=False)
