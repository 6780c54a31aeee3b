"""Checkpoints: adapter files + trainer state, written atomically (temp folder + rename).

Layout: ``<output_dir>/checkpoints/step-000004/`` with the adapter files (pte-lora layout) and
``trainer_state.pt`` (optimizer, scheduler, RNG states, step, config, run identity). A folder only
gets its final ``step-*`` name once everything inside is written, so resume never sees half a
checkpoint.

Resume is safe on folders someone else wrote: the trainer state is read with
``torch.load(weights_only=True)`` (tensors and plain data only; a pickled callable is refused,
never run), and it continues only the run it was written by: the fields in ``RESUME_MUST_MATCH``
(model, encoder, LoRA shape, group size, loss type, training data) must be unchanged.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import re
import shutil
from pathlib import Path

import torch

from pte_lora import AdapterManifest, load_adapter, save_adapter

from .files import atomic_folder

_STEP = re.compile(r"^step-(\d+)$")
STATE_FILE = "trainer_state.pt"
# a resumed run must be the same experiment: these change what is being trained (harmless
# settings such as max steps, logging or save frequency may change)
RESUME_MUST_MATCH = ("base_model", "encoder", "encoder_options", "lora", "group_size", "loss_type", "data")


class CheckpointError(ValueError):
    """A checkpoint that cannot or must not be resumed; the message says why."""


def run_identity(manifest: AdapterManifest, config: dict, problems) -> dict:
    """What a checkpoint must agree on to be resumed (see ``RESUME_MUST_MATCH``)."""
    digest = hashlib.sha256()
    for p in problems:
        digest.update(f"{p.prompt}\x00{p.answer}\x01".encode())
    lora = manifest.lora.model_dump()
    return {
        "base_model": manifest.base_model, "encoder": manifest.encoder, "encoder_options": manifest.encoder_options,
        "lora": {k: lora[k] for k in ("r", "lora_alpha", "target_modules", "global_tokens") if k in lora},
        "group_size": config.get("group_size"), "loss_type": config.get("loss_type"),
        "data": f"{len(problems)} problems, sha256 {digest.hexdigest()[:16]}",
    }


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def step_dir(output_dir: str | Path, step: int) -> Path:
    """The checkpoint folder of ``step``."""
    return checkpoint_dir(output_dir) / f"step-{step:06d}"


def save_checkpoint(output_dir, step: int, pte, manifest: AdapterManifest, optimizer, scheduler,
                    config: dict, identity: dict | None = None) -> Path:
    final = step_dir(output_dir, step)
    with atomic_folder(final, replace=True) as tmp:
        save_adapter(tmp / "adapter", pte.lora, manifest, pte.encoder)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
            "config": config,
            "identity": identity or {},
        }
        torch.save(state, tmp / STATE_FILE)
    return final


def prune_checkpoints(output_dir, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` complete checkpoints (>= 1 always stays); returns the
    removed folders. Folders still being written have temporary names and are never touched."""
    root = checkpoint_dir(output_dir)
    if keep < 1 or not root.is_dir():
        return []
    steps = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _STEP.match(p.name)) and p.is_dir())
    old = [p for _, p in steps[:-keep]]
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return old


def latest_checkpoint(output_dir) -> Path | None:
    root = checkpoint_dir(output_dir)
    if not root.is_dir():
        return None
    steps = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP.match(p.name)) and p.is_dir()]
    return max(steps)[1] if steps else None


def agreed_checkpoint(output_dir, rank: int = 0, world: int = 1, device=None) -> Path | None:
    """The checkpoint every rank resumes from: rank 0's latest, broadcast to all.

    Each rank reads its own filesystem; without the broadcast, nodes that do not share storage
    (or see it with a delay) would resume at different steps and train different models. A rank
    that lacks rank 0's checkpoint stops with a message instead.
    """
    found = latest_checkpoint(output_dir)
    if world == 1:
        return found
    import torch.distributed as dist

    step = torch.tensor([int(_STEP.match(found.name).group(1)) if found is not None else -1],
                        dtype=torch.int64, device=device)
    dist.broadcast(step, src=0)
    if int(step) < 0:
        return None
    path = step_dir(output_dir, int(step))
    if not path.is_dir():
        raise CheckpointError(
            f"rank {rank}: rank 0 resumes from {path.name}, but {path} is not on this node; every "
            f"node must see the same output folder (shared storage), or copy it to each node first")
    return path


def read_state(path: Path) -> dict:
    """The trainer state of checkpoint folder ``path``, without executing anything it holds."""
    file = Path(path) / STATE_FILE
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{file}: refusing to load: it holds objects other than tensors and plain data, which "
            f"unpickling would run as code. pte writes none; this file was changed or written by "
            f"something else. ({first})") from None
    except (OSError, RuntimeError, EOFError) as err:
        raise CheckpointError(f"{file}: cannot read the trainer state: {err}") from None


def check_identity(path: Path, saved: dict, current: dict) -> None:
    """Refuse to resume a different run, naming every changed field with both values."""
    changed = [f"{k}: checkpoint has {saved[k]!r}, this run has {current.get(k)!r}"
               for k in RESUME_MUST_MATCH if k in saved and k in current and saved[k] != current[k]]
    if changed:
        raise CheckpointError(f"--resume from {path}: this is not the run that wrote the checkpoint:\n  "
                              + "\n  ".join(changed)
                              + "\nUse the original settings, or another --output-dir for a new run.")


def load_checkpoint(path: Path, pte, optimizer, scheduler, identity: dict | None = None) -> int:
    state = read_state(path)
    if identity is not None:
        check_identity(path, state.get("identity", {}), identity)
    load_adapter(path / "adapter", pte.lora, pte.encoder)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    return int(state["step"])
