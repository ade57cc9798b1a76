"""The offline Korean Q&A knowledge base and its matcher.

The file is JSON: a list of `{"questions": [...], "answer": "..."}`. Answers may use
`{time}`, `{date}` and `{weekday}`, filled in when answering.

Matching has to survive recognition errors and spacing: every text is compared in its
compact form (NFKC, no punctuation, no spaces) by the Dice overlap of character bigrams,
blended with a containment score so that a long question around a known one still matches.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from voiceqna.textnorm import compact

logger = logging.getLogger(__name__)

WEEKDAYS = "월화수목금토일"


@dataclass(frozen=True)
class Entry:
    questions: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Match:
    answer: str
    score: float
    question: str


def _bigrams(text: str) -> list[str]:
    return [text[i : i + 2] for i in range(len(text) - 1)] if len(text) > 1 else [text]


def similarity(a: str, b: str) -> float:
    """0..1 similarity of two compact strings, robust to a few wrong or missing syllables."""
    if not a or not b:
        return 0.0
    if a == b:
        return 1.0
    ga, gb = _bigrams(a), _bigrams(b)
    pool = list(gb)
    common = 0
    for g in ga:
        if g in pool:
            pool.remove(g)
            common += 1
    dice = 2 * common / (len(ga) + len(gb))
    # How much of the known question (b) appears in the asked one (a).
    containment = common / len(gb)
    return max(dice, 0.85 * containment if len(gb) >= 3 else 0.0)


class KnowledgeBase:
    def __init__(self, entries: list[Entry], threshold: float = 0.5) -> None:
        if not entries:
            raise ValueError("The knowledge base is empty: add at least one {questions, answer} entry.")
        self.entries = entries
        self.threshold = threshold
        self._index = [(compact(q), q, e) for e in entries for q in e.questions]

    @classmethod
    def load(cls, path: Path) -> "KnowledgeBase":
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            entries = [Entry(tuple(item["questions"]), item["answer"]) for item in raw]
        except FileNotFoundError:
            raise ValueError(f"Knowledge base {path} not found: set KNOWLEDGE_BASE to a JSON file.") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(
                f"Knowledge base {path} is not a list of {{\"questions\": [...], \"answer\": \"...\"}}: {exc}"
            ) from None
        logger.info("Loaded %d knowledge-base entries from %s", len(entries), path)
        return cls(entries)

    def match(self, question: str) -> Match | None:
        asked = compact(question)
        if not asked:
            return None
        score, known, entry = max(((similarity(asked, c), q, e) for c, q, e in self._index), key=lambda t: t[0])
        if score < self.threshold:
            return None
        return Match(answer=fill(entry.answer), score=score, question=known)


def fill(answer: str, now: datetime | None = None) -> str:
    """The answer with {time}, {date} and {weekday} filled in; any other brace is kept as written
    (not str.format: a literal `{` in a user's knowledge base must not break every match)."""
    if "{" not in answer:
        return answer
    now = now or datetime.now()
    values = {
        "{time}": f"{'오전' if now.hour < 12 else '오후'} {now.hour % 12 or 12}시 {now.minute}분",
        "{date}": f"{now.year}년 {now.month}월 {now.day}일",
        "{weekday}": f"{WEEKDAYS[now.weekday()]}요일",
    }
    for placeholder, value in values.items():
        answer = answer.replace(placeholder, value)
    return answer
