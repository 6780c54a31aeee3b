"""Files written whole or not at all, and the JSONL lines of run outputs (torch-free).

``jsonl_line`` / ``jsonl_text`` format the lines of ``metrics.jsonl``, ``completions.jsonl``,
``samples.jsonl`` and ``pte score`` output (commands that print JSON to stdout, such as ``pte
data`` and ``pte generate --json``, call ``json.dumps`` themselves). Only writing lives here:
JSONL is read where it is used (``pte_rl.data`` for training, eval and score data,
``pte_rl.metrics`` for ``metrics.jsonl`` on resume, and in pte-cli ``evaluate.py`` for
``samples.jsonl`` and ``report.py`` for ``metrics.jsonl``).

A crash, a full disk or Ctrl-C while writing never leaves a half-written file or folder under
the final name: everything is written to a temporary sibling first and renamed into place
(``os.replace`` is atomic within one filesystem). pte-lora keeps its own copy for adapter
folders, because it sits below this package.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``final``; on success it becomes ``final``.

    ``replace``: an existing ``final`` is swapped out (else it must be absent or empty). On any
    error the temporary folder is removed and ``final`` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result is an ordinary folder
    try:
        yield tmp
        if final.exists():
            if replace:
                old = final.with_name(f".{final.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
                return
            final.rmdir()  # empty (else this raises and nothing is lost)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path (same suffix, so writers that go by the extension work);
    whatever is written there becomes ``final`` on success and is removed on error."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.stem}.", suffix=final.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8) through a temporary sibling file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, default=str) + "\n")


def jsonl_line(row: dict) -> str:
    """One JSONL line (non-ASCII kept readable), newline included."""
    return json.dumps(row, ensure_ascii=False) + "\n"


def jsonl_text(rows: Iterable[dict]) -> str:
    return "".join(jsonl_line(r) for r in rows)
