"""Where one GRPO step's time goes, phase by phase, under torch.profiler.

    python benchmarks/profile_step.py [--tokens 64] [--prompts 4] [--group 4] [--dtype float32]

Runs one warm-up step, then profiles each phase of a second one separately: decode (the
rollout under the bounded cache), reference (full-cache base model, no grad) and train (replay
forward + backward). Prints JSON per phase: wall seconds, number of operator calls, the share
of self CPU time spent in matmul-type kernels (what the step cannot avoid) versus everything
else (dispatch, indexing, copies, elementwise: the overhead to cut), and the top operators by
self time. Fewer tokens than a real step keep the profiler's memory small; the per-token costs
are what matter. Do not run it beside anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_scaled_dot_product_flash_attention_for_cpu",
          "aten::_scaled_dot_product_attention_math", "aten::_efficient_attention_forward",
          "aten::_flash_attention_forward", "aten::_scaled_dot_product_flash_attention",
          "aten::_scaled_dot_product_efficient_attention", "aten::_flash_attention_backward",
          "aten::_scaled_dot_product_flash_attention_for_cpu_backward", "aten::mkldnn_rnn_layer", "aten::_mm_dtype")


def profiled(fn, top: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    t = time.perf_counter()
    with profile(activities=activities) as prof:
        fn()
    seconds = time.perf_counter() - t
    rows = prof.key_averages()
    total = sum(r.self_cpu_time_total for r in rows) or 1.0
    matmul = sum(r.self_cpu_time_total for r in rows if r.key in MATMUL)
    ranked = sorted(rows, key=lambda r: r.self_cpu_time_total, reverse=True)[:top]
    return {"seconds": seconds, "op_calls": sum(r.count for r in rows),
            "matmul_share_of_self_cpu": matmul / total,
            "top": [{"op": r.key, "self_ms": r.self_cpu_time_total / 1e3, "calls": r.count} for r in ranked]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--window", type=int, default=None, help="cache budget [default: prompt + tokens / 2]")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--device", default="auto")
    p.add_argument("--top", type=int, default=15)
    a = p.parse_args()

    import torch
    from train_step import AlternateReward

    from pte_cache import LRUPromptKeep, PolicyConfig
    from pte_lora import AdapterManifest, LoRAConfig
    from pte_rl import HFBackend, HFConfig, PTEModel, chat_prompt
    from pte_rl.data import Problem
    from pte_rl.memory import limit_heap_fragmentation
    from pte_rl.rewards import WeightedSum
    from pte_rl.trainer import TrainConfig, Trainer, TrainerParts
    from pte_thought import ProgressiveEncoder

    limit_heap_fragmentation()
    torch.manual_seed(0)
    model, tok = HFBackend(HFConfig(dtype=a.dtype, device=a.device)).load()
    pte = PTEModel(model, ProgressiveEncoder())
    problems = [Problem(f"What is {i} + {i * 3}? Think step by step.", str(4 * i), {}) for i in range(a.prompts)]
    prompt_len = max(len(chat_prompt(tok, q.prompt)) for q in problems)
    window = a.window or prompt_len + a.tokens // 2

    def policy():
        return LRUPromptKeep(PolicyConfig(cache_window=window))

    cfg = TrainConfig(output_dir="/tmp/pte-profile", max_steps=2, prompts_per_step=a.prompts, group_size=a.group,
                      max_new_tokens=a.tokens, tensorboard=False, rollout_sub_batch_size=a.prompts * a.group)
    parts = TrainerParts(pte, tok, policy, WeightedSum([("alternate", AlternateReward(), 1.0)]), problems,
                         AdapterManifest(pte_version="bench", lora=LoRAConfig(), encoder="progressive"), eos=[],
                         prompt_ids=lambda text: chat_prompt(tok, text))
    trainer = Trainer(cfg, parts, progress=False)
    trainer.step(0)  # warm-up: kernel selection, allocator growth

    chosen = trainer.problems_for(1)
    out = {}
    holder = {}
    out["decode"] = profiled(lambda: holder.update(c=trainer.rollout(chosen, 1)), a.top)
    completions = holder["c"]
    rewards = torch.tensor([float(i % 2) for i in range(len(completions))])
    batch = trainer.trajectory(completions, rewards)
    out["reference"] = profiled(lambda: trainer.reference_logprobs(completions, batch.old_lp.shape[1]), a.top)

    def train():
        for idx in trainer._buckets(completions, cfg.replay_sub_batch_size):
            trainer._replay_backward(batch, idx, first=True)

    out["train"] = profiled(train, a.top)
    decode_steps = a.tokens
    summary = {"machine": machine(), "dtype": a.dtype, "rows": len(completions), "tokens": a.tokens, "window": window,
               "evictions_per_completion": sum(c.num_evictions for c in completions) / len(completions),
               "decode_ms_per_step": out["decode"]["seconds"] / decode_steps * 1e3, "phases": out}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
