"""Decode throughput and memory of the default model: bounded cache vs full cache vs model.generate.

    python benchmarks/decode_throughput.py [--batch 8] [--tokens 512 1024 2048] [--window 256]
    python benchmarks/decode_throughput.py --loops pte-lru compiled-lru   # eager vs compiled step

``compiled-lru`` decodes with ``PTEModel.compile_decode()`` (a static cache, one compiled step;
``reduce-overhead``, i.e. CUDA graphs, on a GPU); its compile time is a warm-up rollout of the same
shape, reported as ``compile_s`` and not counted in tokens/s.

Every case runs in its own process. Prints one JSON object: tokens/s, peak RSS during generation
(MB above the loaded model), the bounded/full speed ratio at the longest length, and whether the
bounded peak stays flat across lengths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import PeakRSS, machine, run_isolated  # noqa: E402

PROMPT = "Write a very long and detailed story about a dragon who learns mathematics."


def case(spec: dict) -> dict:
    import torch

    from pte_cache import Full, LRUPromptKeep, PolicyConfig
    from pte_rl import HFBackend, PTEModel, SamplingConfig, chat_prompt, sample
    from pte_thought import IdentityEncoder, ProgressiveEncoder

    torch.manual_seed(0)
    from pte_rl import HFConfig

    model, tok = HFBackend(HFConfig(dtype=spec.get("dtype", "float32"))).load()
    ids = chat_prompt(tok, PROMPT)
    batch, tokens = spec["batch"], spec["tokens"]
    compile_s = None
    if spec["loop"] == "compiled":
        encoder = ProgressiveEncoder() if spec["encoder"] == "progressive" else IdentityEncoder()
        pte = PTEModel(model, encoder)
        pte.compile_decode(mode="reduce-overhead" if pte.device.type == "cuda" else None)
        t = time.perf_counter()  # warm-up: the same cache shape (prompt + window) in fewer tokens
        sample(pte, [ids] * batch, LRUPromptKeep(PolicyConfig(cache_window=spec["window"])),
               SamplingConfig(max_new_tokens=spec["window"], min_new_tokens=spec["window"], temperature=1.0),
               eos_ids=[tok.eos_token_id], generator=torch.Generator(device=pte.device).manual_seed(1))
        compile_s = time.perf_counter() - t
    with PeakRSS() as mem:
        t = time.perf_counter()
        if spec["loop"] == "generate":
            x = torch.tensor([ids] * batch, device=model.device)
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=tokens, min_new_tokens=tokens,
                                 do_sample=True, temperature=1.0, top_k=0, pad_token_id=tok.pad_token_id)
            produced = (out.shape[1] - len(ids)) * batch
            evictions = 0
        else:
            if spec["loop"] != "compiled":
                encoder = ProgressiveEncoder() if spec["encoder"] == "progressive" else IdentityEncoder()
                pte = PTEModel(model, encoder)
            policy = LRUPromptKeep(PolicyConfig(cache_window=spec["window"])) if spec["policy"] == "lru" else Full()
            cfg = SamplingConfig(max_new_tokens=tokens, min_new_tokens=tokens, temperature=1.0)
            done = sample(pte, [ids] * batch, policy, cfg, eos_ids=[tok.eos_token_id],
                          generator=torch.Generator(device=pte.device).manual_seed(0))
            produced = sum(len(c.token_ids) for c in done)
            evictions = sum(c.num_evictions for c in done) / batch
        seconds = time.perf_counter() - t
    return {**spec, "tokens_per_s": produced / seconds, "seconds": seconds,
            "peak_rss_mb_above_model": mem.peak - mem.start, **mem.gpu(), "evictions_per_row": evictions,
            **({"compile_s": compile_s} if compile_s is not None else {})}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--case")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--tokens", type=int, nargs="+", default=[512, 1024, 2048])
    p.add_argument("--window", type=int, default=256)
    p.add_argument("--encoder", default="none", choices=["none", "progressive"])
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--loops", nargs="+", default=["pte-lru", "pte-full", "generate-full"])
    a = p.parse_args()
    if a.case:
        print(json.dumps(case(json.loads(a.case))))
        return
    results = []
    for tokens in a.tokens:
        for loop, policy in (x.split("-") for x in a.loops):
            spec = {"loop": loop, "policy": policy, "batch": a.batch, "tokens": tokens, "window": a.window,
                    "encoder": a.encoder, "dtype": a.dtype}
            results.append(run_isolated(__file__, spec))
            print(json.dumps(results[-1]), file=sys.stderr)
    longest = max(a.tokens)

    def pick(loop, policy, tokens):
        return next(r for r in results if r["loop"] == loop and r["policy"] == policy and r["tokens"] == tokens)

    summary = {"machine": machine(), "cases": results}
    try:
        summary["speedup_compiled_vs_eager"] = {
            str(t): pick("compiled", "lru", t)["tokens_per_s"] / pick("pte", "lru", t)["tokens_per_s"] for t in a.tokens}
    except (StopIteration, KeyError):
        pass
    try:
        bounded = [pick("pte", "lru", t)["peak_rss_mb_above_model"] for t in a.tokens]
        summary["speedup_bounded_vs_full_loop"] = (pick("pte", "lru", longest)["tokens_per_s"]
                                                   / pick("pte", "full", longest)["tokens_per_s"])
        summary["speedup_bounded_vs_generate"] = (pick("pte", "lru", longest)["tokens_per_s"]
                                                  / pick("generate", "full", longest)["tokens_per_s"])
        summary["bounded_peak_mb_by_length"] = dict(zip(map(str, a.tokens), bounded))
        summary["bounded_peak_spread"] = (max(bounded) - min(bounded)) / max(max(bounded), 1e-9)
    except (StopIteration, KeyError):
        pass  # a subset of loops was asked for
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
