"""Atomic training checkpoints: write aside, verify by manifest, rename into place, prune safely.

A checkpoint is the folder ``OUTPUT/checkpoints/step-NNNNNNN``. It is written into a hidden
sibling ``.step-NNNNNNN.tmp``; every file is flushed to disk, then a manifest
(``checkpoint-manifest.json``: the size and SHA-256 of every file) is written LAST, and only then
the folder is renamed to ``step-NNNNNNN``. A process killed at any point leaves either no
``step-N`` folder or a complete one. ``--resume latest`` still verifies the manifest (a disk can
lose data after the rename, a copy can be cut short) and takes the newest checkpoint that passes,
saying which newer ones it skipped and why (docs/training.md, "Interruption and resume").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Optional

__all__ = [
    "MANIFEST",
    "CHECKPOINT_PATTERN",
    "checkpoint_folder",
    "temporary_folder",
    "list_checkpoints",
    "write_manifest",
    "verify_checkpoint",
    "commit_checkpoint",
    "latest_complete_checkpoint",
    "remove_temporaries",
    "prune_checkpoints",
    "pause_for_tests",
]

logger = logging.getLogger("pipeline_cocosnet.training")

#: written last into a checkpoint folder: {"format": 1, "step": N, "files": {relative path: {"size", "sha256"}}}
MANIFEST = "checkpoint-manifest.json"
CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)$")
TEMPORARY_PATTERN = re.compile(r"^\.step-(\d+)\.(tmp|replaced)$")
#: test hook: pause (sleep) inside the write of the checkpoint at this step, after the state files and
#: before the manifest, so a test can kill the process there
PAUSE_ENV = "PIPELINE_COCOSNET_TEST_PAUSE_IN_CHECKPOINT_WRITE"


def checkpoint_folder(checkpoints_dir: Path, step: int) -> Path:
    """``checkpoints_dir/step-NNNNNNN`` (step zero-padded to 7 digits)."""
    return Path(checkpoints_dir) / f"step-{step:07d}"


def temporary_folder(checkpoints_dir: Path, step: int) -> Path:
    """The hidden sibling a checkpoint is written into before it is renamed into place."""
    return Path(checkpoints_dir) / f".step-{step:07d}.tmp"


def list_checkpoints(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    """Every ``step-N`` folder (complete or not) as (step, path), oldest first; temporaries are not listed."""
    folder = Path(checkpoints_dir)
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name)) and p.is_dir()]
    return sorted(found)


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() and hasattr(os, "O_DIRECTORY") else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # some file systems refuse to open folders; the data itself was synced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path, step: int) -> Path:
    """Flush every file under ``folder`` to disk, then write the manifest (sizes + SHA-256) and flush it."""
    folder = Path(folder)
    files = {}
    for path in _files(folder):
        _fsync(path)
        files[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    for sub in sorted({p.parent for p in _files(folder)} | {folder}, key=lambda p: -len(p.parts)):
        _fsync(sub)
    partial = folder / (MANIFEST + ".partial")
    with partial.open("w") as f:
        json.dump({"format": 1, "step": step, "files": files}, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, folder / MANIFEST)
    _fsync(folder)
    return folder / MANIFEST


def verify_checkpoint(folder: Path, check_hashes: bool = True) -> Optional[str]:
    """``None`` when ``folder`` is a complete checkpoint; else why not, in one line.

    Complete: a readable manifest, and every file it lists present with its size (and SHA-256).
    """
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return f"no {MANIFEST} (the write did not finish, or it predates manifests)"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError, OSError) as error:
        return f"unreadable {MANIFEST}: {error}"
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != entry["size"]:
            return f"{name} has {size} bytes, the manifest says {entry['size']}"
    if check_hashes:
        for name, entry in files.items():
            if _sha256(folder / name) != entry["sha256"]:
                return f"{name} does not match its SHA-256 in the manifest"
    return None


def commit_checkpoint(temporary: Path, final: Path) -> Path:
    """Rename a finished temporary folder to ``final``, replacing a folder already there (e.g. an incomplete one)."""
    temporary, final = Path(temporary), Path(final)
    aside = None
    if final.exists():
        aside = final.with_name(f".{final.name}.replaced")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
    os.replace(temporary, final)
    _fsync(final.parent)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return final


def latest_complete_checkpoint(checkpoints_dir: Path) -> tuple[Optional[Path], list[tuple[Path, str]]]:
    """The newest complete checkpoint (or ``None``), and the newer ones skipped with the reason for each."""
    skipped: list[tuple[Path, str]] = []
    for _, folder in reversed(list_checkpoints(checkpoints_dir)):
        problem = verify_checkpoint(folder)
        if problem is None:
            return folder, skipped
        skipped.append((folder, problem))
    return None, skipped


def remove_temporaries(checkpoints_dir: Path) -> list[Path]:
    """Delete hidden ``.step-N.tmp`` / ``.step-N.replaced`` folders left by a killed write; returns them."""
    folder = Path(checkpoints_dir)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if TEMPORARY_PATTERN.match(p.name)]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def prune_checkpoints(checkpoints_dir: Path, keep: int, newest: Path) -> list[Path]:
    """Keep the ``keep`` newest checkpoints up to ``newest`` (just completed; always kept); delete older ones.

    Folders of later steps (left from a run that went further before a resume) are not touched.
    Returns the deleted folders.
    """
    newest = Path(newest)
    if keep < 1:
        raise ValueError(f"checkpoints_total_limit must be at least 1, got {keep}")
    step = int(CHECKPOINT_PATTERN.match(newest.name)[1])
    older = [p for s, p in list_checkpoints(checkpoints_dir) if s < step]
    doomed = older[: max(0, len(older) - (keep - 1))]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def pause_for_tests(step: int, temporary: Path) -> None:
    """Test hook (``$PIPELINE_COCOSNET_TEST_PAUSE_IN_CHECKPOINT_WRITE=N``): sleep inside the write of step N."""
    wanted = os.environ.get(PAUSE_ENV)
    if wanted and wanted.strip() == str(step):
        import time

        print(f"test hook: pausing inside the write of {temporary}", flush=True)
        time.sleep(600)
