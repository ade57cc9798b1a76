"""Evaluation tooling, out of the app's runtime path: error rates, test sets, test clips and
model conversion (used by evaluate.py, the benchmarks and the tests)."""

import argparse


def positive_int(text: str) -> int:
    """argparse type of the evaluation scripts' counts (--limit, --batch-size, …): 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a number of 1 or more")
    return value
