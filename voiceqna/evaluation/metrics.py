"""Word and character error rates for Korean, repetition, and latency percentiles. Pure functions.

One normalisation for both rates (`voiceqna.textnorm`): NFKC, lower case, punctuation and
symbols removed, whitespace collapsed. WER compares the words of `normalize(text)`; CER
compares the characters of `compact(text)`, which also drops the spaces, because spacing in
Korean is inconsistent in labels and in recognizer output alike (CER is the headline).

Corpus rates are total errors over total reference length, not a mean of per-utterance rates.

`spoken_char_errors` is CER as heard: numbers are read out in Hangul on both sides first
(`voiceqna.textnorm.spoken`, the reading the speech side uses), so 2016년 and 이천십육 년 match.
`repeated_span` finds a recognizer saying something twice that was said once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from voiceqna.textnorm import compact, normalize, spoken


@dataclass(frozen=True)
class ErrorCounts:
    """The edit operations that turn the reference into the hypothesis."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0
    """Words (WER) or characters (CER) in the normalised reference."""

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference length; 0.0 for two empty texts, inf for text against an empty reference."""
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_length

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_length + other.reference_length,
        )


def align(reference: Sequence[str], hypothesis: Sequence[str]) -> ErrorCounts:
    """Levenshtein alignment of two token sequences, counting each kind of edit.

    Among alignments of equal (minimal) cost, the one with the fewest substitutions wins.
    """
    # Each cell holds (cost, substitutions, deletions, insertions) for the prefixes.
    previous = [(j, 0, 0, j) for j in range(len(hypothesis) + 1)]
    for i, ref_token in enumerate(reference, start=1):
        current = [(i, 0, i, 0)]
        for j, hyp_token in enumerate(hypothesis, start=1):
            cost, s, d, n = previous[j - 1]
            if ref_token == hyp_token:
                best = (cost, s, d, n)
            else:
                best = (cost + 1, s + 1, d, n)
            cost, s, d, n = previous[j]
            best = min(best, (cost + 1, s, d + 1, n))
            cost, s, d, n = current[j - 1]
            best = min(best, (cost + 1, s, d, n + 1))
            current.append(best)
        previous = current
    _, substitutions, deletions, insertions = previous[-1]
    return ErrorCounts(substitutions, deletions, insertions, len(reference))


def word_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Edits between the words of the normalised texts."""
    return align(normalize(reference).split(), normalize(hypothesis).split())


def char_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Edits between the characters of the normalised texts, spaces removed."""
    return align(list(compact(reference)), list(compact(hypothesis)))


def spoken_char_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """`char_errors` after reading numbers, units and letters out in Hangul on both sides."""
    return char_errors(spoken(reference), spoken(hypothesis))


MIN_REPEAT = 4
"""Shortest span, in syllables (characters of `compact`), that counts as a repetition."""


def repeated_span(reference: str, hypothesis: str, min_length: int = MIN_REPEAT) -> str:
    """The longest span of at least `min_length` syllables (characters of `compact`: spaces and
    punctuation ignored) that the hypothesis repeats while the reference does not; "" when none.

    Two shapes count: the span said twice back to back ("여기 공항이야. 여기 공항이야." against
    "여기 공항이야."), and a hypothesis that ends by saying again a span it said before, more
    often than the reference says it (a sentence followed by its first half). A repeat the
    reference has too ("잠깐만요 잠깐만요" in both) is not counted.
    """
    text, said = compact(hypothesis), compact(reference)
    for length in range(len(text) // 2, min_length - 1, -1):
        for start in range(len(text) - 2 * length + 1):
            span = text[start : start + length]
            if text.startswith(span, start + length) and span * 2 not in said:
                return span
        tail = text[-length:]
        if tail in text[:-length] and text.count(tail) > said.count(tail):
            return tail
    return ""


def _total(counts: Iterable[ErrorCounts]) -> ErrorCounts:
    return sum(counts, ErrorCounts())


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate of paired texts."""
    _check_pairs(references, hypotheses)
    return _total(word_errors(r, h) for r, h in zip(references, hypotheses)).rate


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus character error rate of paired texts (spaces ignored)."""
    _check_pairs(references, hypotheses)
    return _total(char_errors(r, h) for r, h in zip(references, hypotheses)).rate


def _check_pairs(references: Sequence[str], hypotheses: Sequence[str]) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses: pair them one to one")


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    """{"p50": …, "p90": …, "p99": …} with linear interpolation; NaN for no values."""
    if len(values) == 0:
        return {f"p{p}": float("nan") for p in points}
    return {f"p{p}": float(np.percentile(values, p)) for p in points}
