"""The distributed glue of training: joining the process group, summing across ranks.

Every rank runs its own rollout and replay on the plain module (no DDP wrapper, no per-backward
hooks), so ranks that decode or replay different numbers of steps never wait on each other.
Loss weights are normalised by global counts, and gradients are *summed* with one all-reduce per
optimizer step: that is the gradient of the loss over all ranks' data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# a rank waits this long at a collective (another rank saving a checkpoint, a slow eval) before
# the job fails with a timeout instead of hanging; torch's own default for nccl is 10 minutes
DIST_TIMEOUT = timedelta(minutes=30)


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float], device) -> list[float]:
        """``values`` summed over ranks (float64)."""
        t = torch.tensor(values, dtype=torch.float64, device=device)
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def sum_gradients(self, params: list[torch.Tensor]) -> None:
        """Every parameter's gradient summed over ranks in one all-reduce (a missing one is 0)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        if self.world > 1:
            flat = torch.cat([g.flatten() for g in grads])
            dist.all_reduce(flat)  # SUM: per-token weights are already normalised globally
            offset = 0
            for p, g in zip(params, grads):
                p.grad = flat[offset : offset + g.numel()].view_as(p).clone()
                offset += g.numel()
        else:
            for p, g in zip(params, grads):
                p.grad = g

    def reduce_metrics(self, metrics: dict, reductions: dict[str, str], device) -> dict:
        """One step's numeric metrics across ranks: ``reductions[name]`` is ``"max"`` or ``"sum"``;
        every other number is averaged."""
        if self.world == 1:
            return metrics
        keys = sorted(k for k, v in metrics.items() if isinstance(v, (int, float)))
        t = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=device)
        t_max = t.clone()
        dist.all_reduce(t)
        dist.all_reduce(t_max, op=dist.ReduceOp.MAX)
        out = dict(metrics)
        for i, k in enumerate(keys):
            how = reductions.get(k, "mean")
            out[k] = t_max[i].item() if how == "max" else t[i].item() if how == "sum" else t[i].item() / self.world
        return out

    def broadcast_parameters(self, params: list[torch.Tensor]) -> None:
        """Rank 0's initial weights on every rank."""
        if self.world > 1:
            for p in params:
                dist.broadcast(p.data, src=0)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def init_distributed(device: torch.device, timeout: timedelta = DIST_TIMEOUT) -> Dist:
    """Join the torchrun process group if there is one (gloo on CPU, nccl on CUDA).

    On CUDA the rank's device is made current and bound to the group before it starts: without
    it every rank creates a context on GPU 0 and nccl collectives can hang (torch's docs).
    """
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return Dist()
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group("nccl", device_id=device, timeout=timeout)
        else:
            dist.init_process_group("gloo", timeout=timeout)
    return Dist(dist.get_rank(), dist.get_world_size())
