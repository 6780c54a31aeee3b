"""Decoding between eviction events reads nothing back from the device.

A device-to-host read (``.item()``, ``bool(t)``, ``.tolist()``, data-dependent shapes such as
``nonzero``) stalls a GPU decode loop until the device catches up. Counted here on the CPU
with a dispatch mode that sees those ops, step by step: reads may happen at prefill, at the
first decode step (the policy says how long it may stay quiet), at eviction events and at the
every-K-steps look at which rows finished; never anywhere else.
"""

import torch
from tiny_models import tiny_llama
from torch.utils._python_dispatch import TorchDispatchMode

from pte_cache import Full, LRUPromptKeep, PolicyConfig
from pte_rl import PTEModel, SamplingConfig, sample
from pte_thought import ProgressiveEncoder, ThoughtConfig

READS = {"_local_scalar_dense", "is_nonzero", "item", "nonzero", "masked_select", "unique", "_unique2"}
PROMPTS = [[5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18], [20, 21, 22]]


class HostReads(TorchDispatchMode):
    """Which decode step each device-to-host read happens in (-1: prefill)."""

    def __init__(self):
        super().__init__()
        self.step = -1
        self.at: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name.split("::")[1] in READS:
            self.at.add(self.step)
        return func(*args, **(kwargs or {}))


def reads(policy, config, eos):
    torch.manual_seed(0)
    pte = PTEModel(tiny_llama(), ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    with HostReads() as mode:
        def progress(_rows):
            mode.step += 1  # called once per decode step, before that step's forward pass

        out = sample(pte, PROMPTS, policy, config, eos_ids=eos, generator=torch.Generator().manual_seed(0),
                     progress=progress)
    # the forward of decode step s runs the policy; an event there has step s
    return {s for s in mode.at if s >= 0}, {s for c in out for s, _ in c.schedule}, out


def test_no_host_reads_between_eviction_events():
    config = SamplingConfig(max_new_tokens=40, min_new_tokens=40, temperature=1.0)
    at, events, out = reads(LRUPromptKeep(PolicyConfig(cache_window=20)), config, eos=[])
    assert min(c.num_evictions for c in out) >= 3 and len(events) >= 5
    quiet = set(range(40)) - events - {0}
    assert len(quiet) >= 15  # enough steps without an event for the claim to mean something
    assert at <= events | {0}, sorted(at - events - {0})


def test_finish_checks_only_every_k_steps_and_finished_rows_are_exact():
    config = SamplingConfig(max_new_tokens=40, temperature=1.0, finish_check_every=8)
    at, events, out = reads(Full(), config, eos=[3, 40, 41, 42, 43])
    assert any(c.finished for c in out)  # some row met an EOS, so finishing was exercised
    assert at <= {0} | {s for s in range(40) if (s + 1) % 8 == 0}, sorted(at)
    for c in out:
        eos_at = [i for i, t in enumerate(c.token_ids) if t in (3, 40, 41, 42, 43)]
        # a row ends at its first EOS, whatever it generated before its finish was looked at
        assert eos_at == ([len(c.token_ids) - 1] if c.finished else [])
        assert len(c.logprobs) == len(c.token_ids)
