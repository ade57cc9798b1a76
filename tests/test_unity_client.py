"""The Unity client of docs/rest-api.md (clients/unity): it compiles (Mono, against a stub of UnityEngine's
API), and its stream reading — SSE parsing and WAV decoding, plain C# — runs against the real
server with the response cut into small odd-sized chunks, as a phone's network delivers it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests

from voiceqna.config import PROJECT_ROOT

UNITY = PROJECT_ROOT / "clients" / "unity"
HARNESS = PROJECT_ROOT / "tests" / "unity"


def mono(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: `make test` installs it (mono-mcs in packages-dev.txt)")
    return path


def compile_cs(output, *sources, references=()) -> None:
    target = "exe" if str(output).endswith(".exe") else "library"
    run = subprocess.run([mono("mcs"), "-nologo", "-warnaserror", f"-target:{target}", f"-out:{output}",
                          *[f"-r:{r}" for r in references], *map(str, sources)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    exe = tmp_path_factory.mktemp("unity") / "harness.exe"
    compile_cs(exe, HARNESS / "Harness.cs", UNITY / "VoiceChatSse.cs", references=["System.Net.Http.dll"])
    return exe


def run_harness(harness, url: str, body: dict, chunk: int) -> list[str]:
    run = subprocess.run([mono("mono"), str(harness), url, json.dumps(body, ensure_ascii=False), str(chunk)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_the_unity_component_compiles_against_unitys_api(tmp_path):
    compile_cs(tmp_path / "client.dll", HARNESS / "UnityStubs.cs", UNITY / "VoiceChatSse.cs",
               UNITY / "VoiceChatStream.cs")


@pytest.mark.parametrize("chunk", [7, 4096])
def test_the_unity_stream_reader_gets_every_sentence_and_its_audio(api_url, harness, chunk):
    cid = requests.post(f"{api_url}/create", json={}, timeout=10).json()["id"]
    lines = run_harness(harness, f"{api_url}/send/text/{cid}/stream",
                        {"message": "김치는 어떻게 만들어요?", "role": "user"}, chunk)
    assert lines[0] == "status 200" and lines[1] == "transcript 김치는 어떻게 만들어요?"
    sentences = [line for line in lines if line.startswith("sentence ")]
    audios = [line.split() for line in lines if line.startswith("audio ")]
    assert sentences and len(audios) == len(sentences)
    assert all(int(samples) > int(rate) // 2 for _, _, samples, rate in audios)  # each over half a second
    answer = requests.get(f"{api_url}/{cid}", timeout=10).json()[1]["message"]
    assert lines[-1] == f"done {answer}"
    assert " ".join(s.split(" ", 2)[2] for s in sentences).replace(" ", "") == answer.replace(" ", "")


def test_the_unity_stream_reader_sees_an_error_before_the_stream(api_url, harness):
    lines = run_harness(harness, f"{api_url}/send/text/0123456789abcdef01234567/stream", {"message": "안녕"}, 64)
    assert lines == ["status 404"]  # a JSON error body, no events
