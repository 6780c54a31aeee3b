"""Partial credit for recalling a digit code: the share of the code's digits the completion's
first number gets right, position by position (``pte data recall`` makes the data).

    pte train --data recall.jsonl --reward examples/recall_reward.py:digits ...

A whole code right scores 1 (what ``accuracy`` counts); each right digit is worth 1/len(code), so
a group of samples has reward spread long before any sample has the whole code.
"""

import re


def digits(completions, answers, **columns):
    scores = []
    for text, code in zip(completions, answers):
        found = re.search(r"\d+", text)
        said = found.group(0) if found else ""
        scores.append(sum(a == b for a, b in zip(said, code)) / len(code))
    return scores
