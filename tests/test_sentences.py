"""The streaming sentence splitter: a table of Korean answers, the same table fed in random
pieces, early emission, long-sentence cuts, nothing lost, and linear time."""

from __future__ import annotations

import random
import re
import time

import pytest

from voiceqna.sentences import MAX_CHARS, SentenceSplitter, split_sentences

# Boundaries alone, without merging short sentences: every sentence is its own piece.
EACH = {"first_min_chars": 0, "min_chars": 0}

CASES = [
    # --- the defaults: first sentence early, later short ones merged ---
    (
        "서울의 오늘 기온은 3.5도예요. 내일은 더 추워요! 따뜻하게 입으세요.",
        {},
        ["서울의 오늘 기온은 3.5도예요.", "내일은 더 추워요! 따뜻하게 입으세요."],
    ),
    ("네. 서울의 오늘 날씨는 맑아요.", {}, ["네. 서울의 오늘 날씨는 맑아요."]),  # "네." is too small to go alone
    ("좋아요! 오늘은 날씨가 정말 맑고 따뜻해요.", {}, ["좋아요! 오늘은 날씨가 정말 맑고 따뜻해요."]),
    ("안녕하세요. 반갑습니다.", {}, ["안녕하세요.", "반갑습니다."]),  # 6 characters: goes out first, alone
    (
        "안녕하세요. 저는 음성 비서예요. 무엇이든 물어보세요. 날씨도 알려 드려요. 그럼 시작할까요?",
        {},
        ["안녕하세요.", "저는 음성 비서예요. 무엇이든 물어보세요. 날씨도 알려 드려요.", "그럼 시작할까요?"],
    ),
    (
        "한국의 수도는 서울입니다. 서울에는 약 940만 명이 살고 있어요. 부산은 두 번째로 큰 도시예요.",
        {},
        ["한국의 수도는 서울입니다.", "서울에는 약 940만 명이 살고 있어요. 부산은 두 번째로 큰 도시예요."],
    ),
    # --- sentence marks, runs of them, closing quotes and brackets ---
    ("안녕하세요. 반갑습니다.", EACH, ["안녕하세요.", "반갑습니다."]),
    ("정말요?! 대단하네요!! 축하해요.", EACH, ["정말요?!", "대단하네요!!", "축하해요."]),
    ("글쎄요... 잘 모르겠어요.", EACH, ["글쎄요...", "잘 모르겠어요."]),
    ("글쎄요… 잘 모르겠어요.", EACH, ["글쎄요…", "잘 모르겠어요."]),
    ('그는 "좋아요."라고 말했다. 그래서 갔다.', EACH, ['그는 "좋아요."라고 말했다.', "그래서 갔다."]),
    ("그래서요?라고 물었어요. 대답이 없었죠.", EACH, ["그래서요?라고 물었어요.", "대답이 없었죠."]),
    ('그가 말했다. "정말 좋아요!" 그리고 웃었다.', EACH, ["그가 말했다.", '"정말 좋아요!"', "그리고 웃었다."]),
    ("“벌써 가요?” 그녀가 물었어요.", EACH, ["“벌써 가요?”", "그녀가 물었어요."]),
    ("(참고로 오늘은 휴일이에요.) 내일 봐요.", EACH, ["(참고로 오늘은 휴일이에요.)", "내일 봐요."]),
    ("**주의하세요.** 불이 뜨거워요.", EACH, ["**주의하세요.**", "불이 뜨거워요."]),
    ("끝났습니다。다음 질문은요？네！", EACH, ["끝났습니다。", "다음 질문은요？", "네！"]),
    ("Wait... what happened? 모르겠어요.", EACH, ["Wait... what happened?", "모르겠어요."]),
    # --- line breaks ---
    ("첫째 줄입니다\n둘째 줄입니다", EACH, ["첫째 줄입니다", "둘째 줄입니다"]),
    ("첫 문단이에요.\n\n둘째 문단이에요.", EACH, ["첫 문단이에요.", "둘째 문단이에요."]),
    ("준비물:\n- 물\n- 간식\n- 모자", EACH, ["준비물:", "- 물", "- 간식", "- 모자"]),
    ("1. 서울\n2. 부산\n3. 대구", EACH, ["1. 서울", "2. 부산", "3. 대구"]),
    ("윈도우 줄바꿈이에요\r\n다음 줄이에요", EACH, ["윈도우 줄바꿈이에요", "다음 줄이에요"]),
    # --- numbers ---
    ("가격은 1,000원이에요. 싸죠?", EACH, ["가격은 1,000원이에요.", "싸죠?"]),
    ("기온은 3.5도예요. 습도는 60%예요.", EACH, ["기온은 3.5도예요.", "습도는 60%예요."]),
    ("오늘은 2026.11.27이에요. 금요일이죠.", EACH, ["오늘은 2026.11.27이에요.", "금요일이죠."]),
    ("회의는 2026. 11. 27. 오후 3시예요. 늦지 마세요.", EACH, ["회의는 2026. 11. 27. 오후 3시예요.", "늦지 마세요."]),
    ("버전 v1.2.3을 설치하세요. 그다음 재시작하세요.", EACH, ["버전 v1.2.3을 설치하세요.", "그다음 재시작하세요."]),
    ("정답은 42. 다음 질문이요.", EACH, ["정답은 42. 다음 질문이요."]),  # a bare number: list marker or date
    ("방법은 두 가지예요. 1. 물 마시기 2. 쉬기", EACH, ["방법은 두 가지예요.", "1. 물 마시기 2. 쉬기"]),
    # --- URLs and e-mail addresses ---
    (
        "자세한 내용은 https://example.com/a.b?x=1 에서 보세요. 감사합니다.",
        EACH,
        ["자세한 내용은 https://example.com/a.b?x=1 에서 보세요.", "감사합니다."],
    ),
    ("주소는 https://example.com. 확인해 보세요.", EACH, ["주소는 https://example.com.", "확인해 보세요."]),
    (
        "메일은 kim.minsu@example.co.kr로 보내 주세요. 답장드릴게요.",
        EACH,
        ["메일은 kim.minsu@example.co.kr로 보내 주세요.", "답장드릴게요."],
    ),
    # --- abbreviations ---
    ("과일(e.g. 사과, 배)을 드세요. 좋아요.", EACH, ["과일(e.g. 사과, 배)을 드세요.", "좋아요."]),
    ("내일, i.e. 금요일이에요. 알겠죠?", EACH, ["내일, i.e. 금요일이에요.", "알겠죠?"]),
    ("사과, 배 etc. 여러 과일이 있어요. 골라 보세요.", EACH, ["사과, 배 etc. 여러 과일이 있어요.", "골라 보세요."]),
    ("Dr. Kim이 왔어요. 반가워요.", EACH, ["Dr. Kim이 왔어요.", "반가워요."]),
    ("Mr. Lee와 Mrs. Park이 만났어요. 좋네요.", EACH, ["Mr. Lee와 Mrs. Park이 만났어요.", "좋네요."]),
    ("U.S. 경제가 좋아요. 미국(U.S.) 얘기예요.", EACH, ["U.S. 경제가 좋아요.", "미국(U.S.) 얘기예요."]),
    ("출발은 9 a.m. 이에요. 도착은 3 p.m. 이고요.", EACH, ["출발은 9 a.m. 이에요.", "도착은 3 p.m. 이고요."]),
    ("No. 5 선수가 이겼어요. 대답은 No. 다음에 봐요.", EACH, ["No. 5 선수가 이겼어요.", "대답은 No.", "다음에 봐요."]),
    ("오늘은 삼성 vs. 애플 경기예요. 재밌겠죠?", EACH, ["오늘은 삼성 vs. 애플 경기예요.", "재밌겠죠?"]),
    ("Q. 서울의 인구는? A. 약 940만 명이에요.", EACH, ["Q. 서울의 인구는?", "A. 약 940만 명이에요."]),
    # --- whitespace and empty input ---
    ("  앞뒤 공백은   지워요.   ", EACH, ["앞뒤 공백은   지워요."]),
    ("", EACH, []),
    ("   \n\n  \t ", {}, []),
    ("마침표 없는 문장", {}, ["마침표 없는 문장"]),
    ("네.", {}, ["네."]),  # the end of the stream: a short piece still goes out
    # --- long sentences: cut at a comma, else a space, else at the limit ---
    (
        "서울은 한국의 수도이고, 부산은 두 번째로 큰 도시이며, 인천에는 국제공항이 있어요.",
        {**EACH, "max_chars": 30},
        ["서울은 한국의 수도이고,", "부산은 두 번째로 큰 도시이며,", "인천에는 국제공항이 있어요."],
    ),
    (
        "서울은 한국의 수도이고 부산은 두 번째로 큰 도시이며 인천에는 국제공항이 있어요.",
        {**EACH, "max_chars": 30},
        ["서울은 한국의 수도이고 부산은 두 번째로 큰 도시이며", "인천에는 국제공항이 있어요."],
    ),
    ("가" * 50, {**EACH, "max_chars": 20}, ["가" * 20, "가" * 20, "가" * 10]),
    (
        "가격은 1,000원, 2,000원, 3,000원이고 배송비는 무료예요.",
        {**EACH, "max_chars": 25},
        ["가격은 1,000원, 2,000원,", "3,000원이고 배송비는 무료예요."],
    ),
    ("사과、배、귤、감을 샀어요。그리고 돌아왔어요。", {**EACH, "max_chars": 10}, ["사과、배、귤、", "감을 샀어요。", "그리고 돌아왔어요。"]),
    (
        "짧아요. 이 문장은 최대 길이에 가까워서 짧은 문장과 합치면 넘쳐요.",
        {"first_min_chars": 10, "min_chars": 10, "max_chars": 36},
        ["짧아요.", "이 문장은 최대 길이에 가까워서 짧은 문장과 합치면 넘쳐요."],
    ),
]


@pytest.mark.parametrize("text, options, expected", CASES, ids=[f"case{i:02d}" for i in range(len(CASES))])
def test_table(text, options, expected):
    assert split_sentences(text, **options) == expected


def _chunks(text: str, sizes: str, rng: random.Random) -> list[str]:
    """1 or 2 characters at a time, or token-like pieces of 1-6 characters."""
    pieces, i = [], 0
    while i < len(text):
        n = {"1": 1, "2": 2}.get(sizes) or rng.randint(1, 6)
        pieces.append(text[i : i + n])
        i += n
    return pieces


def _streamed(text: str, options: dict, sizes: str, rng: random.Random) -> list[str]:
    splitter = SentenceSplitter(**options)
    out = []
    for piece in _chunks(text, sizes, rng):
        out += splitter.feed(piece)
    return out + splitter.flush()


@pytest.mark.parametrize("sizes", ["1", "2", "tokens"])
def test_table_fed_in_pieces_gives_the_same_pieces(sizes):
    rng = random.Random(1127)
    for text, options, expected in CASES:
        assert _streamed(text, options, sizes, rng) == expected, text


def test_first_sentence_goes_out_when_its_mark_and_one_more_character_arrive():
    text = "서울의 오늘 기온은 3.5도예요. 내일은 더 추워요!"
    splitter = SentenceSplitter()
    end = text.index("요.") + 2
    for i, ch in enumerate(text[:end]):
        assert splitter.feed(ch) == [], f"nothing before the first sentence is over (at {text[: i + 1]!r})"
    assert splitter.feed(" ") == ["서울의 오늘 기온은 3.5도예요."]
    assert splitter.feed("내일은 더 추워요!") == []
    assert splitter.flush() == ["내일은 더 추워요!"]


def test_a_period_at_the_end_so_far_waits_for_the_next_character():
    splitter = SentenceSplitter(**EACH)
    assert splitter.feed("기온은 3.") == []  # "3." or "3.5"?
    assert splitter.feed("5도예요.") == []
    assert splitter.feed(" 내") == ["기온은 3.5도예요."]
    assert splitter.feed("일은 맑아요.") == []
    assert splitter.flush() == ["내일은 맑아요."]  # flush decides the last period


def test_ellipsis_waits_for_the_next_visible_character():
    splitter = SentenceSplitter(**EACH)
    assert splitter.feed("Wait... ") == []  # "... what" goes on, "... 그래서" ends
    assert splitter.feed("what?") == []
    assert splitter.feed(" 네") == ["Wait... what?"]


def test_a_long_sentence_is_cut_at_a_comma():
    clause = "오늘 서울은 아침부터 맑고 바람이 조금 불며"
    text = ", ".join([clause] * 6) + " 저녁에는 기온이 크게 떨어질 거예요."
    pieces = split_sentences(text)
    assert len(text) > MAX_CHARS
    assert len(pieces) > 1
    assert all(len(piece) <= MAX_CHARS for piece in pieces)
    assert all(piece.endswith(",") for piece in pieces[:-1])
    assert " ".join(pieces) == text


def test_a_splitter_can_be_reused_after_flush():
    splitter = SentenceSplitter()
    assert splitter.feed("안녕하세요. 첫 답이에요.") == ["안녕하세요."]
    assert splitter.flush() == ["첫 답이에요."]
    assert splitter.feed("네. 두 번째 답이에요. ") == ["네. 두 번째 답이에요."]
    assert splitter.flush() == []


def test_bad_thresholds_are_refused():
    with pytest.raises(ValueError):
        SentenceSplitter(max_chars=0)
    with pytest.raises(ValueError):
        SentenceSplitter(min_chars=-1)


# Pieces of LLM-like Korean answers, meant to hit every rule when strung together at random.
TOKENS = [
    "서울", "의", " 날씨는", " 맑아요", " 내일은", " 비가", " 와요", " 기온은", " 3.5도", " 1,000원",
    " 2026.11.27", " 2026. 11. 27.", " v1.2.3", " https://example.com/a.b?x=1", " kim.minsu@example.co.kr",
    " e.g.", " i.e.", " etc.", " Dr.", " Mr.", " U.S.", " a.m.", " p.m.", " No. 5", " No.", " vs.", " 42.",
    ".", ".", ".", "?", "!", "?!", "!!", "...", "…", "。", "？", '."', '"', "”", ")", "(", "**", " what",
    ",", ", ", "、", ";", ":", " ", "  ", "\n", "\n\n", "\r\n", "\t", "1. ", "- ", "라고", "요", "Wait",
    " 가나다라마바사아자차카타파하" * 3, "가" * 40,
]


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 120)))


@pytest.mark.parametrize(
    "options",
    [{}, EACH, {"first_min_chars": 3, "min_chars": 8, "max_chars": 25}, {**EACH, "max_chars": 1}],
    ids=["defaults", "each", "small", "max1"],
)
def test_nothing_lost_or_duplicated_and_pieces_never_depend_on_the_feeding(options):
    rng = random.Random(20261127)
    max_chars = options.get("max_chars", MAX_CHARS)
    for _ in range(300):
        text = _random_text(rng)
        pieces = split_sentences(text, **options)
        assert re.sub(r"\s", "", "".join(pieces)) == re.sub(r"\s", "", text), text
        assert all(piece and piece == piece.strip() for piece in pieces), pieces
        # A piece only passes max_chars by the marks and quotes that end its sentence.
        assert all(len(piece) <= max_chars + 12 for piece in pieces), pieces
        assert _streamed(text, options, rng.choice("12t"), rng) == pieces, text


ANSWER = (
    "서울의 오늘 기온은 3.5도예요. 내일은 더 추워요! 따뜻하게 입으세요.\n"
    "1. 자세한 내용은 https://example.com/a.b?x=1 에서 보세요.\n"
    '그는 "좋아요."라고 말했어요... 그리고 Dr. Kim이 2026. 11. 27. 오후 3시에 왔어요, 정말이에요?! '
)


@pytest.mark.parametrize(
    "text",
    [
        ANSWER * (100_000 // len(ANSWER)),
        "가" * 100_000,  # no mark and no space: cut at max_chars
        "가 " * 50_000,  # no mark: cut at spaces
        ("." * 7 + " " * 20) * (100_000 // 27),  # marks and spaces only
    ],
    ids=["answer", "no-space", "no-mark", "marks"],
)
def test_feeding_100kb_one_character_at_a_time_takes_linear_time(text):
    splitter = SentenceSplitter()
    out = []
    started = time.perf_counter()
    for ch in text:
        out += splitter.feed(ch)
        # What the splitter holds stays bounded, so each feed costs O(1), not O(text so far).
        assert len(splitter._text) <= MAX_CHARS + 32
    out += splitter.flush()
    assert time.perf_counter() - started < 2.0
    assert re.sub(r"\s", "", "".join(out)) == re.sub(r"\s", "", text)
