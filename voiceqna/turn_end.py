"""Whether a pause ends the turn, read from the words said so far: Korean marks a sentence's end in its last syllables."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from voiceqna.config import HandsFreeOptions

FINISHED = "finished"
UNFINISHED = "unfinished"
UNSURE = "unsure"

FINAL_ENDINGS = ("요", "다", "니다", "까", "습니까", "ㅂ니까", "죠", "네", "지", "군", "구나", "거든", "ㄹ게", "ㄹ께", "ㄹ래")
"""Sentence-final endings: 해요, 합니다, 할까, 합니까, 하죠, 하네, 하지, 하는군, 했구나, 했거든,
할게, 할래 (casual ones are in CASUAL_ENDINGS)."""
CONNECTIVES = ("고", "는데", "은데", "인데", "ㄴ데", "서", "면", "으면", "지만", "니까", "며", "면서", "거나",
               "든지", "도록", "려고", "러", "다가", "는지", "ㄴ지", "ㄹ지", "듯이", "게")
"""Connective endings: the sentence goes on (하고, 하는데, 해서, 하면, 하지만, 하니까, 하며, …)."""
PARTICLES = ("은", "는", "이", "가", "을", "를", "에", "에서", "에게", "한테", "께", "의", "와", "과", "도", "만",
             "로", "으로", "랑", "이랑", "부터", "까지", "보다", "처럼", "하고", "이나")
"""Particles after a noun: a word ending in one is not a sentence's end."""
CASUAL_ENDINGS = ("어", "아", "야", "자", "니", "냐", "나", "오", "음", "임", "함", "듯")
"""Endings that may end a casual or written sentence (했어, 좋아, 가자, 있니, 있나, 하시오, 최고임) but
also end nouns (영어, 여자, 라디오): the normal wait. Any other Korean word at the end is taken for a
bare noun, which does not end a sentence: the long wait."""
FILLERS = frozenset(("음", "어", "저", "그", "이", "아", "에", "뭐", "좀", "막", "이제", "그러니까", "그래서", "그리고",
                     "근데", "그런데", "저기", "있잖아", "음음", "어어", "으음", "흠"))
"""Words people say while they think, or that need a word after them (저, 그, 이 as "that", "this")."""
_TRAILING_OFF = re.compile(r"(\.\.|…|,|、|-)\s*$")
"""Whisper writes ".." or "…" where the speech trails off, and a comma inside a sentence."""
_PUNCTUATION = " \t\n.。!?！？\"'”’)]~"
_FINALS = {4: "ㄴ", 8: "ㄹ", 17: "ㅂ"}
"""Final consonants an ending may start with (한데, 할게, 합니까), by their index in a Hangul syllable."""


@dataclass(frozen=True)
class Verdict:
    """How long the pause after these words must last before the turn ends."""

    kind: str
    """finished, unfinished or unsure."""
    wait_s: float
    """The silence that ends the turn: HANDSFREE_FINISHED_WAIT_S, HANDSFREE_UNFINISHED_WAIT_S or HANDSFREE_SILENCE_S."""
    reason: str
    """What decided it, for logs and the benchmark: the ending, the mark or the rule."""


def _ending_table() -> list[tuple[str, str]]:
    """Every ending with its kind, longest first, so 습니까 wins over the connective 니까."""
    table = ([(e, FINISHED) for e in FINAL_ENDINGS] + [(e, UNFINISHED) for e in CONNECTIVES + PARTICLES]
             + [(e, UNSURE) for e in CASUAL_ENDINGS])
    return sorted(table, key=lambda item: -len(item[0]))


_ENDINGS = _ending_table()


def _final_consonant(syllable: str) -> str:
    """ㄴ, ㄹ or ㅂ when the Hangul syllable ends in that consonant (한 → ㄴ), else ""."""
    code = ord(syllable) - 0xAC00
    return _FINALS.get(code % 28, "") if 0 <= code < 11172 else ""


def _ends_with(word: str, ending: str) -> bool:
    """Whether `word` ends in `ending`, which may start with a final consonant (ㄴ데 matches 한데)."""
    if ending[0] in "ㄴㄹㅂ":
        rest = ending[1:]
        return len(word) > len(rest) and word.endswith(rest) and _final_consonant(word[-len(rest) - 1]) == ending[0]
    return word.endswith(ending)


def read_words(text: str) -> tuple[str, str]:
    """(kind, reason) of a transcript by its end alone: finished, unfinished or unsure."""
    text = unicodedata.normalize("NFC", text or "").strip()
    if not text:
        return UNSURE, "no words"
    if _TRAILING_OFF.search(text):
        return UNFINISHED, "trails off (.. … ,)"
    if text[-1] in "?!？！":
        return FINISHED, f"ends with {text[-1]}"
    words = text.strip(_PUNCTUATION).split()
    if not words:
        return UNSURE, "no words"
    last = words[-1].strip(_PUNCTUATION)
    if last in FILLERS:
        return UNFINISHED, f"filler {last}"
    if not last or not "가" <= last[-1] <= "힣":
        return UNSURE, "no Korean ending"
    for ending, kind in _ENDINGS:
        if _ends_with(last, ending) and (len(last) > len(ending.lstrip("ㄴㄹㅂ")) or kind != UNFINISHED):
            return kind, f"-{ending}"
    return UNFINISHED, "a noun at the end"


def decide(text: str, speech_s: float, options: HandsFreeOptions) -> Verdict:
    """The wait for a pause after `text` (the recognised speech of the turn so far, `speech_s`
    seconds of it). Speech shorter than HANDSFREE_SHORT_SPEECH_S gets the normal wait: Whisper
    may invent a stock phrase ("고맙습니다.") for a fragment."""
    if speech_s < options.short_speech_s:
        return Verdict(UNSURE, options.silence_s, f"speech under {options.short_speech_s:g} s")
    kind, reason = read_words(text)
    wait = {FINISHED: options.finished_wait_s, UNFINISHED: options.unfinished_wait_s}.get(kind, options.silence_s)
    return Verdict(kind, wait, reason)
