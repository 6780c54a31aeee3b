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


def load_problems(path: str | Path, skip_bad_rows: bool = False) -> tuple[list[Problem], list[str]]:
    """Read a JSONL file. Bad rows raise :class:`DataError` unless ``skip_bad_rows``."""
    problems, bad = [], []
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
            problem = None
            for field in ("prompt", "answer"):
                if not isinstance(row.get(field), str):
                    bad.append(f"{where}: field '{field}' missing or not a string")
                    break
            else:
                if not row["prompt"].strip():
                    bad.append(f"{where}: field 'prompt' is empty")
                else:
                    extra = {k: v for k, v in row.items() if k not in ("prompt", "answer")}
                    problem = Problem(row["prompt"], row["answer"], extra, number)
            if problem is not None:
                problems.append(problem)
    if bad and not skip_bad_rows:
        more = f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError("bad training rows:\n  " + "\n  ".join(bad[:5]) + more
                        + "\nFix them or pass --skip-bad-rows.")
    if not problems:
        raise DataError(f"{path}: no usable rows")
    return problems, bad
