"""Can the thought state carry evicted tokens at all? A supervised recall test under the bounded cache.

    python benchmarks/recall_probe.py [--methods PTE Global-Only LoRA_c] [--steps 150] [--seeds 0]

RL on arithmetic has not shown the state carrying evicted content (docs/method.md, "The thought
state"), but that mixes three questions: can the encoder hold the content, does the replay
gradient teach it to, and does the task need it. This probe removes the task question. Every
row is, teacher-forced:

    prompt:      "Remember the code and repeat it at the end."      (kept: the prompt never leaves)
    completion:  " The code is 4729." + filler + " The code was 4729"

The cache keeps the prompt and a window of ``--window`` generated tokens, evicting
``--evict-ratio`` of it when full, so the code has left the cache several events before the
recall. The code is random per row, so nothing in the prompt or the filler tells it: a model
that names the digits at the recall has carried them across their eviction, through the thought
state or through the hidden states of the tokens still in the window (which attended to the
code while it was there).

Each method trains its adapter with cross-entropy on the recalled digits only, through the same
replay the GRPO trainer uses (``replay_logprobs``, ``--graph`` as ``TrainConfig.replay_graph``),
on fresh codes every step; then it is scored on held-out codes (teacher-forced, per digit: the
argmax over the vocabulary is the digit; chance is 10%). PTE is also scored with its eviction
updates switched off and with each row's update computed from another row's evicted K/V (as
benchmarks/state_probe.py). If the state carries the code: PTE beats Global-Only and LoRA_c, and
both ablations fall to their level. Prints one JSON line per (method, seed) and a summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402
from state_probe import paired, state_class  # noqa: E402

METHODS = {"PTE": "progressive", "Global-Only": "global-only", "LoRA_c": "none"}
PROMPT = "Remember the code and repeat it at the end."
FILLER = (" Now I will talk about something else for a while, so that the code is far behind."
          " The weather is mild today and the river runs slowly past the old mill near the town.")


def build(tok, digits: int, filler_repeats: int):
    """Token pieces of a row: (prompt ids, head ids, digit token ids 0-9, filler ids, cue ids).
    Digits are one token each (checked), so every row has the same length."""
    enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
    digit_ids = [enc(str(d)) for d in range(10)]
    if any(len(t) != 1 for t in digit_ids) or enc(" The code is 4729") != enc(" The code is ") + [digit_ids[d][0] for d in (4, 7, 2, 9)]:
        sys.exit(f"digits are not one token each for this tokenizer: {digit_ids}")
    return (enc(PROMPT), enc(" The code is "), [t[0] for t in digit_ids], enc("." + FILLER * filler_repeats),
            enc(" The code was "))


def make_rows(pieces, codes):
    """Completions (token ids) and, per row, the completion columns of the recalled digits."""
    prompt, head, digit_ids, filler, cue = pieces
    rows, targets = [], []
    for code in codes:
        said = [digit_ids[d] for d in code]
        ids = head + said + filler + cue + said
        rows.append(ids)
        targets.append(list(range(len(ids) - len(code), len(ids))))
    return prompt, rows, targets


def teacher_forced(pte, prompt, rows, policy_factory, state_cls=None):
    """Decode every row token by token under the bounded cache, feeding the given tokens.
    Returns (logits [B, T, V] predicting each completion column, per-row eviction schedules)."""
    import torch

    from pte_rl.rollout import left_pad
    from pte_thought import ThoughtState

    device = pte.device
    batch = len(rows)
    state = (state_cls or ThoughtState)(pte.encoder, pte.num_layers, batch)
    cache = pte.new_cache(policy_factory(), state)
    ids, real = left_pad([prompt] * batch, 0, device)
    tokens = torch.tensor(rows, device=device)
    outs = [pte.logits(pte.forward(ids, real, cache, state)[:, -1]).float()]
    one = torch.ones(batch, 1, dtype=torch.bool, device=device)
    for j in range(tokens.shape[1] - 1):
        outs.append(pte.logits(pte.forward(tokens[:, j : j + 1], one, cache, state, dense=True)[:, -1]).float())
    schedules = [[] for _ in range(batch)]
    for event in cache.events:
        for b in event.rows():
            schedules[int(b)].append((event.step, event.positions_of(b)))
    return torch.stack(outs, 1), schedules


def score(logits, rows, targets):
    """Per (row, digit): 1.0 where the argmax is the digit, and the digit's log-prob."""
    import torch

    hits, logps = [], []
    for b, cols in enumerate(targets):
        for c in cols:
            lp = torch.log_softmax(logits[b, c], -1)
            hits.append(float(int(lp.argmax()) == rows[b][c]))
            logps.append(float(lp[rows[b][c]]))
    return hits, logps


def run(args, method: str, seed: int) -> dict:
    import torch

    from pte_cache import Full, LRUPromptKeep, PolicyConfig
    from pte_cli.build import choice_of, load_model
    from pte_rl import Completion, replay_logprobs
    from pte_rl.config import PluginChoice

    torch.manual_seed(seed)
    backend = choice_of("backend", PluginChoice(name="hf", options={"dtype": args.dtype}))
    encoder = choice_of("encoder", PluginChoice(name=METHODS[method]))
    pte, tok = load_model(backend, encoder)
    pieces = build(tok, args.digits, args.filler_repeats)
    budget = len(pieces[0]) + args.window
    policy_factory = lambda: LRUPromptKeep(PolicyConfig(cache_window=budget, evict_ratio=args.evict_ratio))  # noqa: E731

    rng = torch.Generator().manual_seed(10_000 + seed)
    draw = lambda n: torch.randint(0, 10, (n, args.digits), generator=rng).tolist()  # noqa: E731
    heldout = torch.randint(0, 10, (args.heldout, args.digits), generator=torch.Generator().manual_seed(7)).tolist()

    def evaluate(state_cls=None, policy=policy_factory):
        hits, logps, schedules = [], [], None
        with torch.no_grad():
            for s in range(0, len(heldout), args.batch):
                prompt, rows, targets = make_rows(pieces, heldout[s : s + args.batch])
                logits, schedules = teacher_forced(pte, prompt, rows, policy, state_cls)
                h, lp = score(logits, rows, targets)
                hits += h
                logps += lp
        return hits, logps, schedules

    prompt, rows, targets = make_rows(pieces, heldout[:1])
    _, schedule = teacher_forced(pte, prompt, rows, policy_factory)
    code_at = len(prompt) + len(pieces[1])  # absolute position of the first digit
    gone = [step for step, pos in schedule[0] if code_at + args.digits - 1 in pos]
    recall_step = targets[0][0]  # completion column of the first recalled digit
    layout = {"prompt_tokens": len(prompt), "completion_tokens": len(rows[0]), "cache_budget": budget,
              "events": len(schedule[0]), "tokens_per_event": [len(p) for _, p in schedule[0]],
              "code_evicted_at_step": gone[0] if gone else None, "recall_at_step": recall_step,
              "events_between_code_eviction_and_recall":
                  sum(1 for step, _ in schedule[0] if gone and gone[0] < step <= recall_step)}
    if not gone or gone[0] > recall_step:
        sys.exit(f"the code is still in the cache at the recall: {layout}; lower --window or add filler")

    before = evaluate()[0]
    before_full = evaluate(policy=Full)[0]  # the same untrained model with nothing evicted
    params = pte.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    t0 = time.perf_counter()
    curve = []
    for step in range(args.steps):
        prompt, rows, targets = make_rows(pieces, draw(args.batch))
        # every row has the same lengths, and the built-in policies decide by lengths alone: the
        # schedule recorded above is every row's, so no decode pass is needed to record it again
        comps = [Completion(prompt, r, schedule=schedule[0]) for r in rows]
        target_mask = torch.zeros(len(rows), len(rows[0]), device=pte.device)
        for b, cols in enumerate(targets):
            target_mask[b, cols] = 1.0
        total = target_mask.sum()

        def on_chunk(lp, mask, cols, target_mask=target_mask, total=total):
            weight = target_mask[:, cols]
            if not bool(weight.any()):
                return None
            return -(lp * weight).sum() / total

        opt.zero_grad(set_to_none=True)
        lp, _ = replay_logprobs(pte, comps, 1.0, max_chunk=args.chunk, on_chunk=on_chunk, graph=args.graph)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        loss = float(-(lp * target_mask).sum() / total)
        curve.append(round(loss, 4))
        if args.verbose and (step % 10 == 0 or step == args.steps - 1):
            print(f"  {method} seed {seed} step {step}: recall loss {loss:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    train_s = time.perf_counter() - t0

    result = {"method": method, "seed": seed, "train_s": round(train_s, 1), "layout": layout,
              "loss_first_last10": [round(sum(curve[:10]) / max(len(curve[:10]), 1), 4),
                                    round(sum(curve[-10:]) / max(len(curve[-10:]), 1), 4)]}
    modes = {"trained": None}
    if pte.encoder.updates:
        modes["no-updates"] = state_class("no-updates")
        modes["swapped"] = state_class("swapped")
    scored = {}
    for mode, cls in modes.items():
        hits, logps, _ = evaluate(cls)
        scored[mode] = hits
        n = len(hits)
        acc = sum(hits) / n
        se = math.sqrt(acc * (1 - acc) / n)
        result[mode] = {"digit_accuracy": round(acc, 4), "n_digits": n, "ci95": [round(acc - 1.96 * se, 4), round(acc + 1.96 * se, 4)],
                        "mean_digit_logprob": round(sum(logps) / n, 4)}
    result["untrained_digit_accuracy"] = round(sum(before) / len(before), 4)
    result["untrained_full_cache_digit_accuracy"] = round(sum(before_full) / len(before_full), 4)
    for mode in list(modes)[1:]:
        result[mode]["minus_trained"] = paired(scored[mode], scored["trained"])
    result["_hits"] = scored["trained"]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--digits", type=int, default=4)
    ap.add_argument("--window", type=int, default=16, help="Generated tokens the cache keeps beside the prompt.")
    ap.add_argument("--evict-ratio", type=float, default=0.5)
    ap.add_argument("--filler-repeats", type=int, default=1)
    ap.add_argument("--heldout", type=int, default=128, help="Held-out codes (x digits scored).")
    ap.add_argument("--graph", default="window", choices=["window", "chunk", "exact"])
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    results = []
    for seed in args.seeds:
        for method in args.methods:
            r = run(args, method, seed)
            results.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "_hits"}), flush=True)
    summary = {"machine": machine(), "args": vars(args), "methods": {}}
    for method in args.methods:
        rs = [r for r in results if r["method"] == method]
        summary["methods"][method] = {"per_seed": [r["trained"]["digit_accuracy"] for r in rs]}
    if "PTE" in args.methods:
        for other in [m for m in args.methods if m != "PTE"]:
            pairs = [paired(a["_hits"], b["_hits"]) for a in results if a["method"] == "PTE"
                     for b in results if b["method"] == other and b["seed"] == a["seed"]]
            summary["methods"][other]["PTE_minus_this_per_seed"] = pairs
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
