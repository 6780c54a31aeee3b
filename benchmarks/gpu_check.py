"""One prepared check of the CUDA path on one NVIDIA GPU, in about 8 minutes; prints one JSON.

    python benchmarks/gpu_check.py [--model /path/to/Qwen2.5-0.5B-Instruct] [--budget 480]

What it runs, each part under its own time limit so that the whole stays inside --budget:

1. the tests marked for CUDA (tests/test_cuda.py: bounded decode + replay on the GPU reproduce
   the sampling log-probs; `pte train` runs a step there);
2. decode tokens/s, bounded cache eager, bounded cache with the compiled step (CUDA graphs,
   ``PTEModel.compile_decode(mode="reduce-overhead")``; compile time reported apart) and the
   full-cache loop, batch 32, 1024 new tokens, bf16 (benchmarks/decode_throughput.py);
3. one PTE step (lru-prompt-keep window 256 + progressive) and one full-cache LoRA step at
   4 prompts x 8 completions x 1024 tokens on the default model, and on --model if given
   (benchmarks/train_step.py: s/step, CUDA max allocated / reserved, RSS);
4. benchmarks/vs_trl.py --device cuda when TRL and PEFT are installed (`pip install 'pte-cli[bench]'`).

A part that fails or runs out of time is recorded with its error and the rest still runs. On a
machine without CUDA it stops at once with a message (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import failure, machine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(name: str, cmd: list[str], limit: float) -> dict:
    """Run one part; its JSON (the last JSON document on stdout) or what went wrong."""
    print(f"+ [{name}] {' '.join(cmd)} (limit {limit:.0f} s)", file=sys.stderr, flush=True)
    t = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=max(limit, 1), cwd=ROOT,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    except subprocess.TimeoutExpired:
        return {"error": f"ran past its {limit:.0f} s limit", "seconds": round(time.perf_counter() - t, 1)}
    out = {"seconds": round(time.perf_counter() - t, 1), "returncode": done.returncode}
    if done.returncode != 0:
        return {**out, **failure(done.returncode, done.stderr or done.stdout)}
    text = done.stdout.strip()
    start = text.rfind("\n{") + 1 if not text.startswith("{") else 0
    try:
        out["result"] = json.loads(text[start:])
    except json.JSONDecodeError:
        out["output_tail"] = text[-2000:]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="a local 0.5B-3B transformers folder to step as well")
    ap.add_argument("--budget", type=float, default=480, help="seconds for everything")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); run it on an NVIDIA GPU",
              file=sys.stderr)
        sys.exit(2)
    t0 = time.perf_counter()
    py = sys.executable
    parts = [
        ("cuda_tests", [py, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py"], 0.20),
        ("decode", [py, f"{HERE}/decode_throughput.py", "--batch", "32", "--tokens", "1024", "--dtype", "bfloat16",
                    "--loops", "pte-lru", "compiled-lru", "pte-full"], 0.20),
        ("train_step_default_model", [py, f"{HERE}/train_step.py", "--tokens", "1024", "--prompts", "4",
                                      "--group", "8", "--window", "256", "--dtype", "bfloat16"], 0.25),
    ]
    if args.model:
        parts.append(("train_step_model", [py, f"{HERE}/train_step.py", "--tokens", "1024", "--prompts", "4",
                                           "--group", "8", "--window", "256", "--dtype", "bfloat16",
                                           "--model", args.model], 0.20))
    try:
        import peft  # noqa: F401
        import trl  # noqa: F401

        parts.append(("vs_trl", [py, f"{HERE}/vs_trl.py", "--device", "cuda", "--dtype", "bfloat16",
                                 "--tokens", "1024"], 0.20))
    except ImportError:
        pass
    share = sum(f for *_, f in parts)
    report = {"machine": machine(), "gpu": torch.cuda.get_device_name(0),
              "gpu_memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
              "cuda": torch.version.cuda, "bf16": torch.cuda.is_bf16_supported(), "parts": {}}
    for name, cmd, fraction in parts:
        left = args.budget - (time.perf_counter() - t0)
        report["parts"][name] = run(name, cmd, min(left, args.budget * fraction / share)) if left > 5 else \
            {"error": "no time left in --budget"}
    if "vs_trl" not in report["parts"]:
        report["parts"]["vs_trl"] = {"skipped": "TRL / PEFT not installed: pip install 'pte-cli[bench]'"}
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
