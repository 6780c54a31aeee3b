"""Distributed start and resume: the CUDA start order on a mocked device, and the resume step
agreed across two real gloo ranks whose filesystems differ."""

import multiprocessing as mp
import os
import socket
from datetime import timedelta

import torch
import torch.distributed as dist

from pte_rl import distributed as dist_module
from pte_rl.checkpoint import CheckpointError, agreed_checkpoint, step_dir


def test_cuda_device_is_set_before_the_process_group_starts(monkeypatch):
    calls = []
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.append(("init", backend, kw)))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    device = torch.device("cuda", 1)
    info = dist_module.init_distributed(device)
    # the rank's own GPU first, then a group bound to it with an explicit timeout
    assert calls == [("set_device", device),
                     ("init", "nccl", {"device_id": device, "timeout": dist_module.DIST_TIMEOUT})]
    assert (info.rank, info.world) == (1, 2)
    calls.clear()
    dist_module.init_distributed(torch.device("cpu"))
    assert calls == [("init", "gloo", {"timeout": dist_module.DIST_TIMEOUT})]


def _resume_worker(rank, port, folders, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=timedelta(seconds=60))
    out = []
    for folder in folders[rank]:  # every rank makes the same calls (each is a broadcast)
        try:
            found = agreed_checkpoint(folder, rank, 2)
            out.append(None if found is None else (found.parent.parent == folder, found.name))
        except CheckpointError as err:
            out.append(str(err))
    results.put((rank, out))
    dist.destroy_process_group()


def test_ranks_resume_from_rank_zeros_step_whatever_their_own_disk_holds(tmp_path):
    def disk(name, *steps):
        for s in steps:
            step_dir(tmp_path / name, s).mkdir(parents=True)
        return tmp_path / name

    folders = {
        0: [disk("a0", 2), disk("b0", 6), disk("c0")],
        1: [disk("a1", 2, 4), disk("b1", 4), disk("c1")],  # a newer step, a missing one, none
    }
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_resume_worker, args=(r, port, folders, results)) for r in (0, 1)]
    for p in procs:
        p.start()
    got = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert got[0] == [(True, "step-000002"), (True, "step-000006"), None]
    assert got[1][0] == (True, "step-000002")  # not its own newer step 4
    assert got[1][1].startswith("rank 1: rank 0 resumes from step-000006, but ") and "shared storage" in got[1][1]
    assert got[1][2] is None
