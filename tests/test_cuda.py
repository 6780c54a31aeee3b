"""The CUDA path, on an NVIDIA GPU (skipped elsewhere; `python benchmarks/gpu_check.py` runs them).

The CPU suite proves the oracles; these prove the same oracles hold where every tensor lives on
the GPU: the bounded cache, the thought state and sampling's generator stay on the device, replay
reproduces the sampling log-probs, and `pte train` runs a step there with the dtype it reports.
"""

import json

import pytest
import torch
from pte_run import run_pte

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")]


def gpu_pte(tiny_model_dir):
    """The tiny model on the GPU with a progressive encoder and a LoRA that changes the logits."""
    from transformers import AutoModelForCausalLM

    from pte_rl import PTEModel
    from pte_thought import ProgressiveEncoder, ThoughtConfig

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).cuda().eval()
    pte = PTEModel(model, ProgressiveEncoder(ThoughtConfig(global_tokens=8, rank=4)))
    with torch.no_grad():
        for p in pte.lora.parameters():
            p.normal_(0, 0.2)
    return pte


def test_bounded_decode_and_replay_on_the_gpu_reproduce_sampling(tiny_model_dir):
    from pte_cache import LRUPromptKeep, PolicyConfig
    from pte_rl import SamplingConfig, replay_logprobs, sample

    pte = gpu_pte(tiny_model_dir)
    prompts = [[5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18]]
    out = sample(pte, prompts, LRUPromptKeep(PolicyConfig(cache_window=24)),
                 SamplingConfig(max_new_tokens=40, min_new_tokens=40, temperature=1.0), eos_ids=[],
                 generator=torch.Generator(device="cuda").manual_seed(0))
    assert min(c.num_evictions for c in out) >= 2 and min(c.num_state_updates for c in out) >= 2
    lp, _ = replay_logprobs(pte, out, max_chunk=7, graph="window",
                            on_chunk=lambda lp, mask, cols: (lp * mask).sum())
    assert lp.is_cuda
    for b, c in enumerate(out):
        got = lp[b, : len(c.token_ids)].cpu()
        assert (got - torch.tensor(c.logprobs)).abs().max() <= 1e-4
    grads = [p.grad for p in pte.trainable_parameters() if p.grad is not None]
    assert grads and all(g.is_cuda and torch.isfinite(g).all() for g in grads)


def test_compiled_decode_with_cuda_graphs_decodes_as_eager(tiny_model_dir):
    """The compiled step under mode="reduce-overhead" (CUDA graphs) across eviction events: one
    graph, the same tokens, schedules and log-probs as eager decoding on the GPU."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from pte_cache import LRUPromptKeep, PolicyConfig
    from pte_rl import SamplingConfig, sample

    prompts = [[5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16, 17, 18]]
    outs = []
    torch._dynamo.reset()
    counters.clear()
    for compiled in (False, True):
        pte = gpu_pte(tiny_model_dir)
        if compiled:
            pte.compile_decode(mode="reduce-overhead")
        with torch._dynamo.config.patch(error_on_recompile=True):
            outs.append(sample(pte, prompts, LRUPromptKeep(PolicyConfig(cache_window=24)),
                               SamplingConfig(max_new_tokens=40, min_new_tokens=40, temperature=1.0), eos_ids=[],
                               generator=torch.Generator(device="cuda").manual_seed(0)))
    assert counters["stats"]["unique_graphs"] == 1
    assert min(c.num_evictions for c in outs[0]) >= 2
    for a, b in zip(*outs):
        assert a.token_ids == b.token_ids and a.schedule == b.schedule
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) < 1e-4


def test_pte_train_runs_a_step_on_the_gpu(tiny_model_dir, tmp_path):
    out, rows = tmp_path / "run", tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(4)))
    run_pte("train", "--model", str(tiny_model_dir), "--device", "cuda", "--max-steps", "1",
            "--prompts-per-step", "2", "--group-size", "4", "--max-new-tokens", "24", "--cache-window", "96",
            "--data", str(rows), "--eval-data", str(rows), "--output-dir", str(out), "--no-tensorboard", timeout=900)
    config = json.loads((out / "config.json").read_text())
    assert config["resolved"]["device"].startswith("cuda")
    assert config["resolved"]["dtype"] == ("bfloat16" if torch.cuda.is_bf16_supported() else "float32")
    assert (out / "checkpoints" / "step-000001" / "adapter" / "adapter_model.safetensors").is_file()
