"""Translate every pair of a PAIRS.csv into a folder: resumable, one process or many (🤗 accelerate).

``DIR/<name>.png`` per pair, each written to a temporary file and renamed, so a killed run
leaves only whole images and loses at most the pairs in flight; a pair whose image exists is
skipped. Under ``accelerate launch`` the pair list (in file order, the same in every process)
is split between the processes with ``PartialState.split_between_processes``: each pair is
done by exactly one process, and (without a ``generator``, the pipeline being deterministic)
the images are those of a one-process run. ``DIR/manifest.jsonl`` gets one JSON line per pair
handled (``name``, ``line``, ``status`` done / skipped / failed, ``seconds``, ``reason``,
``process``), appended by every process.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .pairs import BadRow, Pair

__all__ = ["DatasetRunSummary", "translate_dataset", "output_path"]


@dataclass
class DatasetRunSummary:
    """What one process (or, after :meth:`merge`, the whole run) did."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name or "line N", reason)
    seconds: float = 0.0

    @classmethod
    def merge(cls, summaries: Sequence["DatasetRunSummary"]) -> "DatasetRunSummary":
        """The whole run's summary from every process's (seconds: the slowest process's)."""
        return cls(
            sum(o.done for o in summaries), sum(o.skipped for o in summaries),
            [f for o in summaries for f in o.failed], max((o.seconds for o in summaries), default=0.0),
        )  # fmt: skip

    def line(self) -> str:
        rate = f", {60 * self.done / self.seconds:.1f} pairs/min" if self.done and self.seconds else ""
        return f"{self.done} done, {self.skipped} skipped, {len(self.failed)} failed in {self.seconds:.1f} s{rate}"


def output_path(folder: str | os.PathLike, pair: Pair) -> Path:
    """Where ``pair``'s image goes: ``folder/<name>.png``."""
    return Path(folder) / f"{pair.name}.png"


def _structure(path: Path | None) -> Any:
    """A structure file as the pipeline takes it: ``.npy`` label arrays loaded, everything else by path."""
    if path is None:
        return None
    return np.load(path).astype("float32") if path.suffix.lower() == ".npy" else str(path)


def _save_atomically(image, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    image.save(temporary, format="PNG")
    os.replace(temporary, path)


class _Manifest:
    """Appends one JSON line per pair to ``manifest.jsonl``; one ``write`` per line on an O_APPEND file, so the
    lines of several processes never interleave."""

    def __init__(self, path: Path, process: int):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.process = process

    def write(self, pair: Pair | None, status: str, seconds: float = 0.0, reason: str = "", line: int | None = None) -> None:
        record = {
            "name": pair.name if pair else None, "line": pair.line if pair else line, "status": status,
            "seconds": round(seconds, 4), "reason": reason, "process": self.process,
        }  # fmt: skip
        os.write(self.fd, (json.dumps(record) + "\n").encode())

    def close(self) -> None:
        os.close(self.fd)


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"[:300]


def translate_dataset(
    pipe: Any,
    pairs: Sequence[Pair],
    output_dir: str | os.PathLike,
    *,
    bad_rows: Sequence[BadRow] = (),
    batch_size: int = 1,
    height: int | None = None,
    width: int | None = None,
    warps: bool = False,
    progress: bool = True,
    state: Any = None,
    on_pair_done: Callable[[Pair], None] | None = None,
) -> DatasetRunSummary:
    """Translate this process's share of ``pairs`` into ``output_dir``; returns this process's summary.

    Args:
        pipe: a :class:`~pipeline_cocosnet.CoCosNetPipeline` on this process's device.
        pairs: every pair of the run, in the same order in every process.
        bad_rows: rows the reader skipped; the main process records them in the manifest as failed.
        batch_size: pairs per pipeline call (a batch that fails is retried pair by pair, so one bad
            pair fails alone).
        height, width: the working size (default: the model's).
        warps: also write ``output_dir/warps/<name>_level<k>.png``, coarsest level first.
        state: an accelerate ``PartialState`` (default: the current one; one process without a launcher).
        on_pair_done: called after each pair is written (tests use it to stop a run part-way).
    """
    from accelerate import PartialState
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    state = state if state is not None else PartialState()
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    if warps:
        (output / "warps").mkdir(exist_ok=True)
    manifest = _Manifest(output / "manifest.jsonl", state.process_index)
    summary = DatasetRunSummary()
    started = time.perf_counter()
    if state.is_main_process:
        for row in bad_rows:
            manifest.write(None, "failed", reason=row.reason, line=row.line)
            summary.failed.append((f"line {row.line}", row.reason))
    with state.split_between_processes(list(pairs)) as mine:
        todo = []
        for pair in mine:
            if output_path(output, pair).is_file():
                manifest.write(pair, "skipped", reason="already done")
                summary.skipped += 1
            else:
                todo.append(pair)
        bar = tqdm(total=len(todo), desc="translating", unit="pair", disable=not (progress and state.is_main_process))
        try:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                groups = [batch] if len(batch) == 1 or len({p.exemplar_structure is None for p in batch}) == 1 else [[p] for p in batch]
                for group in groups:
                    _run_group(pipe, group, output, height, width, warps, manifest, summary, on_pair_done)
                    bar.update(len(group))
        finally:
            bar.close()
            manifest.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _run_group(pipe, group: list[Pair], output: Path, height, width, warps: bool, manifest: _Manifest, summary, on_pair_done) -> None:
    """One pipeline call for ``group``; when it fails with several pairs, each pair again alone."""
    started = time.perf_counter()
    try:
        result = pipe(
            [_structure(p.structure) for p in group], [str(p.exemplar) for p in group],
            None if group[0].exemplar_structure is None else [_structure(p.exemplar_structure) for p in group],
            height=height, width=width, return_warps=warps,
        )  # fmt: skip
    except Exception as error:  # noqa: BLE001 - a pair that cannot be translated is reported, the run goes on
        if len(group) > 1:
            for pair in group:
                _run_group(pipe, [pair], output, height, width, warps, manifest, summary, on_pair_done)
            return
        manifest.write(group[0], "failed", time.perf_counter() - started, _one_line(error))
        summary.failed.append((group[0].name, _one_line(error)))
        return
    seconds = (time.perf_counter() - started) / len(group)
    for k, pair in enumerate(group):
        if warps:  # before the image: the image's presence is what marks the pair done
            for level, warp in enumerate(result.warps):
                _save_atomically(warp[k], output / "warps" / f"{pair.name}_level{level}.png")
        _save_atomically(result.images[k], output_path(output, pair))
        manifest.write(pair, "done", seconds)
        summary.done += 1
        if on_pair_done is not None:
            on_pair_done(pair)
