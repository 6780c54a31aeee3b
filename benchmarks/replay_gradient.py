"""Replay gradient vs the exact gradient of the same completions and schedule, on the default model.

    python benchmarks/replay_gradient.py [--adapter DIR] [--tokens 64] [--window 0] [--rows 8]

Samples ``--rows`` completions (arithmetic prompts, temperature 0.7) under lru-prompt-keep
(``--window 0``: the training default, generated-token window = longest prompt), then computes
the gradient of sum_t w_t log p(token t) (fixed random weights, as advantages x loss weights) with
``graph="exact"`` (the oracle: every path kept) and with the training modes. Prints JSON: cosine
to exact for all trainable parameters and per group (LoRA A, LoRA B, encoder), time and peak RSS
of each mode. Without ``--adapter`` the LoRA A factors get small random values (a zero A, the
untrained state, has no paths through earlier tokens and makes every mode trivially exact).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import PeakRSS, machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--window", type=int, default=0, help="Cache budget incl. prompt; 0 = dynamic window.")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--modes", nargs="+", default=["window", "chunk"])
    args = ap.parse_args()

    import torch

    from pte_cache import LRUPromptKeep, PolicyConfig
    from pte_cli.datasets import arithmetic
    from pte_lora import load_adapter, read_manifest
    from pte_rl import HFBackend, HFConfig, PTEModel, SamplingConfig, chat_prompt, eos_ids, replay_logprobs, sample
    from pte_thought import ProgressiveEncoder

    torch.manual_seed(0)
    model, tok = HFBackend(HFConfig(dtype="float32")).load()
    lora = read_manifest(args.adapter).lora if args.adapter else None
    pte = PTEModel(model, ProgressiveEncoder(), lora)
    if args.adapter:
        load_adapter(args.adapter, pte.lora, pte.encoder)
    else:
        with torch.no_grad():
            for m in pte.lora.modules.values():  # PEFT's lora_B is our A (zero at init)
                m.lora_B.weight.normal_(0, 0.01)
    rows = arithmetic(args.rows, seed=7)
    prompts = [chat_prompt(tok, r["prompt"]) for r in rows]
    policy = LRUPromptKeep(PolicyConfig(cache_window=args.window or 256, dynamic_window=not args.window))
    cfg = SamplingConfig(max_new_tokens=args.tokens, min_new_tokens=args.tokens, temperature=0.7)
    comps = sample(pte, prompts, policy, cfg, eos_ids(model, tok), pad_id=tok.pad_token_id,
                   generator=torch.Generator(device=pte.device).manual_seed(0))
    # drawn on the CPU (the same weights on every device), used where the log-probs are
    weights = torch.randn(len(comps), args.tokens + 1, generator=torch.Generator().manual_seed(5)).to(pte.device)
    params = pte.trainable_parameters()
    names = [f"{m}.{ab}" for m in pte.lora.modules for ab in ("lora_A", "lora_B")]
    names += [f"encoder.{n}" for n, p in pte.encoder.named_parameters() if p.requires_grad]

    def grad(mode):
        for p in params:
            p.grad = None

        def on_chunk(lp, mask, cols):
            return (lp * mask * weights[:, cols]).sum()

        with PeakRSS() as mem:
            t = time.perf_counter()
            replay_logprobs(pte, comps, temperature=0.7, max_chunk=args.chunk, on_chunk=on_chunk,
                            pad_id=tok.pad_token_id, graph=mode)
            seconds = time.perf_counter() - t
        flat = [(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params]
        return flat, seconds, {"peak_rss_mb": round(mem.peak - mem.start), **mem.gpu()}

    def cos(a, b):
        a, b = torch.cat(a), torch.cat(b)
        return round(float(a @ b / (a.norm() * b.norm()).clamp(min=1e-30)), 4)

    exact, t_exact, m_exact = grad("exact")
    out = {"machine": machine(), "tokens": args.tokens, "rows": args.rows, "cache_window": args.window or "dynamic",
           "evictions_per_completion": sum(c.num_evictions for c in comps) / len(comps),
           "adapter": args.adapter or "random A ~ N(0, 0.01)",
           "exact": {"seconds": round(t_exact, 2), **m_exact}}
    for mode in args.modes:
        g, t, m = grad(mode)
        part = {}
        for label, key in (("lora_A", "lora_A"), ("lora_B(=A)", "lora_B"), ("encoder", "encoder.")):
            idx = [i for i, n in enumerate(names) if key in n]
            part[label] = cos([g[i] for i in idx], [exact[i] for i in idx])
        out[mode] = {"cosine": cos(g, exact), "cosine_by_group": part, "seconds": round(t, 2), **m}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
