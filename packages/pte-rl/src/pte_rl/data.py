"""Training data: JSONL rows with ``prompt`` and ``answer`` (extra fields reach the rewards)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """Bad training data; the message names file, line and field."""


@dataclass
class Problem:
    prompt: str
    answer: str
    extra: dict
    line: int | None = None


def read_jsonl(path: str | Path, required: tuple[str, ...], skip_bad_rows: bool = False):
    """Rows of a JSONL file whose ``required`` fields are strings (``prompt`` also non-empty).

    Each row gets ``_line``. Bad rows raise :class:`DataError` naming file, line and field,
    unless ``skip_bad_rows``; returns ``(rows, problems)`` where problems lists what was skipped.
    """
    rows, bad = [], []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                bad.append(f"{where}: invalid JSON ({err.msg})")
                continue
            if not isinstance(row, dict):
                bad.append(f"{where}: expected a JSON object")
                continue
            missing = [f for f in required if not isinstance(row.get(f), str)]
            if missing:
                bad.append(f"{where}: field '{missing[0]}' missing or not a string")
            elif "prompt" in required and not row["prompt"].strip():
                bad.append(f"{where}: field 'prompt' is empty")
            else:
                row["_line"] = number
                rows.append(row)
    if bad and not skip_bad_rows:
        more = f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError("bad rows, nothing was done:\n  " + "\n  ".join(bad[:5]) + more
                        + "\nFix them or pass --skip-bad-rows.")
    return rows, bad


def load_problems(path: str | Path, skip_bad_rows: bool = False) -> tuple[list[Problem], list[str]]:
    """Training problems from JSONL (``prompt``, ``answer``; other fields go to the rewards)."""
    rows, bad = read_jsonl(path, ("prompt", "answer"), skip_bad_rows)
    if not rows:
        raise DataError(f"{path}: no usable rows")
    problems = [Problem(r["prompt"], r["answer"], {k: v for k, v in r.items() if k not in ("prompt", "answer", "_line")},
                        r["_line"]) for r in rows]
    return problems, bad
