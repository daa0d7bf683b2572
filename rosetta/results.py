"""results.jsonl: one JSON record per cell, appended as each cell ends.

Each record is written with a single write() of one line and flushed to disk, so a run killed at any
moment leaves every finished record readable; a torn last line is skipped by the reader, with a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from rosetta.errors import UsageError

SCHEMA_VERSION = 1


def append_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, allow_nan=True) + "\n"
    with open(path, "a", encoding="utf-8") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())


def read_records(path: Path) -> list[dict]:
    """Records of a results.jsonl; a missing or unreadable file is a UsageError that says what to do."""
    if path.is_dir():
        path = path / "results.jsonl"
    if not path.exists():
        raise UsageError(f"{path} does not exist; give a run directory made by `rosetta run` "
                         f"(it holds results.jsonl)")
    records = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # the run was killed while writing its last record
                warnings.warn(f"{path}:{number}: incomplete last record skipped")
                continue
            raise UsageError(f"{path}:{number} is not a JSON record; the file is corrupt "
                             f"(rerun the cells with `rosetta run`)") from None
        if not isinstance(record, dict) or "task" not in record or "backend" not in record:
            raise UsageError(f"{path}:{number} is not a rosetta record (no task or backend field)")
        if record.get("schema", 0) > SCHEMA_VERSION:
            raise UsageError(f"{path}:{number} has schema {record['schema']}, newer than this rosetta "
                             f"({SCHEMA_VERSION}); upgrade rosetta to read it")
        records.append(record)
    if not records:
        raise UsageError(f"{path} holds no records; run `rosetta run` first")
    return records


def repair(path: Path) -> list[dict]:
    """Before appending to the results of an interrupted run: drop a torn last line (atomically), so the
    next record starts on a line of its own. Returns the complete records."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    complete = lines[:-1] + [line for line in lines[-1:] if not _torn(line)]
    if len(complete) != len(lines) or (text and not text.endswith("\n")):
        temporary = path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(line + "\n" for line in complete), encoding="utf-8")
        os.replace(temporary, path)
    return read_records(path) if any(line.strip() for line in complete) else []


def _torn(line: str) -> bool:
    try:
        json.loads(line)
        return False
    except json.JSONDecodeError:
        return True
