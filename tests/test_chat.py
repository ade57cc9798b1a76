import json
from datetime import datetime

import pytest

from tests.fake_openai import FakeOpenAI
from voiceqna.engines.chat_offline import FALLBACK_ANSWER, OfflineChatEngine
from voiceqna.engines.chat_openai import OpenAIChatEngine
from voiceqna.engines.chat_prompt import SYSTEM_PROMPT
from voiceqna.ports import TextMessage
from voiceqna.config import Settings
from voiceqna.errors import EngineUnavailable
from voiceqna.engines.chat_knowledge import KnowledgeBase


def reply(engine, history, question: str) -> str:
    """The whole answer: what the service joins from the engine's pieces."""
    return "".join(engine.stream(history, question))


@pytest.fixture
def offline():
    return OfflineChatEngine(KnowledgeBase.load(Settings().knowledge_base))


@pytest.mark.parametrize(
    "question, expected",
    [
        ("한국의 수도는 어디야?", "서울"),
        ("한국에 수도가 어디에요", "서울"),  # recognizer-style spelling error
        ("한국의수도는어디야", "서울"),  # no spaces
        ("한 국 의 수 도 는 어 디 야", "서울"),  # a space between every syllable
        ("김치 어떻게 만들어요", "배추"),
        ("김치는 어떻게 만드러", "배추"),  # phonetic spelling
        ("훈민정음은 누가 만들었나요", "세종대왕"),
        ("혹시 지금 몇 시인지 알려 줄래", "지금은"),
        ("119 번호", "일일구"),
    ],
)
def test_offline_engine_answers_despite_typos_and_spacing(offline, question, expected):
    assert expected in reply(offline, [], question)


@pytest.mark.parametrize("question", ["양자역학의 원리를 설명해 주세요", "저 식당 음식이 정말 맛있나 봐요", "ㅋㅋㅋ"])
def test_offline_engine_falls_back_politely(offline, question):
    assert reply(offline, [], question) == FALLBACK_ANSWER


def test_time_answers_are_filled_in(offline):
    answer = reply(offline, [], "오늘 며칠이야")
    assert "{" not in answer and "년" in answer and "요일" in answer


def test_a_broken_knowledge_base_file_says_the_fix(tmp_path):
    path = tmp_path / "kb.json"
    path.write_text('[{"question": "x"}]')
    with pytest.raises(ValueError, match="questions"):
        KnowledgeBase.load(path)
    with pytest.raises(ValueError, match="KNOWLEDGE_BASE"):
        KnowledgeBase.load(tmp_path / "missing.json")


@pytest.fixture
def fake_openai():
    server = FakeOpenAI()
    yield server
    server.close()


def test_openai_engine_against_a_fake_server_sends_model_prompt_and_bounded_history(fake_openai):
    engine = OpenAIChatEngine(api_key="sk-test", model="my-model", base_url=fake_openai.base_url, history_messages=4)
    history = [TextMessage("user" if i % 2 == 0 else "assistant", f"메시지 {i}") for i in range(10)]
    assert reply(engine, history, "한국의 수도는?") == "서울이에요."
    (request,) = fake_openai.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "my-model"
    messages = request["messages"]
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert "한국어" in messages[0]["content"]
    assert [m["content"] for m in messages[1:-1]] == ["메시지 6", "메시지 7", "메시지 8", "메시지 9"]
    assert messages[-1] == {"role": "user", "content": "한국의 수도는?"}
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-test"


def test_openai_engine_errors_become_engine_unavailable(fake_openai):
    fake_openai.fail_with = 500
    engine = OpenAIChatEngine(api_key="sk-test", model="m", base_url=fake_openai.base_url)
    with pytest.raises(EngineUnavailable, match="OPENAI_BASE_URL"):
        reply(engine, [], "안녕")


def test_openai_engine_times_out(fake_openai):
    fake_openai.delay_s = 2.0
    engine = OpenAIChatEngine(api_key="sk-test", model="m", base_url=fake_openai.base_url, timeout_s=0.3)
    with pytest.raises(EngineUnavailable):
        reply(engine, [], "안녕")


def test_an_answer_with_literal_braces_is_answered_and_placeholders_still_filled(tmp_path):
    """A knowledge base written by a user may hold `{` in an answer (a set, a JSON snippet, an
    emoticon); the answer must come out as written, with only {time}, {date}, {weekday} filled."""
    kb = tmp_path / "kb.json"
    kb.write_text(json.dumps([
        {"questions": ["집합 기호 알려 줘"], "answer": "집합은 {1, 2, 3}처럼 써요. {오늘}은 {weekday}이에요."},
        {"questions": ["중괄호 하나"], "answer": "여는 괄호는 { 이고 닫는 괄호는 } 예요."},
    ], ensure_ascii=False), encoding="utf-8")
    engine = OfflineChatEngine(KnowledgeBase.load(kb))
    weekday = "월화수목금토일"[datetime.now().weekday()] + "요일"
    assert reply(engine, [], "집합 기호 알려 줘") == f"집합은 {{1, 2, 3}}처럼 써요. {{오늘}}은 {weekday}이에요."
    assert reply(engine, [], "중괄호 하나") == "여는 괄호는 { 이고 닫는 괄호는 } 예요."
