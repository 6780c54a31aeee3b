"""Data rows for train, eval and score: ``prompt`` and ``answer`` (other fields reach the rewards).

Formats, by file name: ``.jsonl`` (one object per line), ``.json`` (a list of objects), ``.csv``
(a header row), ``.parquet`` (needs pyarrow) and a folder written by Hugging Face ``datasets``
``save_to_disk`` (needs datasets). ``fields`` maps our names to the file's columns (e.g.
``{"prompt": "question"}``). A prompt may be a string or chat messages, a list of
``{"role", "content"}``. Every bad row is reported with where it is (``file:line`` for JSONL and
CSV, ``file row N`` otherwise) and nothing runs unless ``skip_bad_rows``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path


class DataError(ValueError):
    """Bad training data; the message names file, line and field."""


@dataclass
class Problem:
    prompt: str  # the text, or for chat messages their JSON (a stable key for caching token ids)
    answer: str
    extra: dict
    line: int | None = None
    messages: list[dict] | None = None  # the prompt as chat messages, when given that way


def extra_columns(problems: list[Problem]) -> dict[str, list]:
    """The problems' other data fields, one list per field (None where a row lacks it): the
    keyword columns rewards receive."""
    return {k: [p.extra.get(k) for p in problems] for k in sorted({k for p in problems for k in p.extra})}


def _records(path: Path):
    """``(where, line, row)`` for every record of a data file or datasets folder: ``line`` is the
    line number (JSONL, CSV) or the row index (the rest); ``row`` may be anything."""
    if path.is_dir():
        try:
            from datasets import load_from_disk
        except ImportError:
            raise DataError(f"{path}: a folder is read as a Hugging Face datasets folder, which needs "
                            "`pip install datasets`") from None
        try:
            data = load_from_disk(str(path))
        except Exception as err:
            raise DataError(f"{path}: not a datasets folder saved with save_to_disk ({err})") from None
        if hasattr(data, "keys") and not hasattr(data, "column_names"):  # a DatasetDict: one split
            splits = list(data.keys())
            if len(splits) != 1:
                raise DataError(f"{path}: holds splits {splits}; point at one split's folder")
            data = data[splits[0]]
        for i, row in enumerate(data):
            yield f"{path} row {i}", i, row
        return
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise DataError(f"{path}: parquet files need `pip install pyarrow`") from None
            for i, row in enumerate(pq.read_table(path).to_pylist()):
                yield f"{path} row {i}", i, row
        elif suffix == ".csv":
            with open(path, encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                for row in reader:
                    yield f"{path}:{reader.line_num}", reader.line_num, row
        elif suffix == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
            if not isinstance(data, list):
                raise DataError(f"{path}: expected a JSON list of objects (JSON Lines files end in .jsonl)")
            for i, row in enumerate(data):
                yield f"{path} row {i}", i, row
        else:  # .jsonl and anything else: JSON Lines
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if line.strip():
                        try:
                            yield f"{path}:{number}", number, json.loads(line)
                        except json.JSONDecodeError as err:
                            yield f"{path}:{number}", number, _Invalid(f"invalid JSON ({err.msg})")
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None


class _Invalid:
    def __init__(self, why: str):
        self.why = why


def _is_messages(value) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                    for m in value))


def read_rows(path: str | Path, required: tuple[str, ...], skip_bad_rows: bool = False,
              fields: dict[str, str] | None = None):
    """Rows of a data file (see the module doc) whose ``required`` fields are strings (``prompt``
    non-empty, or chat messages). ``fields`` renames the file's columns to ours.

    Each row gets ``_line`` (its line or index). Bad rows raise :class:`DataError` naming where
    they are and the field, unless ``skip_bad_rows``; returns ``(rows, problems)`` where problems
    lists what was skipped.
    """
    fields = {k: v for k, v in (fields or {}).items() if v and v != k}
    rows, bad = [], []
    for where, line, row in _records(Path(path)):
        if isinstance(row, _Invalid):
            bad.append(f"{where}: {row.why}")
            continue
        if not isinstance(row, dict):
            bad.append(f"{where}: expected an object with named fields")
            continue
        row = dict(row)
        for ours, theirs in fields.items():
            if theirs in row:
                row[ours] = row.pop(theirs)
        missing = [f for f in required if not (isinstance(row.get(f), str) or (f == "prompt" and _is_messages(row.get(f))))]
        if missing:
            name = fields.get(missing[0], missing[0])
            kind = "a string or chat messages" if missing[0] == "prompt" else "a string"
            bad.append(f"{where}: field '{name}' missing or not {kind}")
        elif "prompt" in required and isinstance(row["prompt"], str) and not row["prompt"].strip():
            bad.append(f"{where}: field '{fields.get('prompt', 'prompt')}' is empty")
        else:
            row["_line"] = line
            rows.append(row)
    if bad and not skip_bad_rows:
        more = f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError("bad rows, nothing was done:\n  " + "\n  ".join(bad[:5]) + more
                        + "\nFix them or pass --skip-bad-rows.")
    return rows, bad



def load_problems(path: str | Path, skip_bad_rows: bool = False,
                  fields: dict[str, str] | None = None) -> tuple[list[Problem], list[str]]:
    """Training problems (``prompt``, ``answer``; other fields go to the rewards)."""
    rows, bad = read_rows(path, ("prompt", "answer"), skip_bad_rows, fields)
    if not rows:
        raise DataError(f"{path}: no usable rows")
    problems = []
    for r in rows:
        messages = r["prompt"] if isinstance(r["prompt"], list) else None
        prompt = json.dumps(messages, ensure_ascii=False) if messages else r["prompt"]
        extra = {k: v for k, v in r.items() if k not in ("prompt", "answer", "_line")}
        problems.append(Problem(prompt, r["answer"], extra, r["_line"], messages))
    return problems, bad
