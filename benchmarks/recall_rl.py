"""GRPO on a task whose answer is evicted: does the thought state beat Global-Only and LoRA_c?

    python benchmarks/recall_rl.py [--methods PTE Global-Only LoRA_c] [--steps 40] [--seeds 0]

The data is ``pte data recall`` ("Remember this number: 6639. <filler> What was the number?"),
the cache ``streaming-llm`` with a budget shorter than the prompt (``--cache-window``, 4 sink
tokens), so the number leaves the cache at the first decode step, before any answer token. The
reward is ``examples/recall_reward.py:digits`` (share of the number's digits right; the whole
number is what ``accuracy`` counts). Each method is trained with ``pte train`` on the same data
and seed, then scored on 128 held-out numbers, greedy, under the training cache and the full
cache (the trainer's own held-out eval). For PTE, ``benchmarks/state_probe.py`` then scores the
trained adapter with its eviction updates off and with another row's evicted K/V.

Note what the other methods can still use: the prompt tokens left in the window were computed at
prefill while the number was visible, so their keys and values carry some of it (a relay that
needs no thought state). Global-Only and LoRA_c measure how far that goes; PTE minus Global-Only
is what the state adds. ``--stream-prompt`` removes the direct relay: the prompt is read through
the window (``-o eviction.stream_prompt=true``), so no kept token attended to the number itself.
A relay through the layers remains (each layer's keys and values come from the layer below, whose
band reached a window further back): at ``--cache-window 40`` (the number 1.5 windows back) a
supervised Global-Only adapter learns it within 60 steps; at 16 (4.4 windows) it did not in 150
(docs/method.md). Prints one
JSON line per run and a summary.

``--methods LoRA`` is the paper's LoRA row: the same recipe with the full cache in both stages (its
trainer evals are then full-cache ones); ``benchmarks/recall_table.py`` scores it under the
bounded cache of the other runs.

``--warm-start-steps N`` first trains each method's adapter with cross-entropy on "The number
was D." under the same cache (``warm_start``), then runs GRPO from it (``pte train
--init-adapter``); ``benchmarks/recall_table.py`` turns the runs into the method table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
METHODS = {"PTE": ["--encoder", "progressive"], "Global-Only": ["--encoder", "global-only"],
           "#Global-0": ["--encoder", "progressive", "-o", "encoder.init=zero"], "LoRA_c": ["--encoder", "none"],
           "LoRA": ["--encoder", "none"]}
FULL_CACHE = {"LoRA"}  # trained (warm start and GRPO) with the full cache; recall_table.py scores it under the others'


def cache_args(method: str, window: int, stream_prompt: bool) -> list[str]:
    """The training cache of ``method``: the bounded ``streaming-llm`` cache, or none for LoRA."""
    if method in FULL_CACHE:
        return ["--eviction", "full"]
    return ["--eviction", "streaming-llm", "--cache-window", str(window), "--sink-tokens", "4",
            *(["-o", "eviction.stream_prompt=true"] if stream_prompt else [])]


def pte(*args: str, out: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "pte_cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        sys.exit(f"pte {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(done.stdout)
    return done.stdout


def warm_start(train_args: list[str], data: str, steps: int, lr: float, batch: int, seed: int, out: str,
               init: str | None = None, first_step: int = 0) -> dict:
    """Supervised warm start on the task's own format, under the run's own cache: ``steps`` steps of
    cross-entropy on "The number was D." + EOS (teacher-forced, every completion token), through
    the same replay and gradient mode GRPO uses; the adapter is saved to ``out`` for ``pte train
    --init-adapter``. ``train_args``: the ``pte train`` options of the GRPO stage, so both stages
    share one run config (model, cache, encoder, LoRA). ``init``/``first_step``: continue an earlier
    warm start from its adapter, at that step of the data order (the optimizer starts afresh).
    Returns the loss curve's first and last 5."""
    import torch

    from pte_cli.build import choice_of, load_model
    from pte_cli.train import build_run, train
    from pte_lora import AdapterManifest, save_adapter
    from pte_rl import chat_prompt, eos_ids, replay_logprobs, teacher_forced

    with train.make_context("train", list(train_args)) as ctx:
        run = build_run(ctx.params)
    backend, eviction, encoder = (choice_of(k, getattr(run, k)) for k in ("backend", "eviction", "encoder"))
    torch.manual_seed(seed)
    pte, tok = load_model(backend, encoder, adapter=init, lora=run.lora)
    stops = eos_ids(pte.model, tok)
    eos = tok.eos_token_id if tok.eos_token_id in stops else stops[0]
    rows = [json.loads(line) for line in open(data, encoding="utf-8")]
    order = random.Random(seed).sample(range(len(rows)), len(rows))
    params = pte.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    curve, t0 = [], time.perf_counter()
    for step in range(first_step, first_step + steps):
        picked = [rows[order[(step * batch + i) % len(rows)]] for i in range(batch)]
        prompts = [chat_prompt(tok, r["prompt"], run.system) for r in picked]
        answers = [tok.encode(f"The number was {r['answer']}.", add_special_tokens=False) + [eos] for r in picked]
        comps = teacher_forced(pte, prompts, answers, eviction.build())  # the schedule these tokens get
        total = float(sum(len(a) for a in answers))
        opt.zero_grad(set_to_none=True)
        lp, _ = replay_logprobs(pte, comps, 1.0, on_chunk=lambda lp, mask, cols, total=total: -(lp * mask).sum() / total,
                                max_chunk=run.train.replay_chunk, graph=run.train.replay_graph)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        curve.append(round(float(-lp.sum() / total), 4))
        print(f"warm start {out}: step {step} loss {curve[-1]:.3f} ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr, flush=True)
    manifest = AdapterManifest(pte_version="warm-start", base_model=backend.config.model, lora=run.lora,
                               encoder=encoder.name, encoder_options=encoder.options(), eviction=eviction.name,
                               eviction_options=eviction.options(), system=run.system)
    save_adapter(out, pte.lora, manifest, pte.encoder)
    return {"loss_first5": curve[:5], "loss_last5": curve[-5:], "seconds": round(time.perf_counter() - t0)}


def balance(path: str, seed: int, per_step: int, values: str) -> None:
    """Reassign the numbers of a one-digit recall file so that every step of the first pass of
    ``pte train --seed seed`` on one process (its data order: :class:`pte_rl.sampler.PromptSampler`)
    asks for each value equally often (``per_step`` a multiple of the number of values)."""
    from pte_rl.sampler import PromptSampler

    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    pool = sorted(set(values))
    rng = random.Random(seed + 7)
    steps = PromptSampler(list(range(len(rows))), per_step, seed)
    for step in range(len(rows) // per_step):
        block = steps.for_step(step)
        wanted = (pool * (len(block) // len(pool) + 1))[: len(block)]
        rng.shuffle(wanted)
        for i, value in zip(block, wanted):
            old = rows[i]["answer"]
            rows[i]["prompt"] = rows[i]["prompt"].replace(f"this number: {old}.", f"this number: {value}.", 1)
            rows[i]["answer"] = value
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="+", default=["PTE", "Global-Only", "LoRA_c"], choices=list(METHODS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--cache-window", type=int, default=40)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--filler", type=int, default=1,
                    help="Filler sentences between the number and the question (pte data recall --filler): "
                    "more puts the window's prompt tokens further from the number, a weaker prefill relay.")
    ap.add_argument("--digits", type=int, default=4, help="Digits of the number (pte data recall --digits).")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--values", default="0123456789",
                    help="Digits the number is drawn from (pte data recall --values): 38 with --digits 1 is a two-way choice.")
    ap.add_argument("--answer-form", action="store_true",
                    help="pte data recall --ask sentence: 'Answer with one sentence that starts with: The number was'. "
                    "Prompt tokens leave the cache when the first answer token is fed, so only tokens after it can "
                    "use the state that holds them; the preamble puts the digits there.")
    ap.add_argument("--beta", type=float, default=0.001, help="KL weight to the full-cache base model (pte train --beta).")
    ap.add_argument("--entropy-coef", type=float, default=0.0)
    ap.add_argument("--replay-graph", default="window", choices=["window", "chunk", "exact"])
    ap.add_argument("--balanced", action="store_true",
                    help="Write each seed's training file so that every step's prompts hold each value equally often "
                    "(with --digits 1): a step that happens to ask for one value more often pushes every row towards it, "
                    "a drift that can end in a policy that always answers one value.")
    ap.add_argument("--stream-prompt", action="store_true",
                    help="-o eviction.stream_prompt=true: the prompt is read through the window, so the kept "
                    "tokens never attended to the number itself (no direct prefill relay; one through the layers remains).")
    ap.add_argument("--warm-start-steps", type=int, default=0,
                    help="First train each method's adapter this many supervised steps on 'The number was D.' under "
                    "the same cache (warm_start), then run GRPO from it (pte train --init-adapter).")
    ap.add_argument("--warm-start-batch", type=int, default=32)
    ap.add_argument("--warm-start-lr", type=float, default=1e-3)
    ap.add_argument("--output-dir", default="runs/recall-rl")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="[default: 12 with --answer-form, else 8]")
    args = ap.parse_args()
    if args.balanced and (args.digits != 1 or args.prompts_per_step % len(set(args.values))):
        ap.error("--balanced needs --digits 1 and --prompts-per-step a multiple of the number of --values")

    os.makedirs(args.output_dir, exist_ok=True)
    heldout = os.path.join(args.output_dir, "heldout.jsonl")
    spec = ("--filler", str(args.filler), "--digits", str(args.digits), "--values", args.values,
            "--ask", "sentence" if args.answer_form else "number")
    pte("data", "recall", "--n", "128", "--seed", "99", *spec, out=heldout)
    train = os.path.join(args.output_dir, "train.jsonl")
    pte("data", "recall", "--n", "2000", "--seed", "0", *spec, out=train)
    new_tokens = str(args.max_new_tokens or (12 if args.answer_form else 8))
    summary = {"machine": machine(), "args": vars(args), "runs": []}
    for seed in args.seeds:
        data = train
        if args.balanced:  # this seed's data order decides which rows share a step
            data = os.path.join(args.output_dir, f"train-s{seed}.jsonl")
            shutil.copyfile(train, data)
            balance(data, seed, args.prompts_per_step, args.values)
        for method in args.methods:
            out = os.path.join(args.output_dir, f"{method}-s{seed}")
            train_args = ["--data", data, "--eval-data", heldout,
                *cache_args(method, args.cache_window, args.stream_prompt),
                "--reward", "examples/recall_reward.py:digits", "--max-new-tokens", new_tokens,
                "--temperature", str(args.temperature),
                *METHODS[method], "--max-steps", str(args.steps), "--prompts-per-step", str(args.prompts_per_step),
                "--group-size", str(args.group_size), "--learning-rate", str(args.learning_rate), "--seed", str(seed),
                "--output-dir", out, "--no-tensorboard", "--replay-sub-batch-size", "16",
                "--beta", str(args.beta), "--entropy-coef", str(args.entropy_coef), "--replay-graph", args.replay_graph]
            warm = None
            if args.warm_start_steps:
                adapter = os.path.join(args.output_dir, f"{method}-s{seed}-warm")
                warm = warm_start(train_args, data, args.warm_start_steps, args.warm_start_lr, args.warm_start_batch,
                                  seed, adapter)
                train_args += ["--init-adapter", adapter]
            pte("train", *train_args)
            rows = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"), encoding="utf-8")]
            evals = [r for r in rows if "eval/reward" in r]
            run = {"method": method, "seed": seed,
                   "heldout_digit_accuracy": [evals[0]["eval/reward"], evals[-1]["eval/reward"]],
                   "heldout_exact": [evals[0]["eval/accuracy"], evals[-1]["eval/accuracy"]],
                   "heldout_digit_accuracy_full_cache": [evals[0].get("eval_full/reward"), evals[-1].get("eval_full/reward")],
                   "evictions_per_completion": rows[-1].get("eval/evictions_per_completion"),
                   "train_reward_last5": sum(r["reward"] for r in rows if "reward" in r and r["step"] > args.steps - 5) / 5}
            if warm:
                run["warm_start"] = warm
            if "progressive" in METHODS[method]:
                adapter = os.path.join(out, "checkpoints", f"step-{args.steps:06d}", "adapter")
                probe = subprocess.run([sys.executable, os.path.join(HERE, "state_probe.py"), "--adapter", adapter,
                                        "--dataset", heldout, "--max-new-tokens", new_tokens,
                                        "--cache-window", str(args.cache_window)],
                                       capture_output=True, text=True, cwd=ROOT)
                run["state_probe"] = json.loads(probe.stdout.strip().splitlines()[-1])["modes"] if probe.returncode == 0 \
                    else {"error": probe.stderr[-1000:]}
            summary["runs"].append(run)
            print(json.dumps(run), flush=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
