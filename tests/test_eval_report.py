"""`pte eval` and `pte report` end to end on a tiny random model (real tokenizer and CLI)."""

import json
import math
from collections import Counter

from pte_run import run_pte

from pte_cli.evaluate import pass_at_k, summarize


def _dataset(tmp_path):
    path = tmp_path / "mini.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"What is {i} + {i}?", "answer": str(2 * i), "source": "mini"} for i in range(4)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_eval_results_recomputable_and_resumable(tiny_model_dir, tmp_path):
    data = _dataset(tmp_path)
    out = tmp_path / "eval"
    args = ["eval", "--model", str(tiny_model_dir), "--dataset", str(data), "--cache-window", "48",
            "--cache-window", "full", "--samples", "3", "--temperature", "1.0", "--max-new-tokens", "40",
            "--output", str(out), "-o", "reward.workers=0"]
    res = run_pte(*args)
    assert "pass@1 (%) by cache window" in res.stdout and "mini" in res.stdout
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 * 3 * 2
    results = json.loads((out / "results.json").read_text())
    assert results["results"] == summarize(samples, 3)["results"]
    assert results["overall"] == summarize(samples, 3)["overall"]
    bounded = results["results"]["mini"]["48"]
    assert bounded["evictions_per_completion"] > 0 and results["results"]["mini"]["full"]["evictions_per_completion"] == 0
    assert max(s["max_cache_tokens"] for s in samples if s["budget"] == "48") <= 48
    rows = [s for s in samples if s["budget"] == "48"]
    assert bounded["evicted_tokens_per_event"] == sum(s["evicted_tokens"] for s in rows) / sum(
        s["num_evictions"] for s in rows) >= 1
    assert bounded["state_updates_per_completion"] == 0  # the base model: encoder none, no state
    assert "thought state" not in res.stderr
    # interrupt: drop the last 5 samples (and cut a line in half); a rerun regenerates only those
    lines = (out / "samples.jsonl").read_text().splitlines()
    (out / "samples.jsonl").write_text("\n".join(lines[:-5]) + "\n" + lines[-5][:20])
    run_pte(*args)
    again = (out / "samples.jsonl").read_text().splitlines()
    assert len(again) == 24 and again[:19] == lines[:19]
    keys = {(s["id"], s["budget"], s["sample"]) for s in map(json.loads, again)}
    assert len(keys) == 24


def test_eval_pass_k_maj_macro_and_levels_recompute_from_samples(tiny_model_dir, tmp_path):
    from pte_rl.rewards import extract_answer, normalize

    big, small = tmp_path / "big.jsonl", tmp_path / "small.jsonl"
    big.write_text("".join(json.dumps({"id": f"b{i}", "prompt": f"What is {i} + 1?", "answer": str(i + 1),
                                       "level": 1 + i % 2}) + "\n" for i in range(3)))
    small.write_text(json.dumps({"id": "s0", "prompt": "What is 7 + 1?", "answer": "8"}) + "\n")
    rewards = tmp_path / "rewards.py"  # a random model is never right: score something that varies instead
    rewards.write_text("def task(completions, answers, **columns):\n"
                       "    return [float(len(c) % 2 == 0) for c in completions]\n")
    out = tmp_path / "eval"
    res = run_pte("eval", "--model", str(tiny_model_dir), "--dataset", str(big), "--dataset", str(small),
                  "--samples", "8", "--pass-k", "1,4,8", "--temperature", "1.0", "--max-new-tokens", "6",
                  "--reward", f"{rewards}:task", "--output", str(out))
    for title in ("pass@1 (%) by cache window (samples per problem: 8)", "pass@4 (%) by cache window",
                  "pass@8 (%) by cache window", "maj@8 (%) by cache window", "big by level: mean@8 (%)"):
        assert title in res.stdout, res.stdout
    assert "\nmacro " in res.stdout
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    results = json.loads((out / "results.json").read_text())
    assert len(samples) == 4 * 8 and results["settings"]["pass_k"] == [1, 4, 8]
    assert results["settings"]["preset"] == "none"
    for s in samples:  # the math reward's extraction and normaliser, recorded per sample
        pred = extract_answer(s["completion"])[0]
        assert s["extracted"] == (normalize(pred) or None if pred is not None else None)
    assert {s["level"] for s in samples if s["dataset"] == "big"} == {1, 2}

    def numbers(rows_of):
        out = {}
        for k in (1, 4, 8):
            out[f"pass@{k}"] = sum(1 - math.comb(8 - sum(s["correct"] for s in rows), k) / math.comb(8, k)
                                   for rows in rows_of) / len(rows_of)
        out["mean@8"] = sum(s["correct"] for rows in rows_of for s in rows) / (8 * len(rows_of))
        maj = 0
        for rows in rows_of:
            rows = sorted(rows, key=lambda s: s["sample"])
            votes = Counter(s["extracted"] for s in rows if s["extracted"] is not None)
            if votes:
                top = max(votes.values())
                winner = next(s for s in rows if s["extracted"] is not None and votes[s["extracted"]] == top)
                maj += winner["correct"]
        out["maj@8"] = maj / len(rows_of)
        return out

    def check(results, samples):
        problems = {}
        for s in samples:
            problems.setdefault(s["dataset"], {}).setdefault(s["id"], []).append(s)
        expect = {d: numbers(list(p.values())) for d, p in problems.items()}
        pooled = numbers([rows for p in problems.values() for rows in p.values()])
        for m in ("pass@1", "pass@4", "pass@8", "mean@8", "maj@8"):
            for d in ("big", "small"):
                assert abs(results["results"][d]["full"][m] - expect[d][m]) < 1e-12, (d, m)
            assert abs(results["overall"]["full"][m] - pooled[m]) < 1e-12, m
            assert abs(results["macro"]["full"][m] - (expect["big"][m] + expect["small"][m]) / 2) < 1e-12, m
        levels = results["breakdown"]["big"]["full"]["level"]
        assert set(levels) == {"1", "2"} and levels["1"]["n"] == 2 and levels["2"]["n"] == 1
        assert abs(levels["2"]["accuracy"] - sum(s["correct"] for s in problems["big"]["b1"]) / 8) < 1e-12
        assert "small" not in results["breakdown"]
        return expect

    check(results, samples)
    # a random model never writes a number: give the samples known answers (and drop the fields, as
    # in lines written before they existed); the rerun generates nothing and recomputes from them
    answers = {"b0": ["5", "5", "3", "3", "3", None, None, None],  # "3" wins, gold 1: maj wrong
               "b1": ["2", None, "2", "7", None, "7", None, None],  # a tie: "2" came first, gold 2: right
               "b2": [None] * 8,  # nobody answered: wrong
               "s0": ["8", "8", "1", "1", "1", "8", "8", None]}  # "8" wins, gold 8: right
    gold = {"b0": "1", "b1": "2", "b2": "3", "s0": "8"}
    for s in samples:
        a = answers[s["id"]][s["sample"]]
        s["completion"] = "I do not know" if a is None else f"so the answer is \\boxed{{{a}}}."
        s["correct"] = a == gold[s["id"]]
        del s["extracted"]
        s.pop("level", None)
    (out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (out / "results.json").unlink()
    run_pte("eval", "--model", str(tiny_model_dir), "--dataset", str(big), "--dataset", str(small),
            "--samples", "8", "--pass-k", "1,4,8", "--temperature", "1.0", "--max-new-tokens", "6",
            "--reward", f"{rewards}:task", "--output", str(out))
    again = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["extracted"] for s in again] == [answers[s["id"]][s["sample"]] for s in samples]
    assert {s["level"] for s in again if s["dataset"] == "big"} == {1, 2}  # filled in from the rows
    expect = check(json.loads((out / "results.json").read_text()), again)
    assert expect["big"]["maj@8"] == 1 / 3 and expect["small"]["maj@8"] == 1
    # --preset r1: its sampling settings (the explicit --samples wins) and no system prompt, recorded
    run_pte("eval", "--model", str(tiny_model_dir), "--dataset", str(small), "--preset", "r1", "--samples", "2",
            "--max-new-tokens", "4", "--reward", f"{rewards}:task", "--output", str(tmp_path / "r1"))
    settings = json.loads((tmp_path / "r1" / "results.json").read_text())["settings"]
    assert (settings["preset"], settings["samples"], settings["temperature"], settings["top_p"]) == ("r1", 2, 0.6, 0.95)
    assert settings["system"] is None and settings["pass_k"] == [1, 2]


def test_eval_says_when_the_thought_state_never_updated(tiny_model_dir, tmp_path):
    res = run_pte("eval", "--model", str(tiny_model_dir), "--dataset", str(_dataset(tmp_path)), "--encoder",
                  "progressive", "--cache-window", "4096", "--cache-window", "full", "--max-new-tokens", "6",
                  "-o", "reward.workers=0")
    note = "warning: cache window 4096: the cache never filled: the thought state never updated"
    assert res.stderr.count(note) == 1 and res.stderr.count("thought state") == 1, res.stderr  # not for full


def test_eval_passes_columns_to_rewards_and_scores_accuracy_by_the_task_reward(tiny_model_dir, tmp_path):
    data = tmp_path / "flags.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is {i} + 1?", "answer": str(i + 1), "flag": int(i == 2)})
                            + "\n" for i in range(4)))
    rewards = tmp_path / "rewards.py"
    rewards.write_text("def task(completions, answers, flag, **columns):\n"  # needs the row's own column
                       "    return [float(f) for f in flag]\n"
                       "def bonus(completions, answers, **columns):\n"
                       "    return [1.0 for _ in completions]\n")
    out = tmp_path / "eval"
    run_pte("eval", "--model", str(tiny_model_dir), "--dataset", str(data), "--max-new-tokens", "3",
            "--reward", f"{rewards}:task", "--reward", f"{rewards}:bonus", "--output", str(out))
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted((s["id"], s["reward"], s["correct"]) for s in samples) == [
        ("flags-1", 1.0, False), ("flags-2", 1.0, False), ("flags-3", 2.0, True), ("flags-4", 1.0, False)]
    # a total of 1 from the shaping term alone is not a correct answer (training scores it the same way)
    assert json.loads((out / "results.json").read_text())["results"]["flags"]["full"]["pass@1"] == 0.25


def test_report_markdown_and_png(tiny_model_dir, tmp_path):
    data = _dataset(tmp_path)
    for name in ("a", "b"):
        run_pte("eval", "--model", str(tiny_model_dir), "--dataset", str(data), "--cache-window", "48",
                "--cache-window", "64", "--max-new-tokens", "20", "--output", str(tmp_path / name),
                "--seed", "1" if name == "a" else "2", "--temperature", "1", "-o", "reward.workers=0")
    res = run_pte("report", str(tmp_path / "a"), str(tmp_path / "b"), "--label", "LoRA_c", "--label", "PTE",
                  "--output", str(tmp_path / "r.md"), "--plot", str(tmp_path / "fig.png"))
    assert "| LoRA_c |" in res.stdout and "| PTE |" in res.stdout and "cache window 64" in res.stdout
    image = _read_png(tmp_path / "fig.png")
    assert image.shape[0] > 300 and image.shape[1] > 500
    # both runs are drawn: matplotlib's first two line colours are present
    assert _has_colour(image, (31, 119, 180)) and _has_colour(image, (255, 127, 14))
    # training curves from a run's metrics.jsonl
    run = tmp_path / "train"
    run.mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 0, "eval/accuracy": 0.3}, {"step": 1, "reward": 0.2, "kl": 0.0, "completions/mean_length": 30},
        {"step": 2, "reward": 0.5, "kl": 0.01, "completions/mean_length": 12, "eval/accuracy": 0.5}]))
    run_pte("report", "--curves", str(run), "--plot", str(tmp_path / "curves.png"))
    curves = _read_png(tmp_path / "curves.png")
    assert curves.shape[1] > curves.shape[0] and _has_colour(curves, (31, 119, 180))
    res = run_pte("report", "--curves", str(run), check=False)
    assert res.returncode == 2 and "give --plot" in res.stderr


def _read_png(path):
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return (matplotlib.image.imread(path)[:, :, :3] * 255).round().astype("uint8")


def _has_colour(image, rgb) -> bool:
    return bool(((image == rgb).all(axis=2)).sum() > 20)


def test_pass_at_k_unbiased():
    assert pass_at_k(5, 0, 1) == 0 and pass_at_k(5, 5, 3) == 1
    assert abs(pass_at_k(4, 1, 2) - 0.5) < 1e-12  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert abs(pass_at_k(10, 3, 1) - 0.3) < 1e-12
