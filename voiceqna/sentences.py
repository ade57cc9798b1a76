"""Cut answer text that arrives in pieces (LLM tokens) into Korean sentences to speak one by one.

`SentenceSplitter.feed` takes text as it streams and returns the pieces that are complete;
`flush` returns the rest at the end. The result never depends on how the text was cut into
pieces: feeding "ab" then "c" leaves the splitter exactly as feeding "abc" does, because a
boundary is only decided once the characters that decide it have arrived (a final "." may
still become "3.5"). `split_sentences` is the whole-text form of the same thing.

Two stages. The scanner finds sentence ends: . ? ! … 。 (runs such as ?! and ..., with the
closing quotes or brackets right after them) followed by a space, and line breaks; never in a
number, URL, e-mail address or abbreviation. The merger then joins short sentences and the
scanner cuts overlong ones at a comma, so that each piece is worth one TTS call.
"""

from __future__ import annotations

import re

# Korean spacing is inconsistent and spaces are not spoken, so the two lower limits count
# non-space characters. max_chars counts every character of a piece (it also bounds the
# buffer, and so the work per feed).
#
# The first piece decides when the voice starts: it goes out as soon as it is a whole sentence
# of at least 6 non-space characters ("안녕하세요." goes alone). "네." or "좋아요!" alone would be
# a TTS call for half a second of audio; they wait and go out with the next sentence.
FIRST_MIN_CHARS = 6
# Later sentences are merged until a piece has 20 non-space characters. Korean is spoken at
# about 5-7 syllables a second, so that is 3-4 s of audio: time enough to synthesize the next
# piece while this one plays, with about half the TTS calls of one call per sentence. Open
# WebUI merges English pieces under ~50 characters; a Hangul syllable carries the sound of 2-3
# Latin letters, so 20 syllables last about as long. Bigger pieces would only lengthen the gap
# after the first one whenever the chat engine is slower than speech.
MIN_CHARS = 20
# A sentence over 120 characters (~15 s of speech) is cut at a comma, or failing that at a
# space: a piece is not heard until it is synthesized whole, so one long piece is a long gap.
MAX_CHARS = 120

_CLOSERS = "\"'”’»」』)]）】〉》*"
# A run of sentence marks (?!, !!, ..., ?") and the closing quotes/brackets right after it;
# both bounded, so that deciding a boundary looks at a few characters, never at the whole text.
_END_RUN = re.compile(r"[.?!…。？！]{1,8}[\"'”’»」』)\]）】〉》*]{0,4}")
_CANDIDATE = re.compile(r"[.?!…。？！\n\r]")
_LINE_BREAKS = "\n\r"
# CJK full stops end a sentence even with no space after them: "끝났습니다。다음".
_WIDE_MARKS = re.compile(r"[。？！]+")
_CLAUSE_END = re.compile(r"[,;:](?=\s)|[，、；：]")  # not "1,000", "10:30" or "https:"
_LAST_SPACE = re.compile(r".*\s", re.DOTALL)
_SPACES = re.compile(r"\s*")
# The word before a period, without the brackets, quotes or ** that open it: "(e.g" -> "e.g".
_WORD_BEFORE = re.compile(r"[^\s(\[{<\"'“‘*]{1,24}\Z")
# J. K. Rowling, U.S., e.g., i.e., a.m., p.m.; also "Q." and "A." of a Korean Q&A.
_INITIALS = re.compile(r"[A-Za-z](?:\.[A-Za-z])*")
# "1. 서울", "2026. 11. 27.": a period after a bare number is a list marker or a date, since a
# Korean sentence ends with a verb ending, not a number ("3개.", "3.5." still end one).
_NUMBER = re.compile(r"[0-9]+")
_ABBREVIATIONS = frozenset(
    "etc vs mr mrs ms dr prof sr jr st mt inc ltd co corp dept approx fig cf al ph.d"
    " jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# Abbreviations only before a number: "No. 5" goes on, "대답은 No. 다음" ends.
_BEFORE_NUMBER = frozenset({"no", "nos", "vol"})
# How far past a mark to look for the next visible character (lower-case after "..." goes on).
_LOOKAHEAD = 16


def _size(text: str) -> int:
    """Non-space characters: what the lower limits count."""
    return len(text) - sum(ch.isspace() for ch in text)


def _word_before(text: str, i: int, start: int) -> str:
    word = _WORD_BEFORE.search(text, max(start, i - 24), i)
    return word.group() if word else ""


def _next_visible(text: str, j: int, final: bool) -> str | None:
    """The first character after the spaces at j: "" at a line break, at the end of the text or
    past the lookahead; None while it has not arrived yet."""
    for k in range(j, min(len(text), j + _LOOKAHEAD)):
        if text[k] in _LINE_BREAKS:
            return ""
        if not text[k].isspace():
            return text[k]
    return "" if final or len(text) >= j + _LOOKAHEAD else None


def _sentence_end(text: str, i: int, start: int, final: bool) -> tuple[bool | None, int]:
    """Does the mark at i end a sentence, and where do its marks and closing quotes end?
    None: not decided until more text arrives."""
    end = _END_RUN.match(text, i).end()
    if end == len(text):
        return (True if final else None), end
    marks = text[i:end].rstrip(_CLOSERS)
    if not text[end].isspace():
        # "3.5", "example.com", "a.b?x=1", '"좋아요."라고': attached text goes on the sentence.
        return (end - i == len(marks) and _WIDE_MARKS.fullmatch(marks) is not None), end
    if marks == ".":
        word = _word_before(text, i, start)
        if _INITIALS.fullmatch(word) or _NUMBER.fullmatch(word) or word.lower() in _ABBREVIATIONS:
            return False, end
        if word.lower() in _BEFORE_NUMBER:
            after = _next_visible(text, end, final)
            return (None if after is None else not after.isdigit()), end
    elif "…" in marks or ".." in marks:
        # "Wait... what": an ellipsis followed by lower case is a pause, not an end.
        after = _next_visible(text, end, final)
        return (None if after is None else not after.islower()), end
    return True, end


def _long_cut(text: str, start: int, max_chars: int, min_chars: int) -> int:
    """Where to cut the sentence at start, known to be longer than max_chars: after its last
    comma-like mark if that leaves min_chars before it, else at its last space, else at
    max_chars."""
    limit = start + max_chars
    clause_end = max(
        (m.end() for m in _CLAUSE_END.finditer(text, start, limit + 1) if m.end() <= limit), default=start
    )
    if clause_end > start and _size(text[start:clause_end]) >= min_chars:
        return clause_end
    space = _LAST_SPACE.match(text, start, limit + 1)
    return space.end() - 1 if space else limit


class SentenceSplitter:
    """Streamed text in, speakable pieces out (see the module's notes). One per answer; it can
    be reused after flush()."""

    def __init__(
        self, first_min_chars: int = FIRST_MIN_CHARS, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS
    ) -> None:
        if first_min_chars < 0 or min_chars < 0 or max_chars < 1:
            raise ValueError("first_min_chars and min_chars must be >= 0 and max_chars >= 1")
        self.first_min_chars = first_min_chars
        self.min_chars = min_chars
        self.max_chars = max_chars
        self._reset()

    def _reset(self) -> None:
        self._text = ""  # the sentence being scanned and what follows it, not yet decided
        self._pos = 0  # everything in _text before _pos is decided: no sentence ends there
        self._pending = ""  # complete sentences waiting to be merged with the next one
        self._pending_size = 0
        self._started = False  # has the first piece gone out?

    def feed(self, piece: str) -> list[str]:
        """Add streamed text; return the pieces that are now complete (possibly none)."""
        if not piece:
            return []
        self._text += piece
        return self._merge(self._scan(final=False))

    def flush(self) -> list[str]:
        """End of stream: return what is left (merged and cut by the same rules) and reset."""
        self._text = self._text.rstrip()
        self._pos = min(self._pos, len(self._text))
        sentences = self._scan(final=True)
        if self._text:
            sentences.append(self._text)
        pieces = self._merge(sentences)
        if self._pending:
            pieces.append(self._pending)
        self._reset()
        return pieces

    def _scan(self, final: bool) -> list[str]:
        """Take the complete sentences off the front of the buffer. Only looks at text after
        _pos, plus a bounded look back and ahead around a mark."""
        text, start, pos = self._text, 0, self._pos
        sentences: list[str] = []
        while True:
            if pos == start:  # nothing of this sentence seen yet: drop the spaces before it
                start = pos = _SPACES.match(text, start).end()
            if pos - start > self.max_chars:
                cut = _long_cut(text, start, self.max_chars, self.min_chars)
                sentences.append(text[start:cut].rstrip())
                start = _SPACES.match(text, cut, pos).end()
                continue
            if pos == len(text):
                break
            found = _CANDIDATE.search(text, pos, start + self.max_chars + 1)
            if found is None:
                pos = min(len(text), start + self.max_chars + 1)
                continue
            i = found.start()
            if text[i] in _LINE_BREAKS:
                sentences.append(text[start:i].rstrip())
                start = pos = i
                continue
            ends, end = _sentence_end(text, i, start, final)
            if ends is None:
                pos = i
                break
            if ends:
                sentences.append(text[start:end])
                start = end
            pos = end
        self._text, self._pos = text[start:], pos - start
        return sentences

    def _merge(self, sentences: list[str]) -> list[str]:
        """Join short sentences to the next one; a piece goes out once it is big enough."""
        pieces: list[str] = []
        for sentence in sentences:
            if self._pending and len(self._pending) + 1 + len(sentence) > self.max_chars:
                pieces.append(self._pending)
                self._pending, self._pending_size = "", 0
            self._pending = f"{self._pending} {sentence}" if self._pending else sentence
            self._pending_size += _size(sentence)
            least = self.min_chars if self._started or pieces else self.first_min_chars
            if self._pending_size >= least:
                pieces.append(self._pending)
                self._pending, self._pending_size = "", 0
        self._started = self._started or bool(pieces)
        return pieces


def split_sentences(text: str, **options: int) -> list[str]:
    """Whole text at once: the same pieces as feeding it in any pieces, then flushing."""
    splitter = SentenceSplitter(**options)
    return splitter.feed(text) + splitter.flush()
