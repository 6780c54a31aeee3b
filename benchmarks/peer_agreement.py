"""Agreement of pte-rl's ``math`` reward with Math-Verify's own test-suite expectations.

Reads Math-Verify's tests/*.py straight out of a bare git mirror (nothing is written to disk),
executes each test module in memory with its comparison helpers replaced by recorders, and calls
every parametrized test function once per parameter set.  The recorders capture the
(gold, pred) strings, the helper's options (match_types, precision, strict,
allow_set_relation_comp) and the value the test compares the result with (``== expected``).
Each case is then scored with ``MathReward`` (completion = pred, answer = gold) and, unless
``--no-mv``, re-checked with the installed math_verify through the test's own helper.

The suite is not in this repository: bring a bare git copy of huggingface/Math-Verify (e.g. with
``git clone --bare``) and pass it as ``--git-dir``; ``pip install math-verify`` for the re-check.

    python benchmarks/peer_agreement.py --git-dir PATH/Math-Verify.git [--disputed disputed.json] [--no-mv]

Writes cases.jsonl, disagreements.jsonl and summary.md under ``--out`` (runs/peer-agreement).
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import subprocess
import sys
import types
from pathlib import Path

DEFAULT_GIT = "/work/.mirror/huggingface+Math-Verify/repo"
DEFAULT_LT = ("latex", "expr")


# ----------------------------------------------------------------------------- extraction
def git(gitdir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", gitdir, *args], check=True, capture_output=True, text=True).stdout


class Parsed:
    """What the fake ``parse`` returns: the text and the options it was called with."""

    def __init__(self, text, args, kwargs):
        self.text, self.args, self.kwargs = text, args, kwargs


class Probe:
    """What the fake helpers return: records the value the test compares it with."""

    def __init__(self, call):
        self.call = call

    def __eq__(self, other):
        self.call.setdefault("expected", other)
        self.call["expected_via"] = "=="
        return True

    __hash__ = object.__hash__

    def __bool__(self):
        self.call["bool_used"] = True  # `assert probe` / `assert not probe`: ambiguous, see fallback
        return True

    def __int__(self):
        self.call["int_used"] = True  # `int(verify(...)) == result`: expected comes from the params
        return -12345


def _targets_name(cfgs) -> tuple[str, ...]:
    if cfgs is None:
        return ("latex", "expr")  # parse()'s default targets
    out = []
    for c in cfgs:
        n = type(c).__name__
        out.append({"LatexExtractionConfig": "latex", "ExprExtractionConfig": "expr"}.get(n, n))
    return tuple(out)


def load_cases(gitdir: str):
    commit = git(gitdir, "rev-parse", "HEAD").strip()
    files = [f for f in git(gitdir, "ls-tree", "-r", "--name-only", "HEAD", "tests/").split() if f.endswith(".py")]
    pkg = types.ModuleType("tests")
    pkg.__path__ = []
    sys.modules["tests"] = pkg
    order = sorted(files, key=lambda f: (f != "tests/test_all.py", f))  # others import test_all
    modules, real_helpers, notes = {}, {}, []
    for f in order:
        name = f[:-3].replace("/", ".")
        if name == "tests.__init__":
            continue
        mod = types.ModuleType(name)
        mod.__file__ = f"<{commit[:7]}:{f}>"
        src = git(gitdir, "show", f"HEAD:{f}")
        try:
            exec(compile(src, mod.__file__, "exec"), mod.__dict__)
        except Exception as err:  # a module that does not import is noted, not fatal
            notes.append(f"{f}: import failed ({type(err).__name__}: {err})")
            continue
        sys.modules[name] = mod
        modules[f] = mod
        if "compare_strings" in mod.__dict__ and f == "tests/test_all.py":
            real_helpers["compare_strings"] = mod.compare_strings

    cases, skipped = [], collections.Counter()
    for f, mod in modules.items():
        calls: list[dict] = []

        def fake_compare(gold, pred, match_types=None, precision=6, strict=True,
                         allow_set_relation_comp=False, _calls=calls):
            if match_types is None:
                match_types = list(DEFAULT_LT)
            c = dict(gold=gold, pred=pred, via="compare_strings", match_types=tuple(match_types),
                     precision=precision, strict=strict, allow_set_relation_comp=allow_set_relation_comp)
            _calls.append(c)
            return Probe(c)

        def fake_parse(text, extraction_config=None, *a, **kw):
            return Parsed(text, (extraction_config, *a), kw)

        def fake_verify(gold, target, *a, _calls=calls, **kw):
            if not (isinstance(gold, Parsed) and isinstance(target, Parsed)):
                raise TypeError("verify on non-strings")
            c = dict(gold=gold.text, pred=target.text, via="parse+verify",
                     match_types=_targets_name(gold.args[0]), precision=kw.get("float_rounding", 6),
                     strict=kw.get("strict", True), allow_set_relation_comp=kw.get("allow_set_relation_comp", False),
                     parse_kwargs={k: repr(v) for k, v in {**gold.kwargs, **target.kwargs}.items()})
            _calls.append(c)
            return Probe(c)

        patched = {}
        for k, v in (("compare_strings", fake_compare), ("parse", fake_parse), ("verify", fake_verify)):
            if k in mod.__dict__:
                patched[k] = v
        for name_, fn in list(mod.__dict__.items()):
            if not (name_.startswith("test_") and callable(fn)):
                continue
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
            if not marks:
                param_sets = [({}, None)]
            else:
                if len(marks) > 1:
                    notes.append(f"{f}::{name_}: {len(marks)} parametrize marks, only the first used")
                argnames, argvalues = marks[0].args[0], marks[0].args[1]
                if isinstance(argnames, str):
                    argnames = [a.strip() for a in argnames.split(",")]
                param_sets = []
                for i, v in enumerate(argvalues):
                    values = getattr(v, "values", v)  # pytest.param(...)
                    if len(argnames) == 1:
                        values = (values,)
                    param_sets.append((dict(zip(argnames, values)), i))
            for params, idx in param_sets:
                calls.clear()
                saved = {k: mod.__dict__[k] for k in patched}
                mod.__dict__.update(patched)
                err = None
                try:
                    fn(**params)
                except AssertionError:
                    pass  # e.g. int(probe) == result: expected then comes from the params
                except Exception as e:  # tests of parse() on its own, timeouts mocks, ...
                    err = f"{type(e).__name__}: {e}"
                finally:
                    mod.__dict__.update(saved)
                test_id = f"{f}::{name_}" + (f"[{idx}]" if idx is not None else "")
                if not calls:
                    skipped[f"{f}::{name_}: no gold/pred string comparison" + (f" ({err.split(':')[0]})" if err else "")] += 1
                    continue
                for k, c in enumerate(calls):
                    c["test"] = test_id + (f"#{k}" if len(calls) > 1 else "")
                    if "expected" not in c:
                        for key in ("expected", "result"):
                            if key in params:
                                c["expected"], c["expected_via"] = params[key], f"param:{key}"
                                break
                    if c.get("bool_used") and c.get("expected_via") != "==":
                        c.pop("expected", None)
                    cases.append(c)
    return commit, cases, skipped, notes, real_helpers


def classify(c) -> str | None:
    """None: in the primary set; else the reason the case is left out of it."""
    exp = c.get("expected")
    if type(exp) not in (int, bool) or exp not in (0, 1):
        return f"expected not a plain 0/1/bool ({exp!r})"
    if not (isinstance(c["gold"], str) and isinstance(c["pred"], str)):
        return "gold/pred not strings"
    if c["strict"] is not True:
        return "special mode: strict=False"
    if c["allow_set_relation_comp"]:
        return "special mode: allow_set_relation_comp=True"
    if tuple(c["match_types"]) != DEFAULT_LT:
        return f"match_types={list(c['match_types'])} only"
    if c["precision"] != 6:
        return f"non-default precision={c['precision']}"
    return None


# ----------------------------------------------------------------------------- families
# ordered: the first matching rule names the family (applied to disagreements only)
DOUBLED = re.compile(r"\\\\(?:left|right|frac|le|ge|boxed|sqrt|text|pi)\b")
INEQ = re.compile(r"\\le|\\ge|<|>")


def _boxes(s):
    return len(re.findall(r"\\boxed", s))


FAMILY_RULES = [
    ("escaping artefact: doubled backslashes in the test string (un-doubled, ours agrees)",
     lambda g, p, c: c.get("artefact", False)),
    ("several boxes in the gold (ours keeps the gold's last box only)", lambda g, p, c: _boxes(g) >= 2),
    ("pred: intermediate box wins over a later final answer / boxes split by prose",
     lambda g, p, c: _boxes(p) >= 1 and (_boxes(p) >= 2 or re.search(r"answer is", p[p.rfind("\\boxed"):]))),
    ("gold is a whole solution text without \\boxed", lambda g, p, c: len(g) > 200 and _boxes(g) == 0),
    ("thousands separator {,} written with spaces", lambda g, p, c: "{,}" in g or "{, }" in p),
    ("number formats: comma decimals, space thousands (expr-only tests)",
     lambda g, p, c: bool(re.search(r"\d ?[, ]\d", g + p)) and "$" not in g),
    ("inline math spanning lines (MV: no answer)", lambda g, p, c: "\n" in p and int(c["expected"]) == 0),
    ("bare math span with no digit / digits glued to a macro: ours finds no answer",
     lambda g, p, c: c.get("ours_reason") == "no_answer"),
    ("bare LaTeX without $ delimiters: last-number fallback takes a fragment",
     lambda g, p, c: "$" not in p and "\\" in p and c.get("ours_method") == "last-number"),
    ("rounded decimals at a non-default precision", lambda g, p, c: c["precision"] != 6),
    ("matrix arithmetic in the prediction", lambda g, p, c: "matrix" in g + p),
    ("relation vs union of intervals (|z| bounds)", lambda g, p, c: bool(INEQ.search(g)) and "\\cup" in p),
    ("'answer is' sentence keeps the prose", lambda g, p, c: c.get("ours_method") == "answer-is"),
    ("bare braces {1,3} vs a tuple", lambda g, p, c: p.startswith("${") and "(" in g),
    ("unsupported construct (\\sum)", lambda g, p, c: "\\sum" in g + p),
    ("labelled relation with a renamed variable (W(n) vs W(x))", lambda g, p, c: "=" in g and "=" in p),
    ("other", lambda g, p, c: True),
]


def family(c) -> str:
    for name, f in FAMILY_RULES:
        if f(c["gold"], c["pred"], c):
            return name
    return "other"


def undouble(s: str) -> str:
    """``\\\\frac`` -> ``\\frac`` (a raw-string test that doubled its backslashes); ``\\\\ 3`` (a row break) stays."""
    return re.sub(r"\\\\(?=[A-Za-z])", lambda m: "\\", s)


def artefact(c, score_item) -> bool:
    """True when the strings hold doubled backslashes and un-doubling them changes our score."""
    if not (DOUBLED.search(c["gold"]) or DOUBLED.search(c["pred"])):
        return False
    fixed = score_item(undouble(c["pred"]), undouble(c["gold"]))[0]
    return int(fixed) != c["ours"]


def load_disputed(path: str | None) -> dict[tuple[str, str], str]:
    """(gold, pred) -> why the peer's expected value is arguable, from a JSON list of
    [gold, pred, reason] (kept outside the repository with the suite)."""
    if not path:
        return {}
    return {(g, p): r for g, p, r in json.loads(Path(path).read_text(encoding="utf-8"))}


# ----------------------------------------------------------------------------- scoring
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--git-dir", default=DEFAULT_GIT, help="bare git dir of huggingface/Math-Verify")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per completion for our reward")
    ap.add_argument("--no-mv", action="store_true", help="skip re-running the installed math_verify")
    ap.add_argument("--disputed", default=None, help="JSON list of [gold, pred, reason]: expected values "
                    "counted apart as disputed")
    ap.add_argument("--out", default="runs/peer-agreement")
    args = ap.parse_args()
    disputed = load_disputed(args.disputed)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    commit, cases, skipped, notes, real = load_cases(args.git_dir)
    for c in cases:
        c["skip"] = classify(c)

    from pte_rl.rewards.extract import extract_answer
    from pte_rl.rewards.math import MathConfig, MathReward, score_item

    reward = MathReward(MathConfig(workers=1, timeout=args.timeout))
    try:
        todo = [c for c in cases if isinstance(c["gold"], str) and isinstance(c["pred"], str)]
        res = reward.score([c["pred"] for c in todo], [c["gold"] for c in todo])
    finally:
        reward.close()
    for c, r in zip(todo, res):
        c["ours"], c["ours_reason"] = int(r.value), r.reason
        c["ours_extracted"], c["ours_method"] = extract_answer(c["pred"])
        c["artefact"] = artefact(c, score_item)

    if not args.no_mv:
        from importlib.metadata import version

        import math_verify
        from math_verify import parse, verify

        mv_version = getattr(math_verify, "__version__", None) or version("math-verify")
        for c in todo:
            try:
                if c["via"] == "compare_strings":
                    v = real["compare_strings"](c["gold"], c["pred"], match_types=list(c["match_types"]),
                                                precision=c["precision"], strict=c["strict"],
                                                allow_set_relation_comp=c["allow_set_relation_comp"])
                else:
                    v = verify(parse(c["gold"]), parse(c["pred"]), float_rounding=c["precision"], strict=c["strict"])
                c["mv_installed"] = int(bool(v))
            except Exception as err:
                c["mv_installed"] = f"error: {type(err).__name__}"
    else:
        mv_version = None

    for c in cases:
        key = (c["gold"], c["pred"])
        if key in disputed:
            c["disputed"] = disputed[key]
        in_scope = c["skip"] is None or c["skip"].startswith(("match_types", "non-default"))
        if in_scope and "ours" in c:
            c["agree"] = int(c["ours"] == int(c["expected"]))
            if not c["agree"]:
                c["family"] = family(c)

    with open(out / "cases.jsonl", "w") as fh:
        for c in cases:
            fh.write(json.dumps({k: (v if isinstance(v, (str, int, float, bool, type(None), list, dict, tuple)) else repr(v))
                                 for k, v in c.items()}, ensure_ascii=False) + "\n")
    write_reports(out, commit, cases, skipped, notes, mv_version)


def _stats(rows):
    n = len(rows)
    a = sum(c["agree"] for c in rows)
    nd = [c for c in rows if not c.get("disputed")]
    na = [c for c in nd if not c.get("artefact")]
    return n, a, len(nd), sum(c["agree"] for c in nd), len(na), sum(c["agree"] for c in na)


def _short(s, n=110):
    s = s.replace("\n", "⏎").replace("`", "'")
    return s if len(s) <= n else s[: n // 2 - 2] + " … " + s[-(n // 2 - 2):]


def write_reports(out, commit, cases, skipped, notes, mv_version):
    primary = [c for c in cases if c["skip"] is None and "agree" in c]
    extended = [c for c in cases if "agree" in c]
    dis = [c for c in extended if not c["agree"]]
    with open(out / "disagreements.jsonl", "w") as fh:
        for c in dis:
            fh.write(json.dumps({k: c.get(k) for k in (
                "test", "family", "gold", "pred", "expected", "ours", "ours_reason", "ours_extracted", "ours_method",
                "mv_installed", "match_types", "precision", "skip", "disputed", "artefact")}, ensure_ascii=False) + "\n")

    L = []
    L.append("# pte-rl `math` reward vs Math-Verify's own test suite\n")
    L.append(f"- Math-Verify tests: mirror commit `{commit}`; installed math_verify {mv_version or '(not run)'}")
    L.append(f"- Extracted comparisons: {len(cases)} (from parametrized tests + direct helper calls)")
    uniq = len({(c['gold'], c['pred'], tuple(c['match_types']), c['precision']) for c in cases})
    L.append(f"- Unique (gold, pred, match_types, precision): {uniq}")
    L.append("- Not scored / left out of the primary set:")
    for k, v in collections.Counter(c["skip"] for c in cases if c["skip"]).most_common():
        L.append(f"  - {v} × {k}")
    for k, v in sorted(skipped.items()):
        L.append(f"  - {v} × test without a string comparison: {k}")
    for n_ in notes:
        L.append(f"  - note: {n_}")
    L.append("")
    for title, rows in (("Primary (latex+expr, precision 6, strict)", primary),
                        ("Extended (+ latex-only, expr-only, non-default precision)", extended)):
        n, a, nn, na, n3, a3 = _stats(rows)
        L.append(f"## {title}: {a}/{n} agree = {a / n:.1%}; excluding disputed {na}/{nn} = {na / nn:.1%}; "
                 f"also excluding escaping artefacts {a3}/{n3} = {a3 / n3:.1%}")
    disputed_all = [c for c in extended if c.get("disputed")]
    L.append("\n## Disputed expected values (all in-scope cases, agreeing or not)\n")
    for c in disputed_all:
        L.append(f"- gold=`{_short(c['gold'])}` pred=`{_short(c['pred'])}` expected={int(c['expected'])} ours={c['ours']}: {c['disputed']}")
    mvbad = [c for c in extended if isinstance(c.get("mv_installed"), int) and c["mv_installed"] != int(c["expected"])]
    if mv_version:
        L.append(f"\nInstalled math_verify itself differs from the test's expected value on {len(mvbad)}/{len(extended)} "
                 "of these cases (see `mv_installed` in cases.jsonl).")
    L.append("\n## Disagreements by family (extended set; P = in primary set)\n")
    fam = collections.defaultdict(list)
    for c in dis:
        fam[c["family"]].append(c)
    for name, rows in sorted(fam.items(), key=lambda kv: -len(kv[1])):
        np_ = sum(1 for c in rows if c["skip"] is None)
        L.append(f"### {name}: {len(rows)} ({np_} P; {sum(1 for c in rows if c.get('disputed'))} disputed)")
        for c in rows:
            tag = "P" if c["skip"] is None else c["skip"]
            L.append(f"- [{tag}] gold=`{_short(c['gold'])}` pred=`{_short(c['pred'])}` expected={int(c['expected'])} "
                     f"ours={c['ours']} ({c['ours_reason'] or 'ok'}; extracted `{_short(c['ours_extracted'] or '', 60)}`)"
                     f"{'; mv0.9=' + str(c.get('mv_installed')) if c.get('mv_installed') != int(c['expected']) else ''}"
                     f"{'; DISPUTED: ' + c['disputed'] if c.get('disputed') else ''}")
        L.append("")
    (out / "summary.md").write_text("\n".join(L) + "\n")
    print("\n".join(L[:20]))


if __name__ == "__main__":
    main()
