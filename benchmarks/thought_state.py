"""What the thought state keeps on the real default model: effective rank, energy share, decay.

    python benchmarks/thought_state.py [--tokens 400] [--window 128] [-o attention=bilinear ...]

Samples one story under lru-prompt-keep (every event is recorded), then prints one JSON object:
per layer the state's effective rank (of 32) and top-singular-value energy share after 10
events, and the mean cosine of the state after event k with event k's and event k-3's own
update. An untrained encoder is measured: the adapter's A is zero, so the rollout itself does
not depend on the encoder, and every variant sees the same evicted tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402

PROMPT = "Write a long story about a dragon and a knight."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--after", type=int, default=10, help="Events before rank is measured.")
    ap.add_argument("-o", dest="options", action="append", default=[], help="Encoder option FIELD=VALUE.")
    args = ap.parse_args()

    import torch

    from pte_cache import LRUPromptKeep, PolicyConfig
    from pte_rl import HFBackend, HFConfig, PTEModel, SamplingConfig, chat_prompt, eos_ids, sample
    from pte_thought import ProgressiveEncoder, StateProbe, ThoughtConfig

    options = dict(o.split("=", 1) for o in args.options)
    config = ThoughtConfig(**options)
    model, tok = HFBackend(HFConfig(dtype="float32")).load()
    pte = PTEModel(model, ProgressiveEncoder(config))
    probes = pte.watch_states(StateProbe)
    cfg = SamplingConfig(max_new_tokens=args.tokens, min_new_tokens=args.tokens, temperature=0.7)
    sample(pte, [chat_prompt(tok, PROMPT)], LRUPromptKeep(PolicyConfig(cache_window=args.window)), cfg,
           eos_ids(model, tok), generator=torch.Generator(device=pte.device).manual_seed(0))
    layers = probes[0].summary(after=args.after)
    keys = [k for k in layers[0] if k != "layer"]
    print(json.dumps({
        "machine": machine(),
        "encoder": config.model_dump(),
        "events": len(probes[0].states),
        "min": {k: round(min(x[k] for x in layers), 3) for k in keys},
        "max": {k: round(max(x[k] for x in layers), 3) for k in keys},
        "layers": [{k: round(v, 3) for k, v in x.items()} for x in layers],
    }))


if __name__ == "__main__":
    main()
