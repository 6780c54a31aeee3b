"""The compiled decode step: one graph for a whole rollout, eviction events included, and the same
completions as eager decoding.

A recompile would mean the graph depends on something that changes from step to step (a new
buffer, a new attention width, a Python number baked in); ``error_on_recompile`` turns that into
a failure. LoRA's B factors are drawn non-zero so the thought states change the logits: a step
that kept using stale states would not reproduce eager decoding.
"""

import pytest
import torch
import torch._dynamo
from tiny_models import tiny_llama
from torch._dynamo.utils import counters

from pte_cache import LRUPromptKeep, PolicyConfig, StreamingConfig, StreamingLLM
from pte_rl import PTEModel, SamplingConfig, sample
from pte_thought import ProgressiveEncoder, ThoughtConfig

PROMPTS = [[5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18], [20, 21, 22]]


def decode(compiled: bool, config: SamplingConfig, eos: list[int], policy=None):
    torch.manual_seed(0)
    pte = PTEModel(tiny_llama(), ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    with torch.no_grad():
        for p in pte.lora.parameters():
            p.normal_(0, 0.3)  # B starts at zero: make the state matter to the logits
    if compiled:
        pte.compile_decode()
    policy = policy or LRUPromptKeep(PolicyConfig(cache_window=20))
    return sample(pte, PROMPTS, policy, config, eos_ids=eos, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def no_recompiles():
    torch._dynamo.reset()
    counters.clear()
    with torch._dynamo.config.patch(error_on_recompile=True):
        yield
    torch._dynamo.reset()


@pytest.mark.parametrize("eos", [[], [3, 40, 41, 42]], ids=["to-the-limit", "rows-finish"])
def test_compiled_step_is_one_graph_and_decodes_as_eager(no_recompiles, eos):
    config = SamplingConfig(max_new_tokens=40, min_new_tokens=0 if eos else 40, temperature=1.0)
    eager = decode(False, config, eos)
    compiled = decode(True, config, eos)
    assert counters["stats"]["unique_graphs"] == 1
    if not eos:
        assert min(c.num_evictions for c in eager) >= 3  # the graph is reused across events
    else:
        assert any(c.finished for c in eager) and any(len(c.token_ids) < 40 for c in eager)
    for a, b in zip(eager, compiled):
        assert a.token_ids == b.token_ids
        assert a.schedule == b.schedule and a.num_state_updates == b.num_state_updates
        assert a.finished == b.finished and a.max_cache_tokens == b.max_cache_tokens
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) < 1e-4


def test_compiled_step_with_a_streamed_prompt(no_recompiles):
    """The prompt band is part of the compiled step's mask: same completions as eager decoding."""
    config = SamplingConfig(max_new_tokens=30, min_new_tokens=30, temperature=1.0)
    streamed = lambda: StreamingLLM(StreamingConfig(cache_window=8, sink_tokens=2, stream_prompt=True))  # noqa: E731
    eager = decode(False, config, [], streamed())
    compiled = decode(True, config, [], streamed())
    assert counters["stats"]["unique_graphs"] == 1
    for a, b in zip(eager, compiled):
        assert a.prompt_band == b.prompt_band == (2, 6)
        assert a.token_ids == b.token_ids and a.schedule == b.schedule
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) < 1e-4


def test_compiled_step_needs_the_lean_forward(monkeypatch):
    monkeypatch.setenv("PTE_LEAN", "0")
    pte = PTEModel(tiny_llama(), ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    with pytest.raises(ValueError, match="lean forward"):
        pte.compile_decode()
