# Korean text for the ear: numbers, dates, times, units and letters read out; markdown, emoji, URLs dropped.
"""`spoken(text)` turns an answer written for the eye into Korean for a speech engine.

Library: `hangulpy` (MIT, no dependencies, nothing downloaded) gives the number words —
Sino-Korean readings with the large units (`10000` → 만, not 일만; `100000000` → 일억),
native counting forms (스무, 스물한, 아흔아홉) and the months 유월/시월. It has no text-level
normaliser (nothing finds numbers in a sentence, picks native or Sino by the counter,
reads times, phone numbers, units or acronyms), so that part is ours, below: one flat pass
per kind of thing, in order, each driven by a table. (g2pk and kornorm need mecab or
download data at first use.)

Readings chosen where Korean has more than one (the most common one, or the clearest):
- Native numbers before native counters (개, 명, 살, 시, 번, 시간 …) for 1–99; 0 and 100 and
  over are Sino (백 개, 백일 명). Decimals, numbers with 만/억/조 and numbers after 제 are
  always Sino (일 점 오 시간, 삼만 명, 제삼 장).
- 번 alone counts times (세 번); before a label noun (출구, 버스, 문제 …) it is a number
  (삼 번 출구). 1번째 → 첫 번째. 분 is minutes (삼 분), not people (세 분).
- 대 with a multiple of ten is an age group (이십 대); other numbers count machines (두 대).
- 시간 is native at any size (스물네 시간), as the counter rule says.
- Times keep the 24-hour clock as written: 14:30 → 열네 시 삼십 분 (no guessed 오전/오후).
- Below zero: 영하 for temperatures (-3도, -3℃ → 영하 삼 도), 마이너스 otherwise.
- Ranges: 3~5개 → 세 개에서 다섯 개 (a native counter is said on both sides; natives also
  contract neighbours, 두세 개); 3~5일 → 삼에서 오 일; 1~2만 원 → 만에서 이만 원.
- Digits one by one, 0 as 공: phone numbers (010-1234-5678 → 공일공 일이삼사 오육칠팔),
  hyphenated account or card numbers, numbers with a leading 0, 4+ digits after 번호/코드/
  계좌/인증, and bare runs of 5+ digits with no counter (unless they end in 000: 10000 → 만).
- Fractions with a denominator up to 10: 1/2 → 이 분의 일. Ratios and scores: 3:2 → 삼 대 이.
- All-caps words and single letters are spelled with Korean letter names (AI → 에이아이,
  x축 → 엑스축, Z → 제트); a small lexicon covers words said as words (NASA → 나사,
  iPhone → 아이폰, 5G → 파이브지). Other mixed- or lower-case Latin words (GPUs, help) are
  left as written for the speech engine.
- Units after a number are read (5km → 오 킬로미터, 100km/h → 시속 백 킬로미터).
- Removed: code blocks, URLs, emoji, markdown marks ([text](url) keeps its text, `code`
  keeps its text). E-mail addresses are read (help 골뱅이 example 점 com): they are often
  the one thing the listener needs.
Output is NFC (never NFKD); spoken(spoken(x)) == spoken(x).
"""

from __future__ import annotations

import re
import unicodedata

from hangulpy import months, number_to_hangul, susa

# --- tables -------------------------------------------------------------------------------

NATIVE_COUNTERS = frozenset(
    "개 명 살 시 시간 마리 번 번째 잔 병 권 장 달 가지 군데 그루 켤레 벌 대 곳 사람 채 척 통 송이 "
    "알 줄 조각 그릇 접시 봉지 상자 박스 자루 쌍 판 끼 걸음 방울 모금 숟가락 스푼 컵 바퀴 배 차례 "
    "포기 팩 캔".split()
)
"""Counters said with native numbers (한 개, 스물한 살) from 1 to 99."""

SINO_COUNTERS = frozenset(
    "분 초 년 년도 월 일 주 주일 주년 개월 개국 개년 개사 개소 원 달러 엔 유로 위안 파운드 층 호 "
    "호선 호실 동 번지 도 퍼센트 퍼센트포인트 프로 킬로 점 쪽 페이지 평 세 세기 회 회차 차 등 위 "
    "학년 반 교시 인 인분 인승 박 분기 기 항".split()
)
"""Counters said with Sino numbers (삼 분); listed so they win over a shorter native one
(개월 over 개, 달러 over 달) and are spaced from the number."""

LABEL_NOUNS = ("출구", "버스", "게이트", "국도", "고속도로", "도로", "문제", "홈", "승강장",
               "선수", "타자", "트랙", "채널", "좌석", "창구")
"""After N번, these make 번 a label number (삼 번 출구), not a count (세 번)."""

CODE_WORDS = ("번호", "코드", "계좌", "인증", "PIN", "OTP", "아이디")
"""Within a few characters before 4+ digits, these make the digits read one by one."""

UNITS = {
    "km/h": "시속 {} 킬로미터", "m/s": "초속 {} 미터",
    "km²": "{} 제곱킬로미터", "km2": "{} 제곱킬로미터", "m²": "{} 제곱미터", "m2": "{} 제곱미터",
    "cm²": "{} 제곱센티미터", "cm2": "{} 제곱센티미터", "m³": "{} 세제곱미터", "m3": "{} 세제곱미터",
    "km": "{} 킬로미터", "cm": "{} 센티미터", "mm": "{} 밀리미터", "nm": "{} 나노미터",
    "μm": "{} 마이크로미터", "m": "{} 미터",
    "kg": "{} 킬로그램", "mg": "{} 밀리그램", "g": "{} 그램",
    "ml": "{} 밀리리터", "mL": "{} 밀리리터", "L": "{} 리터", "cc": "{} 씨씨",
    "kcal": "{} 킬로칼로리", "cal": "{} 칼로리",
    "TB": "{} 테라바이트", "GB": "{} 기가바이트", "MB": "{} 메가바이트", "KB": "{} 킬로바이트",
    "kB": "{} 킬로바이트", "Gbps": "{} 기가비피에스", "Mbps": "{} 메가비피에스",
    "kWh": "{} 킬로와트시", "kW": "{} 킬로와트", "W": "{} 와트", "V": "{} 볼트",
    "mAh": "{} 밀리암페어시", "GHz": "{} 기가헤르츠", "MHz": "{} 메가헤르츠",
    "kHz": "{} 킬로헤르츠", "Hz": "{} 헤르츠", "ms": "{} 밀리초", "dB": "{} 데시벨",
    "ppm": "{} 피피엠",
    "%p": "{} 퍼센트포인트", "%": "{} 퍼센트", "‰": "{} 퍼밀",
    "°C": "{} 도", "°F": "화씨 {} 도", "°": "{} 도",
}
"""Units after a number (Latin letters: case matters, and no letter may follow)."""

CURRENCIES = {"₩": "원", "$": "달러", "€": "유로", "£": "파운드", "¥": "엔"}
"""Currency signs before a number, said after it: $100 → 백 달러."""

LETTERS = {
    "A": "에이", "B": "비", "C": "씨", "D": "디", "E": "이", "F": "에프", "G": "지", "H": "에이치",
    "I": "아이", "J": "제이", "K": "케이", "L": "엘", "M": "엠", "N": "엔", "O": "오", "P": "피",
    "Q": "큐", "R": "알", "S": "에스", "T": "티", "U": "유", "V": "브이", "W": "더블유", "X": "엑스",
    "Y": "와이", "Z": "제트",
}

LEXICON = {
    "NASA": "나사", "UNESCO": "유네스코", "UNICEF": "유니세프", "NATO": "나토", "OPEC": "오펙",
    "LAN": "랜", "RAM": "램", "ROM": "롬", "COVID-19": "코비드 나인틴", "A/S": "에이에스",
    "5G": "파이브지", "4G": "포지", "4K": "포케이", "B2B": "비투비", "B2C": "비투씨", "3D": "쓰리디", "2D": "투디", "A4": "에이포",
    "KF94": "케이에프 구사", "KF80": "케이에프 팔공",
    "iPhone": "아이폰", "iPad": "아이패드", "iOS": "아이오에스", "macOS": "맥오에스", "IoT": "아이오티",
    "mRNA": "엠알엔에이", "ChatGPT": "챗지피티", "OpenAI": "오픈에이아이", "YouTube": "유튜브",
    "Google": "구글", "Apple": "애플", "Samsung": "삼성", "Microsoft": "마이크로소프트",
    "Windows": "윈도우", "Android": "안드로이드", "Python": "파이썬", "Excel": "엑셀",
    "Wi-Fi": "와이파이", "WiFi": "와이파이", "Bluetooth": "블루투스", "email": "이메일",
    "e-mail": "이메일", "Netflix": "넷플릭스", "Kakao": "카카오", "Naver": "네이버",
}
"""Latin words not spelled letter by letter."""

CODE_DIGITS = "공일이삼사오육칠팔구"
"""Digits read one by one in codes and phone numbers (0 → 공)."""

FRACTION_DIGITS = "영일이삼사오육칠팔구"
"""Digits after a decimal point (0 → 영)."""

# --- patterns -----------------------------------------------------------------------------


def _alternation(words) -> str:
    """A regex alternation that tries longer words first."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


COUNTER = _alternation(NATIVE_COUNTERS | SINO_COUNTERS)
MAGNITUDE = r"[십백천]?[만억조]|[십백천]"
NUMBER = r"\d[\d,]*(?:\.\d+)?"

COMPAT_CHARS = re.compile("[\uff01-\uff5e\u3380-\u33ff\u2460-\u24ff\u2103\u2109]")
"""Full-width forms, squared units (㎞), circled numbers, ℃ ℉: folded with NFKC one by one
(NFKC on the whole text would also fold Hangul compatibility jamo such as ㅋ)."""

EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\u2190-\u21ff"
    "\ufe0f\u200d\u20e3\u00a9\u00ae\u2122\U000e0020-\U000e007f]"
)

MARKDOWN = [
    (re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$\n?", re.S | re.M), ""),  # code blocks
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images: alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: their text
    (re.compile(r"(?:https?://|www\.)[^\s<>()\[\]가-힣]*[^\s<>()\[\]가-힣.,!?:;'\"]"), ""),
    (re.compile(r"^[ \t]*#{1,6}[ \t]*", re.M), ""),  # headers
    (re.compile(r"^[ \t]*>[ \t]?", re.M), ""),  # quotes
    (re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$", re.M), ""),  # rules
    (re.compile(r"^[ \t]*\|?[ \t]*:?-{2,}:?[ \t]*(?:\|[ \t]*:?-{2,}:?[ \t]*)*\|?[ \t]*$", re.M), ""),
    (re.compile(r"^[ \t]*(?:[-*+•]|\d{1,2}[.)])[ \t]+", re.M), ""),  # list marks
    (re.compile(r"\*\*|__|~~|[*`]"), ""),  # emphasis, code ticks
]
"""Markdown and links: what a reader sees but a listener should not hear."""

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
LEXICON_WORD = re.compile(rf"(?<![A-Za-z0-9])(?:{_alternation(LEXICON)})(?![A-Za-z])")
PHONE = re.compile(
    r"(?<![\d-])(?:0\d{1,2}[-. ]\d{3,4}[-. ]\d{4}|1[5-8]\d\d-\d{4}|\d+(?:-\d+){2,})(?![\d-])"
)
DATE = re.compile(r"(?<![\d.])(\d{4})\s?([-./])\s?(\d{1,2})\s?\2\s?(\d{1,2})(?![\d])")
TIME = re.compile(r"(?<![\d:.])(\d{1,2}):(\d{2})(?::(\d{2}))?(?![\d:])")
RATIO = re.compile(r"(?<![\d:.])(\d+):(\d+)(?![\d:])")
COUNTER_AHEAD = re.compile(COUNTER)
FRACTION = re.compile(r"(?<![\d/.])(\d)/(\d{1,2})(?![\d/])")
CURRENCY = re.compile(rf"([{''.join(CURRENCIES)}]) ?({NUMBER})({MAGNITUDE})?")
UNIT = re.compile(rf"({NUMBER}) ?({_alternation(UNITS)})(?![A-Za-z])")
RANGE = re.compile(
    rf"({NUMBER})({MAGNITUDE})?\s*(?:~|-(?=\s*{NUMBER}(?:{MAGNITUDE})? ?(?:{COUNTER})))\s*"
    rf"(?=({NUMBER})({MAGNITUDE})?( ?)({COUNTER})?)"
)
NUMBER_WITH_COUNTER = re.compile(
    rf"(?:(?<![\w.)\]])([-+]))?(\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.(\d+))?"
    rf"({MAGNITUDE})?(?:( ?)({COUNTER}))?"
)
ACRONYM = re.compile(r"(?<![A-Za-z])(?:[A-Z]+|[a-z])(?![A-Za-z])")

CLEANUP = [
    (re.compile(r"[~_|<>\\^/@#=–—-]|\+(?!\d)"), " "),
    (re.compile(r"\(\s*\)|\[\s*\]"), ""),
    (re.compile(r"\(\s+"), "("),
    (re.compile(r"[ \t\u00a0\u3000]+"), " "),
    (re.compile(r" +([.,!?;:)\]])"), r"\1"),
    (re.compile(r"^ +| +$", re.M), ""),
    (re.compile(r"\n{3,}"), "\n\n"),
]
"""Symbols nobody should hear, and the spaces left behind."""

# --- readings -----------------------------------------------------------------------------


def _sino(digits: str, fraction: str = "") -> str:
    """Sino-Korean reading: 12000 → 만 이천, ('3', '14') → 삼 점 일사."""
    digits = digits.replace(",", "")
    if len(digits) > 20:  # past 해 (10^20) nobody reads the units
        whole = _code(digits)
    else:
        whole = number_to_hangul(int(digits), spacing=True)
    if not fraction:
        return whole
    return f"{whole} 점 {''.join(FRACTION_DIGITS[int(d)] for d in fraction)}"


def _code(digits: str) -> str:
    return "".join(CODE_DIGITS[int(d)] for d in digits if d.isdigit())


def _native(n: int) -> str:
    """Native counting form, 1–99: 한, 두, 스무, 스물한."""
    return susa(n, classifier=True)


def _hour(h: int) -> str:
    return "영 시" if h == 0 else f"{_native(h)} 시"


# --- passes -------------------------------------------------------------------------------


def _email(m: re.Match) -> str:
    text = m.group(0).replace("@", " 골뱅이 ").replace(".", " 점 ")
    text = text.replace("-", " 하이픈 ").replace("_", " 언더바 ")
    return re.sub(r"\d+", lambda d: _code(d.group(0)), text)


def _phone(m: re.Match) -> str:
    return " ".join(_code(group) for group in re.split(r"[-. ]", m.group(0)))


def _date(m: re.Match) -> str:
    year, _, month, day = m.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return m.group(0)
    return f"{_sino(year)} 년 {months(int(month))} {_sino(day)} 일"


def _time(m: re.Match) -> str:
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if h > 24 or mi > 59 or s > 59:
        return m.group(0)
    parts = [_hour(h)]
    if mi or s:
        parts.append(f"{_sino(m.group(2))} 분")
    if s:
        parts.append(f"{_sino(m.group(3))} 초")
    return " ".join(parts)


def _ratio(m: re.Match) -> str:
    return f"{_sino(m.group(1))} 대 {_sino(m.group(2))}"


def _fraction(m: re.Match) -> str:
    numerator, denominator = int(m.group(1)), int(m.group(2))
    if not 0 < numerator < denominator <= 10:
        return m.group(0)
    space = " " if COUNTER_AHEAD.match(m.string, m.end()) else ""
    return f"{_sino(m.group(2))} 분의 {_sino(m.group(1))}{space}"


def _currency(m: re.Match) -> str:
    sign, number, magnitude = m.groups()
    return f"{number}{magnitude or ''} {CURRENCIES[sign]}"


def _unit(m: re.Match) -> str:
    return UNITS[m.group(2)].format(m.group(1))


def _range(m: re.Match) -> str:
    """3~5개 → 3개에서 (then 5개 is read as is): native counters and 월 are said twice."""
    left, left_mag, _, right_mag, gap, counter = m.groups()
    magnitude = left_mag or right_mag or ""
    repeat = counter if counter in NATIVE_COUNTERS or counter == "월" else ""
    return f"{left}{magnitude}{gap if repeat else ''}{repeat}에서 "


def _is_code(digits: str, before: str) -> bool:
    """A bare digit run that is an identifier, read digit by digit."""
    if "," in digits or len(digits) < 2:
        return False
    if digits[0] == "0":
        return True
    if len(digits) >= 4 and any(word in before[-12:] for word in CODE_WORDS):
        return True
    return len(digits) >= 5 and not digits.endswith("000")


def _counted(n: int, digits: str, counter: str, m: re.Match) -> str:
    """A whole number before a counter, without magnitude or sign."""
    after = m.string[m.end():].lstrip()
    after_je = m.string[max(0, m.start() - 1):m.start()] == "제"
    if counter == "월" and 1 <= n <= 12:
        return months(n)
    if counter == "월":
        return f"{_sino(digits)}월"
    native = (
        counter in NATIVE_COUNTERS
        and 1 <= n <= 99
        and not after_je
        and not (counter == "대" and n % 10 == 0)
        and not (counter == "번" and after.startswith(LABEL_NOUNS))
    )
    if native and counter == "번째" and n == 1:
        return "첫 번째"
    return f"{_native(n) if native else _sino(digits)} {counter}"


def _number(m: re.Match) -> str:
    sign, digits, fraction, magnitude, _, counter = m.groups()
    before = m.string[: m.start()]
    if not (sign or fraction or magnitude or counter) and _is_code(digits, before):
        return _code(digits)
    if magnitude:
        bare = digits == "1" and not fraction and magnitude[0] in "십백천만"
        reading = magnitude if bare else _sino(digits, fraction) + (" " if fraction else "") + magnitude
        reading += f" {counter}" if counter else ""
    elif fraction or not counter:
        reading = _sino(digits, fraction) + (f" {counter}" if counter else "")
    else:
        reading = _counted(int(digits.replace(",", "")), digits, counter, m)
    if sign == "-":
        return ("영하 " if counter == "도" else "마이너스 ") + reading
    if sign == "+":
        return "플러스 " + reading
    return reading


def _letters(m: re.Match) -> str:
    return "".join(LETTERS[ch] for ch in m.group(0).upper())


PASSES = [
    (re.compile(r"[−﹣－]"), "-"),
    (re.compile(r"[∼〜]|(?<=\d)[–—](?=\d)"), "~"),
    (re.compile(r"영하\s*-(?=\d)"), "-"),  # 영하 -3도: the minus is read as 영하 already
    (re.compile(r"시속\s*(?=[\d,.]+\s?km/h)"), ""),  # 시속 100km/h: km/h says 시속 already
    *MARKDOWN,
    (EMAIL, _email),
    (EMOJI, " "),
    (LEXICON_WORD, lambda m: LEXICON[m.group(0)]),
    (DATE, _date),
    (PHONE, _phone),
    (CURRENCY, _currency),
    (UNIT, _unit),
    (RANGE, _range),
    (TIME, _time),
    (RATIO, _ratio),
    (FRACTION, _fraction),
    (NUMBER_WITH_COUNTER, _number),
    (re.compile("&"), "앤"),  # Q&A → Q앤A → 큐앤에이
    (ACRONYM, _letters),
    *CLEANUP,
]
"""(pattern, replacement) in order: each later pass sees what the earlier ones made."""


def spoken(text: str) -> str:
    """Korean for the ear: what a speech engine should say for `text` (NFC)."""
    text = unicodedata.normalize("NFC", text)
    text = COMPAT_CHARS.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), text)
    for pattern, replacement in PASSES:
        text = pattern.sub(replacement, text)
    return unicodedata.normalize("NFC", text.strip())
