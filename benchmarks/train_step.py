"""One GRPO training step on the default model: seconds and peak memory vs completion length.

    python benchmarks/train_step.py [--tokens 256 512 1024 2048] [--prompts 4] [--group 4]

Compares PTE (lru-prompt-keep window 128 + progressive encoder) with the LoRA baseline (full
cache + encoder none). Every completion runs to the full length (no EOS), each case in its own
process. Peak memory is the peak RSS of the whole process, model included (what the OOM killer
sees). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import PeakRSS, machine, run_isolated  # noqa: E402


class AlternateReward:
    name = "alternate"

    def score(self, completions, answers, **columns):
        from pte_rl.rewards import RewardResult

        return [RewardResult(float(i % 2)) for i in range(len(completions))]


def case(spec: dict) -> dict:
    import torch

    from pte_cache import Full, LRUPromptKeep, PolicyConfig
    from pte_lora import AdapterManifest, LoRAConfig
    from pte_rl import HFBackend, HFConfig, PTEModel, chat_prompt
    from pte_rl.data import Problem
    from pte_rl.memory import limit_heap_fragmentation
    from pte_rl.rewards import WeightedSum
    from pte_rl.trainer import TrainConfig, Trainer, TrainerParts
    from pte_thought import IdentityEncoder, ProgressiveEncoder

    limit_heap_fragmentation()  # what `pte train` does on CPU
    torch.manual_seed(0)
    with PeakRSS() as mem:
        model, tok = HFBackend(HFConfig(model=spec.get("model", "smollm2-135m-instruct"),
                                        dtype=spec.get("dtype", "float32"), device=spec.get("device", "auto"))).load()
        pte_mode = spec["mode"] == "pte"
        pte = PTEModel(model, ProgressiveEncoder() if pte_mode else IdentityEncoder())

        def policy():
            return LRUPromptKeep(PolicyConfig(cache_window=spec["window"])) if pte_mode else Full()

        problems = [Problem(f"What is {i} + {i * 3}? Think step by step.", str(4 * i), {}) for i in range(spec["prompts"])]
        cfg = TrainConfig(output_dir="/tmp/pte-bench", max_steps=spec["steps"], prompts_per_step=spec["prompts"],
                          group_size=spec["group"], max_new_tokens=spec["tokens"], tensorboard=False,
                          rollout_sub_batch_size=spec["prompts"] * spec["group"],
                          **{k: spec[k] for k in ("beta", "temperature", "learning_rate", "replay_sub_batch_size", "replay_graph",
                                               "reference_sub_batch_size", "replay_chunk") if k in spec})
        manifest = AdapterManifest(pte_version="bench", lora=LoRAConfig(), encoder="x")
        # every group gets reward spread, so every step runs its replay and optimizer step (a real
        # reward on forced-length answers is all 0: the trainer would skip those steps as flat)
        reward = WeightedSum([("alternate", AlternateReward(), 1.0)])
        parts = TrainerParts(pte, tok, policy, reward, problems, manifest, eos=[],  # eos=[]: full length
                             prompt_ids=lambda text: chat_prompt(tok, text))
        trainer = Trainer(cfg, parts, progress=False)
        seconds, runs = [], []
        for step in range(spec["steps"]):
            t = time.perf_counter()
            runs.append(trainer.step(step))
            seconds.append(time.perf_counter() - t)
    first = seconds[0]
    # step 0 also pays one-time costs (kernel selection for new shapes, allocator growth):
    # report the steps after it, as a training run sees them
    if len(runs) > 1:
        seconds, runs = seconds[1:], runs[1:]
    phase = {k: sum(m[f"time/{k}"] for m in runs) / len(runs) for k in ("rollout", "reference", "train")}
    metrics = runs[-1]
    return {**spec, "seconds_per_step": sum(seconds) / len(seconds), "first_step_seconds": first,
            "peak_rss_gb": mem.peak / 1024, **mem.gpu(), "decode_tokens_per_s": metrics["tokens_per_second"],
            **{f"time_{k}": v for k, v in phase.items()},
            "evictions_per_completion": metrics["evictions_per_completion"],
            "max_cache_tokens": metrics["max_cache_tokens"], "logprob_mismatch": metrics["logprob_mismatch"],
            "kl": metrics["kl"], "skipped_steps": sum(m["skipped_step"] for m in runs)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--case")
    p.add_argument("--tokens", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--modes", nargs="+", default=["pte", "lora"])
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--window", type=int, default=128)
    p.add_argument("--steps", type=int, default=2,
                   help="steps per case; with 2 or more the first is a warm-up and not timed")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="base model dtype (the adapter and encoder stay fp32)")
    p.add_argument("--model", default="smollm2-135m-instruct", help="built-in name or local transformers folder")
    a = p.parse_args()
    if a.case:
        print(json.dumps(case(json.loads(a.case))))
        return
    results = []
    for tokens in a.tokens:
        for mode in a.modes:
            spec = {"mode": mode, "tokens": tokens, "prompts": a.prompts, "group": a.group, "window": a.window,
                    "dtype": a.dtype, "steps": max(1, a.steps), "model": a.model}
            results.append(run_isolated(__file__, spec))
            print(json.dumps(results[-1]), file=sys.stderr)
    pte = [r for r in results if r["mode"] == "pte" and "peak_rss_gb" in r]
    summary = {"machine": machine(), "cases": results}
    if len(pte) > 1:
        peaks = [r["peak_rss_gb"] for r in pte]
        summary["pte_peak_spread"] = (max(peaks) - min(peaks)) / min(peaks)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
