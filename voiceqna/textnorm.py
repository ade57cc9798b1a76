"""Korean text normalisation shared by knowledge-base matching and evaluation.

NFKC (never NFKD: that splits Hangul syllables into jamo), lower case, punctuation and
symbols removed, whitespace collapsed. `compact` also drops the spaces, since spacing in
Korean is inconsistent in both labels and recognizer output.
"""

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def _keep(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "LNZ" or ch.isspace()


def normalize(text: str) -> str:
    """NFKC, lower case, punctuation/symbols removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch if _keep(ch) else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def compact(text: str) -> str:
    """`normalize` without any spaces: the form for character error rate and matching."""
    return normalize(text).replace(" ", "")


# Korean for the ear (numbers, dates, units, letters read out) lives in its own module and is
# public here too; voiceqna.spoken imports nothing from this module, so there is no cycle.
from voiceqna.spoken import spoken  # noqa: E402, F401  (re-export)
