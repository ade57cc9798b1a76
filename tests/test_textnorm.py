import unicodedata

import pytest

from voiceqna.textnorm import compact, normalize


@pytest.mark.parametrize(
    "text, expected",
    [
        ("안녕하세요.", "안녕하세요"),
        ("  한국의   수도는\t어디야?! ", "한국의 수도는 어디야"),
        ("ＡＢＣ １２３", "abc 123"),  # NFKC folds full-width forms
        ("“서울”이에요…", "서울 이에요"),
        ("3.5킬로", "3 5킬로"),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_compact_drops_spaces_for_korean_spacing_differences():
    assert compact("맛있나 봐요") == compact("맛있나봐요") == "맛있나봐요"


def test_decomposed_hangul_is_recomposed_not_split_into_jamo():
    decomposed = unicodedata.normalize("NFD", "한국어")
    assert len(decomposed) > 3
    assert normalize(decomposed) == "한국어"
