"""PAIRS.csv: the list of (structure, exemplar, exemplar structure) triples a dataset run translates.

The header is ``structure,exemplar,exemplar_structure`` with an optional ``name`` column
(the output file's stem; default: the data row's number, 1-based). Paths are relative to
the CSV's folder or absolute; ``exemplar_structure`` may be empty (the pipeline then
extracts it from the exemplar photo where the task can). A row that cannot be used (a
missing file, a wrong number of fields, a name used twice) is reported and skipped; a file
without the required columns is an error.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pair", "BadRow", "REQUIRED_COLUMNS", "read_pairs", "write_pairs"]

REQUIRED_COLUMNS = ("structure", "exemplar")
COLUMNS = ("name", "structure", "exemplar", "exemplar_structure")


@dataclass(frozen=True)
class Pair:
    """One row: where its inputs are and the output's stem (``DIR/<name>.png``)."""

    name: str
    structure: Path
    exemplar: Path
    exemplar_structure: Path | None
    #: the CSV line it came from (the header is line 1)
    line: int


@dataclass(frozen=True)
class BadRow:
    """A row that is skipped, and why (one line)."""

    line: int
    reason: str


def read_pairs(path: str | os.PathLike) -> tuple[list[Pair], list[BadRow]]:
    """The usable pairs of ``path`` in file order, and the rows skipped with their reasons.

    Raises ``ValueError`` (one line) when the file is missing, empty or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such pairs file: {path}")
    root = path.resolve().parent
    pairs: list[Pair] = []
    bad: list[BadRow] = []
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        header = [column.strip() for column in reader.fieldnames or []]
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise ValueError(
                f"{path}: the header must name the columns {','.join(REQUIRED_COLUMNS)}[,exemplar_structure][,name]; "
                f"missing: {', '.join(missing)} (header: {','.join(header) or 'none'})"
            )
        unknown = [column for column in header if column not in COLUMNS]
        if unknown:
            raise ValueError(f"{path}: unknown columns {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
        reader.fieldnames = header
        seen: set[str] = set()
        for number, row in enumerate(reader, 1):
            line = reader.line_num
            extra, given = row.pop(None, None) or [], [value for value in row.values() if value is not None]
            if extra or len(given) != len(header):
                bad.append(BadRow(line, f"{len(header)} fields expected ({','.join(header)}), got {len(given) + len(extra)}"))
                continue
            values = {key: (value or "").strip() for key, value in row.items()}
            name = values.get("name") or str(number)
            if name in seen:
                bad.append(BadRow(line, f"the name {name!r} is used by an earlier row"))
                continue
            if "/" in name or "\\" in name or name.startswith("."):
                bad.append(BadRow(line, f"the name {name!r} is not a plain file name"))
                continue
            files = {}
            for column in ("structure", "exemplar", "exemplar_structure"):
                value = values.get(column, "")
                if not value:
                    files[column] = None
                    continue
                file_path = Path(value).expanduser()
                files[column] = file_path if file_path.is_absolute() else root / file_path
            problems = [f"{column} is empty" for column in REQUIRED_COLUMNS if files[column] is None]
            problems += [f"no such {column} file: {value}" for column, value in files.items() if value is not None and not value.is_file()]
            if problems:
                bad.append(BadRow(line, "; ".join(problems)))
                continue
            seen.add(name)
            pairs.append(Pair(name, files["structure"], files["exemplar"], files["exemplar_structure"], line))
    return pairs, bad


def write_pairs(path: str | os.PathLike, rows: list[dict[str, str]]) -> Path:
    """Write ``rows`` (dicts with the CSV's columns) as a PAIRS.csv, paths relative to its folder where possible."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = path.resolve().parent
    columns = [column for column in COLUMNS if any(row.get(column) for row in rows)]

    def relative(value: str) -> str:
        try:
            return Path(value).resolve().relative_to(root).as_posix()
        except ValueError:
            return str(value)

    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: (row.get(c) or "") if c == "name" else relative(row[c]) if row.get(c) else "" for c in columns})
    return path
