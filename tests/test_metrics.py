"""WER, CER, CER with numbers read, and repetition on hand-made Korean pairs whose exact values are worked out by hand."""

import math
import unicodedata
from fractions import Fraction

import pytest

from voiceqna.evaluation.metrics import (
    ErrorCounts,
    align,
    cer,
    char_errors,
    percentiles,
    repeated_span,
    spoken_char_errors,
    wer,
    word_errors,
)

# 6 words: 저 / 식당 / 음식이 / 정말 / 맛있나 / 봐요;  13 characters without spaces and the full stop.
REFERENCE = "저 식당 음식이 정말 맛있나 봐요."


@pytest.mark.parametrize(
    "case, hypothesis, word_rate, char_rate",
    [
        ("identical", "저 식당 음식이 정말 맛있나 봐요.", Fraction(0, 6), Fraction(0, 13)),
        ("one syllable substituted", "저 식당 음식이 정말 맛있다 봐요.", Fraction(1, 6), Fraction(1, 13)),
        ("one word (2 syllables) deleted", "저 식당 음식이 맛있나 봐요.", Fraction(1, 6), Fraction(2, 13)),
        ("one word (2 syllables) inserted", "저 식당 음식이 정말 정말 맛있나 봐요.", Fraction(1, 6), Fraction(2, 13)),
        # Spacing only: CER ignores it; WER sees 저식당 and 정말맛있나 as two substitutions + two deletions.
        ("spacing only", "저식당 음식이 정말맛있나 봐요.", Fraction(4, 6), Fraction(0, 13)),
        ("punctuation only", "저, 식당 음식이... 정말 맛있나 봐요?!", Fraction(0, 6), Fraction(0, 13)),
        ("decomposed Hangul (NFD)", unicodedata.normalize("NFD", REFERENCE), Fraction(0, 6), Fraction(0, 13)),
        ("extra whitespace", "  저 식당\t음식이  정말\n맛있나 봐요 ", Fraction(0, 6), Fraction(0, 13)),
        ("nothing recognised", "", Fraction(6, 6), Fraction(13, 13)),
    ],
)
def test_known_error_rates(case, hypothesis, word_rate, char_rate):
    assert wer([REFERENCE], [hypothesis]) == pytest.approx(float(word_rate)), case
    assert cer([REFERENCE], [hypothesis]) == pytest.approx(float(char_rate)), case


def test_edit_kinds_are_counted_separately():
    assert char_errors(REFERENCE, "저 식당 음식이 정말 맛있다 봐요") == ErrorCounts(1, 0, 0, 13)
    assert char_errors(REFERENCE, "저 식당 음식이 맛있나 봐요") == ErrorCounts(0, 2, 0, 13)
    assert char_errors(REFERENCE, "저 식당 음식이 정말 정말 맛있나 봐요") == ErrorCounts(0, 0, 2, 13)
    assert word_errors(REFERENCE, "저식당 음식이 정말맛있나 봐요") == ErrorCounts(2, 2, 0, 6)


def test_full_width_latin_and_case_are_normalised():
    assert cer(["KBS 뉴스 9시"], ["ｋｂｓ 뉴스 ９시"]) == 0.0
    assert wer(["KBS 뉴스 9시"], ["kbs 뉴스 9시"]) == 0.0


def test_corpus_rate_is_total_errors_over_total_length_not_a_mean():
    # 1 error in 13 characters, then 1 error in 1 character: 2/14, not (1/13 + 1/1) / 2.
    rate = cer([REFERENCE, "네"], ["저 식당 음식이 정말 맛있다 봐요", "예"])
    assert rate == pytest.approx(2 / 14)


def test_alignment_is_minimal_with_fewest_substitutions():
    # a=a, b→z, c=c, -d, e=e, f→d: 3 edits.
    assert align(list("abcdef"), list("azced")) == ErrorCounts(2, 1, 0, 6)
    # 2 edits either way: a→b, b→a or -a, b=b, +a; the one without substitutions wins.
    assert align(list("ab"), list("ba")) == ErrorCounts(0, 1, 1, 2)
    assert align([], list("ab")) == ErrorCounts(0, 0, 2, 0)
    assert align(list("ab"), []) == ErrorCounts(0, 2, 0, 2)


def test_empty_reference_rate():
    assert ErrorCounts().rate == 0.0
    assert math.isinf(ErrorCounts(insertions=2).rate)


def test_unpaired_lists_are_refused():
    with pytest.raises(ValueError, match="pair them"):
        cer(["가"], ["가", "나"])


def test_percentiles():
    assert percentiles([1.0, 2.0, 3.0, 4.0, 5.0], (50, 90)) == {"p50": 3.0, "p90": pytest.approx(4.6)}
    assert math.isnan(percentiles([])["p50"])


def test_agrees_with_jiwer():
    """An independent implementation gives the same rates on the normalised texts."""
    jiwer = pytest.importorskip("jiwer")
    from voiceqna.textnorm import compact, normalize

    pairs = [
        (REFERENCE, "저 식당 음식이 정말 맛있다봐요"),
        ("그러니까 늦게 가면 못 드실 수도 있어요.", "그러니까 늦게 라면 못 드실 수 도 있어요"),
        ("집에 친구의 부모님이 계시는데", "집에 친구 부모님에게 계시는데 네"),
    ]
    refs, hyps = zip(*pairs)
    assert cer(refs, hyps) == pytest.approx(jiwer.cer([compact(r) for r in refs], [compact(h) for h in hyps]))
    assert wer(refs, hyps) == pytest.approx(jiwer.wer([normalize(r) for r in refs], [normalize(h) for h in hyps]))


@pytest.mark.parametrize(
    "case, reference, hypothesis, repeated",
    [
        ("a sentence said twice (seen on a 3.5 s clip)", "여기 공항이야. 너희 집 앞으로 갈게.",
         "여기 공항이야. 너희 집 앞으로 갈게. 여기 공항이야. 너희 집 앞으로 갈게.", "여기공항이야너희집앞으로갈게"),
        ("twice and a bit (seen on a 2.5 s clip)", "다리를 더 구부려 보라고.",
         "다리를 더 구비를 보라 칼. 다리를 더 구비를 보라 칼. 다리를", "다리를더구비를보라칼"),
        ("a loop: the longest repeated span", "면접에서", "양념에 양념에 양념에 양념에", "양념에양념에"),
        ("four syllables, spacing and punctuation ignored", "배고파서 죽겠어", "배고파서, 배고파 서 죽겠어", "배고파서"),
        ("three syllables are not enough", "배고파 죽겠어", "배고파 배고파 죽겠어", ""),
        ("the reference says it twice too", "잠깐만요 잠깐만요", "잠깐만요, 잠깐만요.", ""),
        ("a sentence and its first half again (seen on a 5.5 s clip)", "이 드라마는 범죄와 대처를 그린 드라마 같네",
         "이 드라마는 범죄와 대처를 그린 드라마 같네 이 드라마는 범죄와", "이드라마는범죄와"),
        ("said twice, not back to back, not at the end", "여기 공항이야 그리고 여기 공항이야 맞아",
         "여기 공항이야 그리고 여기 공항이야 맞아", ""),
        ("said twice, not back to back, once in the reference", "여기 공항이야 그리고 맞아",
         "여기 공항이야 그리고 여기 공항이야 맞아", ""),
        ("ends with a span the reference also says twice", "영화를 봤는데 좋은 영화를", "영화를 봤는데 좋은 영화를", ""),
        ("no repetition", REFERENCE, "저 식당 음식이 정말 맛있다 봐요", ""),
        ("empty hypothesis", REFERENCE, "", ""),
        ("Latin letters count as characters", "hello", "hello hello", "hello"),
    ],
)
def test_repeated_span(case, reference, hypothesis, repeated):
    assert repeated_span(reference, hypothesis) == repeated, case


@pytest.mark.parametrize(
    "reference, hypothesis, plain_errors, spoken_errors",
    [
        # 이천십육년칠월사일 against 2016년7월4일: six digits for six syllables before reading.
        ("이천십육년 칠월 사일", "2016년 7월 4일", 6, 0),
        ("리얼한 3류 양아치들의", "리얼한 삼류 양아치들의", 1, 0),
        ("KBS 뉴스", "케이비에스 뉴스", 5, 0),
        ("세 시에 만나요", "3시에 만나요", 1, 0),
        ("저 식당", "저 식당", 0, 0),
    ],
)
def test_numbers_read_out_on_both_sides(reference, hypothesis, plain_errors, spoken_errors):
    assert char_errors(reference, hypothesis).errors == plain_errors
    assert spoken_char_errors(reference, hypothesis).errors == spoken_errors
