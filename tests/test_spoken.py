import subprocess
import sys
import unicodedata

import pytest

from voiceqna import textnorm
from voiceqna.spoken import spoken

DATE = "이천이십육 년 십일월 이십칠 일"

CASES = [
    # Native numbers before native counters, 1–99; Sino from 100.
    ("3시", "세 시"),
    ("3개", "세 개"),
    ("21살", "스물한 살"),
    ("20살", "스무 살"),
    ("99개", "아흔아홉 개"),
    ("100개", "백 개"),
    ("101명", "백일 명"),  # 100 and over: Sino throughout (백한 명 is also heard)
    ("사과 3 개", "사과 세 개"),
    ("고양이 2마리", "고양이 두 마리"),
    ("커피 4잔", "커피 네 잔"),
    ("책 5권", "책 다섯 권"),
    ("종이 10장", "종이 열 장"),
    ("3달 동안", "세 달 동안"),
    ("3가지 방법", "세 가지 방법"),
    ("24시간", "스물네 시간"),
    ("2배", "두 배"),
    ("차 2대", "차 두 대"),
    ("20대 여성", "이십 대 여성"),  # a multiple of ten before 대: an age group
    ("하루 3번 드세요", "하루 세 번 드세요"),
    ("3번 출구", "삼 번 출구"),  # 번 before a label noun: a number, not a count
    ("1번째", "첫 번째"),
    ("2번째 질문", "두 번째 질문"),
    ("11번째", "열한 번째"),
    ("20번째", "스무 번째"),
    ("0개", "영 개"),
    ("제3장", "제삼 장"),  # after 제: Sino
    # Sino counters.
    ("15분", "십오 분"),  # 분 is minutes (not 세 분, three people)
    ("2026년", "이천이십육 년"),
    ("3층 301호", "삼 층 삼백일 호"),
    ("2호선", "이 호선"),
    ("6개월", "육 개월"),
    ("3달러", "삼 달러"),
    ("2인분", "이 인분"),
    ("2박 3일", "이 박 삼 일"),
    ("1등", "일 등"),
    ("90점", "구십 점"),
    ("3학년 2반", "삼 학년 이 반"),
    # Bare numbers, decimals, large numbers, money.
    ("3.5", "삼 점 오"),
    ("3.14", "삼 점 일사"),
    ("0.05", "영 점 영오"),
    ("0", "영"),
    ("100", "백"),
    ("10,000", "만"),
    ("10000", "만"),
    ("1,000원", "천 원"),
    ("12,000원", "만 이천 원"),
    ("1,234,567원", "백이십삼만 사천오백육십칠 원"),
    ("1억 2천만 원", "일억 이천만 원"),
    ("3만5천 원", "삼만오천 원"),
    ("100만 원", "백만 원"),
    ("1.5억", "일 점 오 억"),
    ("12345678901234원", "십이조 삼천사백오십육억 칠천팔백구십만 천이백삼십사 원"),
    ("$100", "백 달러"),
    ("₩5,000", "오천 원"),
    ("1.5시간", "일 점 오 시간"),  # a decimal before a native counter: Sino
    ("1.5배", "일 점 오 배"),
    # Percent, temperature, negative numbers.
    ("50%", "오십 퍼센트"),
    ("3.5%", "삼 점 오 퍼센트"),
    ("0.5%p", "영 점 오 퍼센트포인트"),
    ("-2.5%", "마이너스 이 점 오 퍼센트"),
    ("-3도", "영하 삼 도"),  # below zero: 영하 for temperatures, 마이너스 otherwise
    ("영하 -3도", "영하 삼 도"),
    ("25℃", "이십오 도"),
    ("-5℃", "영하 오 도"),
    ("77°F", "화씨 칠십칠 도"),
    # Months and dates.
    ("6월", "유월"),
    ("10월", "시월"),
    ("11월", "십일월"),
    ("2026-11-27", DATE),
    ("2026.11.27", DATE),
    ("2026년 11월 27일", DATE),
    ("2026. 11. 27.", DATE + "."),
    ("2026년 6월 10일", "이천이십육 년 유월 십 일"),
    ("1990년대", "천구백구십 년대"),
    # Times: the 24-hour clock as written.
    ("14:30", "열네 시 삼십 분"),
    ("09:05", "아홉 시 오 분"),
    ("12:00", "열두 시"),
    ("00:30", "영 시 삼십 분"),
    ("23:59:59", "스물세 시 오십구 분 오십구 초"),
    ("3시간 15분 20초", "세 시간 십오 분 이십 초"),
    ("오후 2시 반", "오후 두 시 반"),
    # Ranges: a native counter is said on both sides.
    ("3~5개", "세 개에서 다섯 개"),
    ("3-4명", "세 명에서 네 명"),
    ("3~5일", "삼에서 오 일"),
    ("5~10%", "오에서 십 퍼센트"),
    ("1~2만 원", "만에서 이만 원"),
    ("1~3월", "일월에서 삼월"),
    ("2020-2025년", "이천이십에서 이천이십오 년"),
    ("9:00~18:00", "아홉 시에서 열여덟 시"),
    # Phone numbers and codes: digit by digit, 0 as 공.
    ("010-1234-5678", "공일공 일이삼사 오육칠팔"),
    ("02-123-4567", "공이 일이삼 사오육칠"),
    ("1588-1234", "일오팔팔 일이삼사"),
    ("휴대폰 010 1234 5678", "휴대폰 공일공 일이삼사 오육칠팔"),
    ("인증번호는 482913입니다.", "인증번호는 사팔이구일삼입니다."),
    ("계좌 110-123-456789로 보내 주세요.", "계좌 일일공 일이삼 사오육칠팔구로 보내 주세요."),
    ("우편번호 06236", "우편번호 공육이삼육"),
    ("007", "공공칠"),
    # Letters, acronyms and units.
    ("AI 스피커", "에이아이 스피커"),
    ("KTX를 타고", "케이티엑스를 타고"),
    ("USB와 GPU", "유에스비와 지피유"),
    ("MZ세대", "엠제트세대"),
    ("Q&A", "큐앤에이"),
    ("NASA", "나사"),
    ("iPhone 15", "아이폰 십오"),
    ("5G 네트워크", "파이브지 네트워크"),
    ("x축", "엑스축"),
    ("GPT-4", "지피티 사"),  # digits after letters: Sino (지피티 포 is also heard)
    ("5km", "오 킬로미터"),
    ("5kg, 30cm, 10mm, 100m, 500g", "오 킬로그램, 삼십 센티미터, 십 밀리미터, 백 미터, 오백 그램"),
    ("2L, 500ml", "이 리터, 오백 밀리리터"),
    ("64GB, 512MB", "육십사 기가바이트, 오백십이 메가바이트"),
    ("3kWh", "삼 킬로와트시"),
    ("100km/h", "시속 백 킬로미터"),
    ("시속 100km/h로", "시속 백 킬로미터로"),
    ("84m²", "팔십사 제곱미터"),
    # What should not be read.
    ("**굵게** 말하기", "굵게 말하기"),
    ("# 제목", "제목"),
    ("- 첫째\n- 둘째", "첫째\n둘째"),
    ("1. 사과\n2. 배", "사과\n배"),
    ("`pip` 명령", "pip 명령"),
    ("[공식 사이트](https://example.com)를 보세요", "공식 사이트를 보세요"),
    ("좋아요 😀👍", "좋아요"),
    ("정답은 ✅ 입니다", "정답은 입니다"),
    ("```python\nprint(1)\n```\n끝", "끝"),
    ("자세히는 https://example.com/a?b=1 참고", "자세히는 참고"),
    ("> 인용", "인용"),
    ("help@example.com으로 문의", "help 골뱅이 example 점 com으로 문의"),  # e-mail is read
    # Numbers inside Korean words, mixed edge cases.
    ("제2외국어", "제이외국어"),
    ("시즌2", "시즌이"),
    ("3:2로 이겼다", "삼 대 이로 이겼다"),
    ("1/2컵", "이 분의 일 컵"),
    ("ＡＢＣ １２３", "에이비씨 백이십삼"),
    (
        "내일 오후 3시에 2,500원짜리 커피 2잔을 사요.",
        "내일 오후 세 시에 이천오백 원짜리 커피 두 잔을 사요.",
    ),
    # No numbers: unchanged.
    ("안녕하세요. 오늘 날씨가 좋네요!", "안녕하세요. 오늘 날씨가 좋네요!"),
    ("서울은 한국의 수도예요.", "서울은 한국의 수도예요."),
    ("ㅋㅋ 재밌다", "ㅋㅋ 재밌다"),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_spoken(text, expected):
    assert spoken(text) == expected


@pytest.mark.parametrize("text", [text for text, _ in CASES])
def test_spoken_is_idempotent(text):
    once = spoken(text)
    assert spoken(once) == once


def test_enough_cases_and_no_digits_left():
    assert len(CASES) >= 80
    assert not [out for _, out in CASES if any(ch.isdigit() for ch in out)]


def test_output_is_nfc_even_for_decomposed_input():
    decomposed = unicodedata.normalize("NFD", "사과 3개")
    result = spoken(decomposed)
    assert result == "사과 세 개"
    assert unicodedata.is_normalized("NFC", result)


def test_public_name_in_textnorm():
    assert textnorm.spoken is spoken


def test_textnorm_and_spoken_import_alone_in_either_order():
    for first, second in [("voiceqna.textnorm", "voiceqna.spoken"), ("voiceqna.spoken", "voiceqna.textnorm")]:
        code = f"import {first}, {second}; from voiceqna.textnorm import spoken; assert spoken('3개') == '세 개'"
        subprocess.run([sys.executable, "-c", code], check=True)


def test_random_text_never_raises_and_reads_the_same_twice():
    import random

    pieces = list("0123456789" * 3 + ",.-~:/%+$₩℃° \n#*`_[]()@&|>") + [
        "개", "시", "월", "일", "년", "번째", "만", "억", "km", "GB", "AI", "x", "제", "영하", "사과",
        "😀", "https://a.b/c", "a@b.co", "010-", "대", "시간", "Q&A", "**", "- ", "1. ", "시속 ",
    ]
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        once = spoken(text)
        assert spoken(once) == once, text
