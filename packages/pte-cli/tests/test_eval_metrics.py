"""`pte eval`'s numbers as pure functions (no model): pass@k, mean@n, maj@n, macro vs pooled
averages, the per-level breakdown, --preset and --pass-k resolution, and `pte report`'s tables."""

import math

import click
import pytest
from click.testing import CliRunner

from pte_cli.evaluate import (
    _complete,
    extracted_answer,
    format_table,
    majority_vote,
    parse_pass_k,
    pass_at_k,
    resolve_settings,
    summarize,
)
from pte_cli.report import markdown


def _s(dataset, pid, k, correct, extracted=None, budget="full", **extra):
    """One samples.jsonl line with just what summarize reads."""
    return {"dataset": dataset, "id": pid, "budget": budget, "sample": k, "correct": correct,
            "extracted": extracted, "completion": "", "num_tokens": 10, "truncated": False, "num_evictions": 0,
            **extra}


def _problem(dataset, pid, n, c, budget="full", **extra):
    """n samples of one problem, the first c correct (answer "right"), the rest answering "wrong"."""
    return [_s(dataset, pid, k, k < c, "right" if k < c else "wrong", budget, **extra) for k in range(n)]


def test_unbiased_pass_at_k_against_a_hand_computation():
    # n=8, c=2, k=4: 1 - C(6,4)/C(8,4) = 1 - 15/70
    assert math.comb(6, 4) == 15 and math.comb(8, 4) == 70
    assert pass_at_k(8, 2, 4) == pytest.approx(1 - 15 / 70)
    assert pass_at_k(8, 2, 1) == pytest.approx(2 / 8)
    assert pass_at_k(8, 0, 8) == 0 and pass_at_k(8, 1, 8) == 1  # all 8 drawn: any correct one counts
    assert pass_at_k(8, 5, 4) == 1  # fewer than 4 wrong samples: every 4-subset holds a correct one
    with pytest.raises(ValueError, match="pass@9"):
        pass_at_k(8, 2, 9)


def test_pass_at_k_is_averaged_over_problems_and_mean_at_n_over_samples():
    samples = _problem("d", "a", 8, 2) + _problem("d", "b", 8, 0) + _problem("d", "c", 8, 8)
    stats = summarize(samples, 8, [1, 4, 8])["results"]["d"]["full"]
    assert stats["pass@1"] == pytest.approx((2 / 8 + 0 + 1) / 3)
    assert stats["pass@4"] == pytest.approx(((1 - 15 / 70) + 0 + 1) / 3)
    assert stats["pass@8"] == pytest.approx(2 / 3)
    assert stats["mean@8"] == pytest.approx(10 / 24) == stats["pass@1"]
    assert stats["maj@8"] == pytest.approx(1 / 3)  # only c: a's majority answers "wrong"
    assert stats["problems"] == 3 and stats["samples"] == 24
    # default k: 1 and n (the keys results.json always had)
    assert {k for k in summarize(samples, 8)["results"]["d"]["full"] if k.startswith("pass@")} == {"pass@1", "pass@8"}
    with pytest.raises(ValueError, match="pass@16 needs 16"):
        summarize(samples, 8, [1, 16])


def test_majority_vote_ties_and_samples_without_an_answer():
    assert majority_vote([("2", False), ("4", True), ("4", True), ("2", False), ("2", False)]) is False
    assert majority_vote([("4", True), ("2", False), ("2", False), ("4", True)]) is True  # tie: "4" came first
    assert majority_vote([("2", False), ("4", True), ("4", True), ("2", False)]) is False  # tie: "2" came first
    # no-answer samples do not vote, even when they are most of them
    assert majority_vote([(None, False), (None, False), (None, False), ("4", True)]) is True
    assert majority_vote([(None, False), (None, True)]) is False  # nobody answered: wrong
    assert majority_vote([]) is False
    # the vote is in sample order, whatever the order of the lines
    lines = [_s("d", "p", 1, True, "4"), _s("d", "p", 0, False, "2"), _s("d", "p", 3, False, None),
             _s("d", "p", 2, False, None)]
    assert summarize(lines, 4)["results"]["d"]["full"]["maj@4"] == 0  # "2" (sample 0) beats "4" (sample 1)


def test_macro_average_weighs_datasets_equally_pooled_weighs_problems():
    # big: 90 problems, all wrong; small: 10 problems, all right (greedy, n=1)
    samples = [_s("big", f"b{i}", 0, False, "x") for i in range(90)]
    samples += [_s("small", f"s{i}", 0, True, "y") for i in range(10)]
    summary = summarize(samples, 1)
    assert summary["overall"]["full"]["pass@1"] == pytest.approx(0.1)
    assert summary["macro"]["full"]["pass@1"] == pytest.approx(0.5)
    assert summary["macro"]["full"]["maj@1"] == pytest.approx(0.5) and summary["macro"]["full"]["datasets"] == 2
    table = format_table(summary, ["full"], 1, [1])
    assert "overall   10.0" in table and "macro     50.0" in table, table
    assert "maj@" not in table  # maj@1 is no news


def test_level_and_subject_breakdown():
    samples = (_problem("math", "a", 2, 2, level=1, type="Algebra") + _problem("math", "b", 2, 1, level=1)
               + _problem("math", "c", 2, 0, level=2, type="Geometry") + _problem("math", "d", 2, 0, level=10)
               + _problem("gsm", "g", 2, 1))
    summary = summarize(samples, 2)
    by = summary["breakdown"]
    assert set(by) == {"math"}  # gsm rows carry no level
    assert list(by["math"]["full"]["level"]) == ["1", "2", "10"]  # natural order
    assert by["math"]["full"]["level"]["1"] == {"accuracy": pytest.approx(0.75), "n": 2}
    assert by["math"]["full"]["level"]["2"] == {"accuracy": 0.0, "n": 1}
    assert by["math"]["full"]["type"] == {"Algebra": {"accuracy": 1.0, "n": 1}, "Geometry": {"accuracy": 0.0, "n": 1}}
    table = format_table(summary, ["full"], 2, [1, 2])
    assert "math by level: mean@2 (%) by cache window" in table and "math by type" in table
    assert [line.split() for line in table.splitlines() if line.startswith("1 ")] == [["1", "2", "75.0"]]
    assert "maj@2 (%) by cache window" in table and "pass@2 (%) by cache window" in table


def test_preset_resolution():
    unset = {"preset": "none", "samples": None, "temperature": None, "top_p": None, "system": None, "pass_k": None}
    plain = resolve_settings(unset)
    assert (plain["samples"], plain["temperature"], plain["top_p"], plain["pass_k"]) == (1, 0.0, 1.0, [1])
    r1 = resolve_settings(unset | {"preset": "r1"})
    assert (r1["samples"], r1["temperature"], r1["top_p"], r1["pass_k"]) == (16, 0.6, 0.95, [1, 16])
    mine = resolve_settings(unset | {"preset": "r1", "samples": 4, "temperature": 1.0, "pass_k": "2"})
    assert (mine["samples"], mine["temperature"], mine["top_p"], mine["pass_k"]) == (4, 1.0, 0.95, [1, 2])
    from pte_cli.evaluate import no_system

    assert no_system(r1) and not no_system(r1 | {"system": "Be brief."}) and not no_system(plain)


def test_pass_k_parsing_and_k_above_n_is_a_usage_error():
    assert parse_pass_k("8, 4,1", 8) == [1, 4, 8] and parse_pass_k("4", 8) == [1, 4] and parse_pass_k(None, 1) == [1]
    with pytest.raises(click.UsageError, match="--pass-k 16 is more than --samples 8"):
        parse_pass_k("1,16", 8)
    with pytest.raises(click.UsageError, match="positive integers"):
        parse_pass_k("1,x", 8)
    with pytest.raises(click.UsageError, match="positive integers"):
        parse_pass_k("0", 8)
    from pte_cli.cli import cli

    res = CliRunner().invoke(cli, ["eval", "--dataset", "none.jsonl", "--preset", "r1", "--pass-k", "1,32"])
    assert res.exit_code == 2 and "--pass-k 32 is more than --samples 16" in res.output


def test_extracted_answer_is_the_math_rewards_normalised():
    assert extracted_answer("so \\boxed{\\dfrac12}.") == "\\frac{1}{2}"
    assert extracted_answer("The answer is $10$ cm.") == "10"
    assert extracted_answer("no digits here") is None
    old = {"dataset": "d", "id": "a", "completion": "#### 7"}  # a line from before the field existed
    _complete(old, {("d", "a"): {"id": "a", "level": 3}})
    assert old["extracted"] == "7" and old["level"] == 3


def test_report_lists_every_k_and_macro_and_reads_old_results():
    new = summarize(_problem("a", "1", 4, 1) + _problem("a", "2", 4, 4) + _problem("b", "3", 4, 0), 4, [1, 2, 4])
    old = {"results": {"a": {"full": {"pass@1": 0.5, "pass@3": 0.75}}, "b": {"full": {"pass@1": 0.25, "pass@3": 0.5}}},
           "overall": {"full": {"pass@1": 0.4, "pass@3": 0.6}}}  # written before maj and macro existed
    text = markdown({"new": new, "old": old})
    heads = [line for line in text.splitlines() if line.startswith("###")]
    assert heads == [f"### {m} (%), cache window full" for m in ("pass@1", "pass@2", "pass@3", "pass@4", "maj@4")]
    rows = text.splitlines()
    assert rows[2] == "| method | a | b | overall | macro |" and rows[3] == "|---|---|---|---|---|"
    section = lambda m: rows[rows.index(f"### {m} (%), cache window full") + 4:][:2]  # noqa: E731
    assert section("pass@1") == ["| new | 62.5 | 0.0 | 41.7 | 31.2 |", "| old | 50.0 | 25.0 | 40.0 | 37.5 |"]
    assert section("maj@4") == ["| new | 50.0 | 0.0 | 33.3 | 25.0 |", "| old | - | - | - | - |"]
    assert section("pass@3") == ["| new | - | - | - | - |", "| old | 75.0 | 50.0 | 60.0 | 62.5 |"]
