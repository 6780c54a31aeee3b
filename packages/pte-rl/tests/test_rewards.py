"""The math reward: correctness on a hand-written corpus, safety, time bounds, never raising."""

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reward_cases import COMPLETIONS, EQUAL, NOT_EQUAL

from pte_rl.rewards import ExactReward, FormatReward, MathConfig, MathReward, extract_answer, score_item
from pte_rl.rewards.base import count_failures, task_correct
from pte_rl.rewards.pool import TIMEOUT, BoundedPool


def boxed(answer: str) -> str:
    return f"Some reasoning here. So the result is $\\boxed{{{answer}}}$."


def test_corpus_has_at_least_200_cases():
    assert len(EQUAL) + len(NOT_EQUAL) + len(COMPLETIONS) >= 200


@pytest.mark.parametrize("gold,pred", EQUAL)
def test_equal_answers_score_one(gold, pred):
    assert score_item(boxed(pred), gold) == (1.0, None)


@pytest.mark.parametrize("gold,pred", NOT_EQUAL)
def test_different_answers_score_zero(gold, pred):
    assert score_item(boxed(pred), gold)[0] == 0.0


@pytest.mark.parametrize("gold,text,expected", COMPLETIONS)
def test_extraction_from_completions(gold, text, expected):
    assert score_item(text, gold)[0] == expected


def test_reward_scores_completion_not_prompt():
    reward = MathReward(MathConfig(workers=0))
    prompt = "What is 6*7? An example answer: \\boxed{42}"
    out = reward.score(["I do not know."], ["42"], prompts=[prompt])
    assert out[0].value == 0.0 and out[0].reason == "no_answer"
    assert extract_answer("I do not know.") == (None, "none")


def test_failures_have_reasons():
    reward = MathReward(MathConfig(workers=0))
    res = reward.score(["\\boxed{9^{9^{9^{9}}}}", "nothing", "\\boxed{" + "x" * 2000 + "}", "\\boxed{\\foo{1}}"],
                       ["1", "1", "1", "1"])
    assert [r.reason for r in res] == ["too_large", "no_answer", "answer_too_long", "unparsable"]
    assert all(r.value == 0.0 for r in res)
    # verdicts, not failures: reward_failures counts only rows the scorer could not score
    assert not any(r.failed for r in res) and count_failures({"math": res}) == 0


def test_reward_failures_count_rows_that_could_not_be_scored():
    from pte_rl.rewards.function import FunctionReward

    def half(completions, answers, **columns):
        if any("boom" in c for c in completions):
            raise ValueError("boom")
        return [float("inf") if c == "inf" else None if c == "skip" else 0.5 for c in completions]

    res = FunctionReward("half", half).score(["fine", "boom", "inf", "skip"], ["1"] * 4)
    assert [r.value for r in res] == [0.5, 0.0, 0.0, 0.0]
    assert [r.failed for r in res] == [False, True, True, False]  # None: does not apply, no failure
    math = MathReward(MathConfig(workers=0)).score(["nothing", "\\boxed{1}"], ["1", "1"])
    assert count_failures({"half": res, "math": math}) == 2
    assert task_correct({"math": math, "half": res[:2]}) == [False, True]  # the first reward decides


def test_leaving_a_weighted_sum_closes_every_part_that_holds_workers():
    from pte_rl.rewards import WeightedSum

    math = MathReward(MathConfig(workers=1))
    math.score(["\\boxed{1}"] * 2, ["1"] * 2)  # starts the worker pool
    assert math._pool is not None and all(p.proc.poll() is None for p in math._pool._procs)
    procs = list(math._pool._procs)
    with WeightedSum([("math", math, 1.0), ("format", FormatReward(), 0.1)]) as reward:
        assert reward.score(["\\boxed{2}"], ["2"])[0].value >= 1.0
    assert math._pool is None
    for p in procs:
        p.proc.wait(timeout=10)  # raises TimeoutExpired if a worker was left running


def test_overlong_penalty_ramps_to_minus_one_over_the_buffer():
    from pydantic import ValidationError

    from pte_rl.rewards import OverlongConfig, OverlongReward

    r = OverlongReward(OverlongConfig(max_length=100, buffer=20))
    got = [x.value for x in r.score(["x"] * 6, ["1"] * 6, completion_lengths=[10, 80, 81, 90, 100, 140])]
    assert got == [0.0, 0.0, pytest.approx(-0.05), pytest.approx(-0.5), -1.0, -1.0]
    missing = r.score(["x"], ["1"])  # pte score has no token counts: a failure with the reason
    assert missing[0].failed and "completion_lengths" in missing[0].reason
    with pytest.raises(ValidationError, match="buffer"):
        OverlongConfig(max_length=10, buffer=20)


PATHOLOGICAL = [
    "\\boxed{9^{9^{9^{9}}}}",
    "x" * 1_000_000,
    "{" * 10_000,
    "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
    "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
    "\\boxed{" + "\\frac{1}{" * 3000 + "2" + "}" * 3000 + "}",
    "\\boxed{10000000!}",
    "\\boxed{2^{2^{2^{2^{2^{2}}}}}}",
    "1" * 200_000,
    "\\boxed{" + "1+" * 300 + "1}",
    "The answer is " + "9" * 5000,
    # inputs aimed at the box-run, sentence, span, relation, label, list and sum rules
    "\\boxed{1}, " * 5000,
    "$" * 100_000 + "1",
    "\\(" * 50_000 + "1",
    "The answer is " + "$1$ and " * 2000,
    "Final Answer: " + "x is " * 3000 + "5",
    "\\boxed{" + "x < " * 240 + "1}",
    "\\boxed{" + "a=" * 480 + "1}",
    "\\boxed{" + "1, " * 330 + "1}",
    "\\boxed{\\sum_{k=1}^{1000} k^{20} + \\sum_{k=1}^{1000} k^{20}}",
    "\\boxed{\\sum_{k=1}^{10} 2^{2^{k}}}",
    "1 and " * 20_000,
    "AZYUK2A " * 20_000,
    "\\boxed{" * 10_000 + "1",
    # inputs aimed at the interval, group, index, approx, chained-span, unit and choice rules
    "\\boxed{" + "x > 1 and " * 90 + "x < 2}",
    "\\boxed{" + "p=1,q=2;" * 60 + "p=1,q=2}",
    "\\boxed{" + "F_{" * 300 + "1" + "}" * 300 + "}",
    "\\boxed{" + "1 \\approx 1, " * 70 + "1}",
    "\\boxed{" + "x=1/3\\approx" * 80 + "1}",
    "$1$ = " * 20_000 + "2",
    "Answer $1$ = " + "1" * 5000 + "$",
    "A. " * 50_000,
    "1" + ",000" * 50_000 + "m²",
    "\\boxed{" + "(1;" * 300 + "2" + ")" * 300 + "}",
]


def test_pathological_inputs_return_within_bound_inline():
    reward = MathReward(MathConfig(workers=0))
    for text in PATHOLOGICAL:
        t = time.perf_counter()
        res = reward.score([text], ["1"])
        assert time.perf_counter() - t < 1.0, text[:40]
        assert res[0].value in (0.0, 1.0)


def test_pool_kills_a_hung_item_and_continues():
    # The hung item sleeps 120 s; the pool must kill it at its 0.5 s timeout and go on. The bound
    # only tells "killed" from "waited" (a loaded CI machine took 3.3 s to replace the worker), so
    # it is far from both: no timing claim, and it still fails if the item is waited for.
    pool = BoundedPool("time:sleep", workers=1, timeout=0.5)
    try:
        t = time.perf_counter()
        out = pool.map([(0.0,), (120.0,), (0.0,)])
        elapsed = time.perf_counter() - t
        assert out[0] is None and out[1] is TIMEOUT and out[2] is None
        assert elapsed < 60.0
    finally:
        pool.close()


def pooled_scores(reward, texts, golds):
    """``reward``'s scores from its worker processes (closed afterwards)."""
    try:
        return reward.score(texts, golds)
    finally:
        reward.close()


def test_pool_reward_in_worker_processes_matches_inline():
    texts = [boxed(p) for _, p in EQUAL[:30] + NOT_EQUAL[:30]] + PATHOLOGICAL[:3]
    golds = [g for g, _ in EQUAL[:30] + NOT_EQUAL[:30]] + ["1"] * 3
    inline = MathReward(MathConfig(workers=0)).score(texts, golds)
    assert pooled_scores(MathReward(MathConfig(workers=2, timeout=2.0)), texts, golds) == inline


def test_no_code_execution(tmp_path):
    target = tmp_path / "pwned"
    payloads = [
        f"\\boxed{{__import__('os').system('touch {target}')}}",
        f"\\boxed{{open('{target}', 'w').write('x')}}",
        f"The answer is exec(\"open('{target}','w')\")",
        f"\\boxed{{eval(\"__import__('pathlib').Path('{target}').touch()\")}}",
        "\\boxed{().__class__.__bases__[0].__subclasses__()}",
        f"\\boxed{{x}} \\input{{{target}}}",
    ]
    reward = MathReward(MathConfig(workers=0))
    for p in payloads:
        assert reward.score([p], ["1"])[0].value == 0.0
    assert not target.exists()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.text(max_size=30))
def test_property_never_raises_and_in_range(text, gold):
    res = MathReward(MathConfig(workers=0)).score([text, boxed(text)], [gold, gold])
    assert all(isinstance(r.value, float) and 0.0 <= r.value <= 1.0 for r in res)


LATEXY = st.text(alphabet="0123456789+-*/^{}()[]\\fracsqtpi ,.=xy%$", max_size=60)


@settings(max_examples=300, deadline=None)
@given(LATEXY, LATEXY)
def test_property_latex_like_never_raises(pred, gold):
    value, reason = score_item(boxed(pred), gold)
    assert value in (0.0, 1.0)


def test_exact_and_format_rewards():
    ex = ExactReward()
    assert [r.value for r in ex.score(["\\boxed{1/2}", "\\boxed{\\frac{1}{2}}"], ["\\frac{1}{2}"] * 2)] == [0.0, 1.0]
    fmt = FormatReward()
    assert [r.value for r in fmt.score(["\\boxed{3}", "3", "\\boxed{}", "\\boxed{3"], [""] * 4)] == [1, 0, 0, 0]


# Every distinct gold answer of the six math benchmarks (gsm8k train/test, MATH-500, AIME 24/25,
# AMC 23, Minerva, OlympiadBench), with the id of its first row: the benchmarks' answers are what
# the reward must read, and the test needs no file outside the repository.
GOLDS = Path(__file__).resolve().parent / "data" / "benchmark_golds.jsonl"


def _perturb(answer: str) -> str | None:
    """A value-changing perturbation of a gold answer: off by one, sign flip, or fraction change."""
    import re

    s = answer.strip().strip("$")
    if re.fullmatch(r"-?\d+", s):
        return str(int(s) + 1)
    if re.fullmatch(r"-?\d+\.\d+", s):
        return s[:-1] + str((int(s[-1]) + 1) % 10)
    m = re.fullmatch(r"(-?)\\d?frac\{(\d+)\}\{(\d+)\}", s)
    if m:
        return f"{m.group(1)}\\frac{{{int(m.group(2)) + 1}}}{{{m.group(3)}}}"
    if s and s[0] != "-" and re.search(r"\d", s):
        return "-(" + s + ")" if not s.startswith("(") else None
    return None


def test_gold_answers_of_every_benchmark():
    rows = [json.loads(line) for line in GOLDS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) > 1600
    gold_fail = [r["id"] for r in rows if score_item(boxed(r["answer"]), r["answer"])[0] != 1.0]
    assert len(gold_fail) <= 0.005 * len(rows), gold_fail[:20]
    perturbed = [(r, _perturb(r["answer"])) for r in rows]
    perturbed = [(r, p) for r, p in perturbed if p is not None]
    wrong_pass = [(r["id"], r["answer"], p) for r, p in perturbed if score_item(boxed(p), r["answer"])[0] != 0.0]
    assert len(perturbed) > 1500
    assert len(wrong_pass) <= 0.005 * len(perturbed), wrong_pass[:20]


def test_time_bound_holds_off_the_main_thread():
    """No SIGALRM: scoring from a worker thread (as a DDP helper or server would) still works and is bounded."""
    import threading

    results = {}
    pool = BoundedPool("time:sleep", workers=1, timeout=0.5)

    def run():
        results["sleep"] = pool.map([(3.0,), (0.0,)])
        results["math"] = MathReward(MathConfig(workers=0)).score([boxed("\\frac{1}{2}")], ["0.5"])

    t = threading.Thread(target=run)
    start = time.perf_counter()
    t.start()
    t.join(10)
    pool.close()
    assert results["sleep"][0] is TIMEOUT and results["sleep"][1] is None
    assert results["math"][0].value == 1.0
    assert time.perf_counter() - start < 5


def test_math_verify_reward_has_the_peers_semantics():
    """``--reward math-verify`` scores with Math-Verify (where it and ``math`` disagree, it follows
    Math-Verify), inline and in worker processes alike."""
    pytest.importorskip("math_verify")
    from pte_rl.rewards.mathverify import MathVerifyConfig, MathVerifyReward

    texts = ["so it is $\\boxed{0.5}$", "$\\boxed{-2 \\le x \\le 7}$", "\\boxed{11a+c}", "no number here", "\\boxed{3}"]
    golds = ["\\frac{1}{2}", "[-2,7]", "7 = 11a+c", "4", "4"]
    inline = MathVerifyReward(MathVerifyConfig(workers=0)).score(texts, golds)
    assert [r.value for r in inline] == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert inline[3].reason == "no_answer" and not any(r.failed for r in inline)
    # the built-in reward reads the interval and the inequality as one set: a real difference
    assert [r.value for r in MathReward(MathConfig(workers=0)).score(texts[:2], golds[:2])] == [1.0, 1.0]
    assert pooled_scores(MathVerifyReward(MathVerifyConfig(workers=2, timeout=20.0)), texts, golds) == inline


def test_math_verify_reward_without_the_package_is_refused_with_the_install_command(monkeypatch):
    import importlib.util

    from pydantic import ValidationError

    from pte_rl.rewards.mathverify import MathVerifyConfig

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "math_verify" else real(name, *a))
    with pytest.raises(ValidationError, match="pip install math-verify"):
        MathVerifyConfig()
