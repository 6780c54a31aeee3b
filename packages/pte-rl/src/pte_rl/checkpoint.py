"""Checkpoints: adapter files + trainer state, written atomically (temp folder + rename).

Layout: ``<output_dir>/checkpoints/step-000004/`` with the adapter files (pte-lora layout) and
``trainer_state.pt`` (optimizer, scheduler, RNG states, step, config). A folder only gets its
final ``step-*`` name once everything inside is written, so resume never sees half a checkpoint.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path

import torch

from pte_lora import AdapterManifest, load_adapter, save_adapter

_STEP = re.compile(r"^step-(\d+)$")


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def save_checkpoint(output_dir, step: int, pte, manifest: AdapterManifest, optimizer, scheduler,
                    config: dict) -> Path:
    root = checkpoint_dir(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step-{step:06d}-", dir=root))
    try:
        save_adapter(tmp / "adapter", pte.lora, manifest, pte.encoder)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
            "config": config,
        }
        torch.save(state, tmp / "trainer_state.pt")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def latest_checkpoint(output_dir) -> Path | None:
    root = checkpoint_dir(output_dir)
    if not root.is_dir():
        return None
    steps = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP.match(p.name)) and p.is_dir()]
    return max(steps)[1] if steps else None


def load_checkpoint(path: Path, pte, optimizer, scheduler) -> int:
    load_adapter(path / "adapter", pte.lora, pte.encoder)
    state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    random.setstate(state["rng"]["python"])
    return int(state["step"])
