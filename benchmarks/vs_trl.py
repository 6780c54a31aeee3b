"""One GRPO step of PTE beside one of TRL's GRPOTrainer (+ PEFT LoRA), same machine, same work.

    pip install -e "packages/pte-cli[bench]"    # TRL, PEFT, math-verify: benchmark-only
    python benchmarks/vs_trl.py [--dtype float32 bfloat16] [--device cpu|cuda] [--tokens 256]

Both sides load the same transformers folder (written once with `pte export --base` unless
--model-dir is given), take the same prompts through the same chat template, sample
--prompts x --group completions forced to exactly --tokens new tokens (EOS suppressed) at the same
temperature, use LoRA rank 32 (alpha 32) on q/k/v/o with fp32 adapters over a base in --dtype,
the same learning rate, KL weight beta (both run the reference pass when beta > 0) and a reward
with spread in every group (so neither side skips its update). PTE runs its default method:
lru-prompt-keep cache of --window tokens with the progressive thought encoder.

Each side runs in its own fresh process, one after the other (never at the same time: two torch
processes on a small CPU slow each other several-fold). The first step of each pays one-time
costs and is not timed. Peak memory is the peak RSS of the whole process (what the OOM killer
sees), and on CUDA also the allocator's peak allocated and reserved GPU memory. A side that runs
out of memory (a CUDA OOM, or the kernel's OOM killer: SIGKILL) is reported as such in the JSON
(`out_of_memory: true`) and the other side still runs. The same process measures the machine's
own matmul throughput, so decode speed can be put against what this machine's matmuls can do.
Prints JSON: per side s/step and peak memory, the ratios PTE/TRL, machine, versions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import PeakRSS, machine, run_isolated  # noqa: E402

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def prompts(n: int) -> list[str]:
    """The prompts of both sides (the same as benchmarks/train_step.py)."""
    return [f"What is {i} + {i * 3}? Think step by step." for i in range(n)]


def alternate_reward(prompts=None, completions=None, **kwargs) -> list[float]:
    """TRL's reward-function signature; 0, 1, 0, 1, ...: spread in every group of even size."""
    return [float(i % 2) for i in range(len(completions))]


def matmul_gflops(device: str, dtype: str, shapes=((2048, 2048, 2048), (16, 576, 1536))) -> dict:
    """The machine's own matmul throughput (GFLOP/s) at a large square shape and at a decode shape
    (batch 16 x hidden 576 -> MLP width 1536 of the default model)."""
    import torch

    dt = getattr(torch, dtype)
    out = {}
    for m, k, n in shapes:
        a = torch.randn(m, k, device=device, dtype=dt)
        b = torch.randn(k, n, device=device, dtype=dt)
        reps = max(3, int(2e10 / (2 * m * k * n)))  # ~20 GFLOP of work per shape
        for _ in range(3):
            a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        out[f"{m}x{k}x{n}"] = 2 * m * k * n * reps / (time.perf_counter() - t) / 1e9
    return out


def load_weights(model_dir: str, device: str) -> dict:
    """Every tensor of a transformers folder: one ``model.safetensors`` or the shards its
    ``model.safetensors.index.json`` names (real 1.5B-8B checkpoints are sharded)."""
    from safetensors.torch import load_file

    single = os.path.join(model_dir, "model.safetensors")
    if os.path.isfile(single):
        return load_file(single, device=device)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.isfile(index):
        raise SystemExit(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")
    with open(index, encoding="utf-8") as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    tensors = {}
    for shard in shards:
        tensors.update(load_file(os.path.join(model_dir, shard), device=device))
    return tensors


def streamed_matmul_gflops(model_dir: str, device: str, dtype: str, batch: int = 16, reps: int = 5) -> float:
    """GFLOP/s of one decode step's matmuls alone: ``[batch, in] @ W^T`` for every linear weight
    of the model in layer order (the LM head included), so the weights stream from memory as in
    decoding. This, not a cache-resident square matmul, is the ceiling a decode step can reach."""
    import torch

    tensors = load_weights(model_dir, device)
    dt = getattr(torch, dtype)
    weights = [t.to(dt) for k, t in tensors.items() if t.dim() == 2 and ("proj" in k or "embed_tokens" in k)]
    del tensors
    xs = {w.shape[1]: torch.randn(batch, w.shape[1], device=device, dtype=dt) for w in weights}
    flops = sum(2 * batch * w.shape[0] * w.shape[1] for w in weights)
    for _ in range(2):
        for w in weights:
            xs[w.shape[1]] @ w.T
    best = float("inf")
    for _ in range(reps):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for w in weights:
            xs[w.shape[1]] @ w.T
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def flops_per_token(model_dir: str) -> float:
    """Matmul FLOPs of one decoded token: 2 x (every linear weight, the LM head included); the
    attention over the cache is left out (it is small next to the weights at these lengths)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    head_dim = c.hidden_size // c.num_attention_heads
    attn = c.hidden_size * head_dim * (2 * c.num_attention_heads + 2 * c.num_key_value_heads)
    mlp = 3 * c.hidden_size * c.intermediate_size
    return 2.0 * (c.num_hidden_layers * (attn + mlp) + c.hidden_size * c.vocab_size)


def pte_case(spec: dict) -> dict:
    from train_step import case

    out = case({"mode": "pte", "model": spec["model_dir"], "device": spec["device"], "dtype": spec["dtype"],
                "tokens": spec["tokens"], "prompts": spec["prompts"], "group": spec["group"],
                "window": spec["window"], "steps": spec["steps"], "beta": spec["beta"],
                "temperature": spec["temperature"], "learning_rate": spec["learning_rate"]})
    out["matmul_gflops"] = matmul_gflops(spec["device"], "float32")
    out["matmul_gflops"]["decode_weights_streamed"] = streamed_matmul_gflops(spec["model_dir"], spec["device"], "float32")
    if spec["dtype"] != "float32":
        out[f"matmul_gflops_{spec['dtype']}"] = matmul_gflops(spec["device"], spec["dtype"])
    return out


def trl_case(spec: dict) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from pte_rl.memory import limit_heap_fragmentation

    limit_heap_fragmentation()  # the same allocator setting as the PTE side
    torch.manual_seed(0)
    seconds: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if spec["device"].startswith("cuda"):
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if spec["device"].startswith("cuda"):
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - self.t)

    n = spec["prompts"] * spec["group"]
    with PeakRSS() as mem:
        tok = AutoTokenizer.from_pretrained(spec["model_dir"])
        model = AutoModelForCausalLM.from_pretrained(spec["model_dir"], dtype=getattr(torch, spec["dtype"]))
        data = Dataset.from_dict({"prompt": [[{"role": "user", "content": p}] for p in prompts(spec["prompts"])]
                                  * spec["steps"]})
        config = GRPOConfig(
            output_dir="/tmp/pte-vs-trl", max_steps=spec["steps"], per_device_train_batch_size=n,
            num_generations=spec["group"], max_completion_length=spec["tokens"],
            generation_kwargs={"min_new_tokens": spec["tokens"]},  # forced length, as on the PTE side
            temperature=spec["temperature"], top_p=1.0, learning_rate=spec["learning_rate"], beta=spec["beta"],
            loss_type="dapo", num_iterations=1, shuffle_dataset=False, logging_steps=1, report_to=[],
            save_strategy="no", use_cpu=spec["device"] == "cpu", bf16=False, fp16=False,
            gradient_checkpointing=False, disable_tqdm=True, seed=0)
        lora = LoraConfig(r=32, lora_alpha=32, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
        trainer = GRPOTrainer(model=model, reward_funcs=[alternate_reward], args=config, train_dataset=data,
                              processing_class=tok, peft_config=lora, callbacks=[StepTimer()])
        trainer.train()
    lengths = [h.get("completions/mean_length") for h in trainer.state.log_history if "completions/mean_length" in h]
    timed = seconds[1:] if len(seconds) > 1 else seconds
    return {**spec, "seconds_per_step": sum(timed) / len(timed), "step_seconds": seconds,
            "first_step_seconds": seconds[0], "peak_rss_gb": mem.peak / 1024, **mem.gpu(),
            "mean_completion_length": lengths[-1] if lengths else None}


def ensure_model_dir(path: str | None) -> str:
    """A transformers folder of the default model, written once by `pte export --base`."""
    if path:
        return path
    path = os.path.join("runs", "vs_trl", "smollm2-135m-instruct")
    if not os.path.isfile(os.path.join(path, "config.json")):
        subprocess.run([sys.executable, "-m", "pte_cli", "export", "--base", "--output", path], check=True)
    return path


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("torch", "transformers", "trl", "peft", "accelerate", "pte-rl"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case")
    p.add_argument("--model-dir", default=None, help="transformers folder [default: the built-in model, exported]")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--window", type=int, default=128, help="PTE's cache budget (prompt included)")
    p.add_argument("--steps", type=int, default=3, help="steps per side; the first is a warm-up, not timed")
    p.add_argument("--beta", type=float, default=0.001, help="KL weight on both sides (0: no reference pass)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--sides", nargs="+", default=["pte", "trl"], choices=["pte", "trl"])
    a = p.parse_args()
    if a.case:
        spec = json.loads(a.case)
        print(json.dumps(pte_case(spec) if spec["side"] == "pte" else trl_case(spec)))
        return
    model_dir = ensure_model_dir(a.model_dir)
    summary = {"machine": machine(), "versions": versions(), "device": a.device, "model_dir": model_dir,
               "flops_per_token": flops_per_token(model_dir), "runs": []}
    for dtype in a.dtype:
        run = {"dtype": dtype}
        for side in a.sides:
            spec = {"side": side, "model_dir": model_dir, "device": a.device, "dtype": dtype, "prompts": a.prompts,
                    "group": a.group, "tokens": a.tokens, "window": a.window, "steps": max(2, a.steps),
                    "beta": a.beta, "temperature": a.temperature, "learning_rate": a.learning_rate}
            run[side] = run_isolated(__file__, spec)
            print(json.dumps(run[side]), file=sys.stderr)
        pte, trl = run.get("pte", {}), run.get("trl", {})
        if "seconds_per_step" in pte and "seconds_per_step" in trl:
            run["time_ratio_pte_over_trl"] = pte["seconds_per_step"] / trl["seconds_per_step"]
            run["memory_ratio_pte_over_trl"] = pte["peak_rss_gb"] / trl["peak_rss_gb"]
            if "cuda_max_allocated_mb" in pte and "cuda_max_allocated_mb" in trl:
                run["gpu_memory_ratio_pte_over_trl"] = pte["cuda_max_allocated_mb"] / trl["cuda_max_allocated_mb"]
        if "decode_tokens_per_s" in pte:
            achieved = pte["decode_tokens_per_s"] * summary["flops_per_token"] / 1e9
            run["decode_gflops"] = achieved
            run["decode_fraction_of_fp32_matmul"] = {k: achieved / v for k, v in pte["matmul_gflops"].items()}
        summary["runs"].append(run)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
