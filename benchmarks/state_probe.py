"""Does a trained thought state carry what was evicted? Score a progressive adapter three ways.

    python benchmarks/state_probe.py --adapter RUN/checkpoints/step-000010/adapter \
        [--dataset heldout.jsonl] [--limit 128] [--max-new-tokens 48] [--cache-window W]

Under the cache the adapter was trained with (or ``--cache-window``), greedy, on held-out rows:

- ``trained``: as trained (every eviction event updates the state from the evicted K/V);
- ``no-updates``: eviction events leave the state alone (it stays at the learned initial state:
  Global-Only with the trained weights);
- ``swapped``: each row's update is computed from another row's evicted K/V (the other rows of
  the same event, in turn; a row evicting alone takes the previous event's K/V of another row).

Prints one JSON object: accuracy per mode (n, 95% Wilson interval), the paired difference to
``trained`` over the same problems (normal 95% interval), and the mean per-token log-likelihood
of the ``trained`` completions when replayed under each mode (same tokens, same eviction
schedule; paired interval over completions). If the state carries the evicted content, the
last two modes lose on both. Default dataset: the default job's held-out problems.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402

MODES = ("trained", "no-updates", "swapped")


def paired(a: list[float], b: list[float], z: float = 1.96) -> dict:
    """Mean of a - b over pairs and its normal 95% interval."""
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / max(n - 1, 1) / n)
    return {"mean": round(mean, 4), "n": n, "ci95": [round(mean - z * se, 4), round(mean + z * se, 4)]}


def state_class(mode: str):
    """A ThoughtState whose eviction updates follow ``mode``."""
    from types import SimpleNamespace

    import torch

    from pte_thought import ThoughtState

    class NoUpdates(ThoughtState):
        def __call__(self, event) -> None:
            pass

    class Swapped(ThoughtState):
        """Row b's update from another row's evicted K/V (see the module docstring)."""

        previous = None  # (keys, values, mask, rows) of the last event

        def __call__(self, event) -> None:
            rows = [int(b) for b in torch.nonzero(event.mask.any(1)).flatten()]
            keys = [k.clone() for k in event.keys]
            values = [v.clone() for v in event.values]
            mask = event.mask.clone()
            prev = self.previous
            for i, b in enumerate(rows):
                others = [r for r in rows if r != b]
                if others:
                    src, sk, sv, sm = others[i % len(others)], event.keys, event.values, event.mask
                elif prev is not None and any(r != b for r in prev[3]):
                    src = next(r for r in prev[3] if r != b)
                    sk, sv, sm = prev[0], prev[1], prev[2]
                else:
                    mask[b] = False  # nothing else to take: no update for this row
                    continue
                m = min(sm.shape[1], mask.shape[1])
                for layer in range(len(keys)):
                    keys[layer][b] = 0
                    values[layer][b] = 0
                    keys[layer][b, :, :m] = sk[layer][src, :, :m]
                    values[layer][b, :, :m] = sv[layer][src, :, :m]
                mask[b] = False
                mask[b, :m] = sm[src, :m]
            self.previous = ([k.clone() for k in event.keys], [v.clone() for v in event.values],
                             event.mask.clone(), rows)
            super().__call__(SimpleNamespace(keys=keys, values=values, mask=mask))

        def select_rows(self, rows) -> None:
            super().select_rows(rows)
            self.previous = None  # row indices changed

    return {"trained": ThoughtState, "no-updates": NoUpdates, "swapped": Swapped}[mode]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--dataset", default=None, help="JSONL with prompt and answer [default: the default job's held-out set].")
    ap.add_argument("--limit", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="[default: the default job's]")
    ap.add_argument("--cache-window", type=int, default=None, help="[default: the adapter's training cache]")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()

    import torch

    from pte_cli.build import adapter_encoder, choice_of, load_model
    from pte_cli.train import load_data
    from pte_lora import read_manifest
    from pte_rl import Completion, SamplingConfig, chat_prompt, eos_ids, replay_logprobs, sample
    from pte_rl.config import DataConfig, PluginChoice, TrainConfig
    from pte_rl.rewards.math import score_item
    from pte_rl.stats import wilson_interval

    manifest = read_manifest(args.adapter)
    if manifest.encoder != "progressive":
        sys.exit(f"{args.adapter}: encoder {manifest.encoder!r}; the probe needs a progressive adapter")
    if args.dataset:
        from pte_rl.data import load_problems

        problems = load_problems(args.dataset)[0]
    else:
        problems = load_data(DataConfig())[1]
    problems = problems[: args.limit]
    options = dict(manifest.eviction_options)
    if args.cache_window is not None:
        options.update(cache_window=args.cache_window, dynamic_window=False)
    # the policy the adapter was trained under (lru-prompt-keep, streaming-llm, a plugin's), by name
    eviction = choice_of("eviction", PluginChoice(name=manifest.eviction or "lru-prompt-keep", options=options))
    max_new = args.max_new_tokens or TrainConfig().max_new_tokens

    backend = choice_of("backend", PluginChoice(name="hf", options={"model": manifest.base_model}))
    encoder = adapter_encoder(args.adapter, None, False)
    pte, tok = load_model(backend, encoder, args.adapter)
    eos = eos_ids(pte.model, tok)
    prompts = [chat_prompt(tok, p.messages or p.prompt, manifest.system) for p in problems]
    greedy = SamplingConfig(max_new_tokens=max_new, temperature=0.0)
    plain_new_state = pte.new_state

    results, correct, trained_completions = {}, {}, None
    for mode in MODES:
        cls = state_class(mode)
        pte.new_state = lambda batch, replay=False, cls=cls: cls(pte.encoder, pte.num_layers, batch, replay=replay)
        done = []
        for s in range(0, len(prompts), args.batch_size):
            done += sample(pte, prompts[s : s + args.batch_size], eviction.build(), greedy, eos,
                           pad_id=tok.pad_token_id or 0)
        texts = [tok.decode(c.token_ids, skip_special_tokens=True) for c in done]
        correct[mode] = [float(score_item(t, p.answer)[0] >= 1.0) for t, p in zip(texts, problems)]
        if mode == "trained":
            trained_completions = done
        # the trained completions, replayed under this mode: same tokens and eviction schedule
        loglik = []
        with torch.no_grad():
            for s in range(0, len(done), 16):
                chunk = [Completion(c.prompt_ids, c.token_ids, schedule=c.schedule)
                         for c in trained_completions[s : s + 16]]
                lp, _ = replay_logprobs(pte, chunk, 1.0, max_chunk=64, pad_id=tok.pad_token_id or 0)
                loglik += [float(lp[b, : len(c.token_ids)].mean()) for b, c in enumerate(chunk)]
        n = len(problems)
        c = int(sum(correct[mode]))
        low, high = wilson_interval(c, n)
        results[mode] = {
            "accuracy": c / n, "n": n, "ci95": [round(low, 3), round(high, 3)],
            "mean_loglik_of_trained_completions": round(sum(loglik) / len(loglik), 4),
            "evictions_per_completion": sum(x.num_evictions for x in done) / n,
            # the rollout counts an update per event for any state that takes K/V; NoUpdates drops them
            "state_updates_per_completion": 0.0 if mode == "no-updates" else sum(x.num_state_updates for x in done) / n,
            "_loglik": loglik,
        }
    pte.new_state = plain_new_state
    for mode in MODES[1:]:
        results[mode]["accuracy_minus_trained"] = paired(correct[mode], correct["trained"])
        results[mode]["loglik_minus_trained"] = paired(results[mode]["_loglik"], results["trained"]["_loglik"])
    for mode in MODES:
        del results[mode]["_loglik"]
    events = [len(p) for c in trained_completions for _, p in c.schedule]
    print(json.dumps({
        "machine": machine(), "adapter": args.adapter, "eviction": eviction.name, "cache": eviction.options(),
        "max_new_tokens": max_new, "evicted_tokens_per_event": sum(events) / max(len(events), 1),
        "modes": results,
    }))


if __name__ == "__main__":
    main()
