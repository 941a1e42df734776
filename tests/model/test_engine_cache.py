"""TensorRT engines cached next to a bundle under a name hashed from what they depend on.
The helpers run anywhere; building and loading an engine needs a GPU (marked ``gpu``)."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from model.bundle import load_bundle
from model.shipped import SHIPPED_DIR
from model.trt import engine_cache_dir, engine_key, load_profile, read_engine, write_engine


def test_the_engine_name_changes_with_everything_it_depends_on() -> None:
    bundle, profile = load_bundle(SHIPPED_DIR), load_profile()
    base = engine_key(bundle, profile, True, "10.8.0", "NVIDIA H100 sm90")
    assert base == engine_key(bundle, profile, True, "10.8.0", "NVIDIA H100 sm90")
    others = {
        engine_key(bundle, profile, False, "10.8.0", "NVIDIA H100 sm90"),
        engine_key(bundle, profile, True, "10.9.0", "NVIDIA H100 sm90"),
        engine_key(bundle, profile, True, "10.8.0", "NVIDIA H200 sm90"),
        engine_key(bundle, replace(profile, workspace_mb=1), True, "10.8.0", "NVIDIA H100 sm90"),
    }
    assert base not in others and len(others) == 4


def test_a_cached_engine_is_used_only_while_it_matches_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "engines" / "student-abc.plan"
    assert read_engine(path) is None
    write_engine(path, b"plan bytes")
    assert read_engine(path) == b"plan bytes"
    sidecar = path.with_name(path.name + ".sha256").read_text().strip()
    assert sidecar == hashlib.sha256(b"plan bytes").hexdigest()
    path.write_bytes(b"plan bytez")  # a torn or tampered file is rebuilt, not loaded
    assert read_engine(path) is None


def test_engines_sit_beside_a_writable_bundle(tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(SHIPPED_DIR, copy)
    assert engine_cache_dir(load_bundle(copy)) == copy / "engines"
    load_bundle(copy)  # files the manifest does not list leave the bundle valid


def test_engines_go_to_the_user_cache_beside_a_read_only_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = load_bundle(SHIPPED_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr("model.trt.os.access", lambda path, mode: False)
    assert engine_cache_dir(bundle) == tmp_path / "fraudstream" / "engines" / bundle.version


@pytest.mark.gpu
def test_the_first_start_builds_and_caches_the_engine(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (the gpu extra)")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU visible")
    from model.trt import TensorRTScorer

    copy = tmp_path / "bundle"
    shutil.copytree(SHIPPED_DIR, copy)
    first = TensorRTScorer(load_bundle(copy))
    assert first.engine_path.parent == copy / "engines" and read_engine(first.engine_path)
    built_at = first.engine_path.stat().st_mtime_ns
    second = TensorRTScorer(load_bundle(copy))
    assert second.engine_path == first.engine_path
    assert second.engine_path.stat().st_mtime_ns == built_at  # loaded, not rebuilt
