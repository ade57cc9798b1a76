"""Does reading numbers the Korean way help? espeak-ng speaks each sentence raw and through
`spoken()`; the app's recognizer transcribes both; CER against the Hangul reading.

    python benchmarks/spoken_tts.py                      # writes benchmarks/results/spoken-tts.json
    python benchmarks/spoken_tts.py --quick              # the first 4 sentences: spoken-tts-quick.json

The reference for both transcripts is `spoken(text)`, the words a listener should hear.
`*_normalised` also passes the transcript through `spoken()` (Whisper often writes digits:
"3시" for 세 시), so what was heard is compared, not how it was written. `recovered` counts
reference characters the transcript got right (length - substitutions - deletions), which
Whisper's repetition loops ("4,4,4,4…", pure insertions) cannot swamp the way they swamp CER.
Each sentence is spoken at espeak-ng's default rate and at 130 words a minute (the rate
the speech benchmarks use): two runs, twice the evidence.
espeak-ng's Korean is robotic and barely intelligible to Whisper base: absolute CERs are high
and runs vary (temperature fallback samples); compare before with after.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import common
from voiceqna.audio import decode
from voiceqna.compose import build_recognizer
from voiceqna.config import Settings
from voiceqna.textnorm import spoken

PROJECT_ROOT = Path(__file__).resolve().parents[1]

try:  # the metrics may move into voiceqna.evaluation
    from voiceqna.evaluation.metrics import ErrorCounts, char_errors
except ImportError:
    from voiceqna.metrics import ErrorCounts, char_errors

logger = logging.getLogger("spoken_tts")

SCRIPT = "spoken_tts"
"""benchmarks/spoken_tts.py: the results header's `benchmark`."""
NAME = "spoken-tts"
"""The results file: benchmarks/results/spoken-tts.json."""
ESPEAK = "espeak-ng -v ko [-s SPEED] -w out.wav --stdin"

SENTENCES = [
    "회의는 2026년 11월 27일 오후 3시에 시작합니다.",
    "서울역에서 부산역까지 KTX로 2시간 30분 걸려요.",
    "이 커피는 한 잔에 4,500원입니다.",
    "내일 최저 기온은 -3도, 최고 기온은 12℃예요.",
    "고객센터 전화번호는 1588-1234입니다.",
    "제 휴대폰 번호는 010-1234-5678이에요.",
    "사과 3개와 배 2개를 샀어요.",
    "올해 경제 성장률은 2.5%로 예상됩니다.",
    "우리 아이는 올해 7살이 되었어요.",
    "마라톤 코스는 42.195km입니다.",
    "AI와 GPU 시장이 빠르게 커지고 있어요.",
    "영업시간은 09:00부터 18:00까지입니다.",
    "학생 25명이 3층 교실에 모였어요.",
    "이 노트북은 16GB 메모리와 512GB 저장 공간을 갖췄어요.",
    "서울의 인구는 약 940만 명입니다.",
    "약은 하루 3번, 식후 30분에 드세요.",
    "인증번호 482913을 입력해 주세요.",
    "USB 케이블은 2번째 서랍에 있어요.",
    "1990년대에 태어난 사람들이 30대가 되었어요.",
    "이번 달 전기 사용량은 350kWh, 요금은 52,000원이에요.",
    "버스는 10~15분 간격으로 와요.",
    "고양이 2마리와 강아지 1마리를 키워요.",
    "회의실은 5층 501호입니다.",
    "고속도로에서는 100km/h까지 달릴 수 있어요.",
    "6월 10일에 1억 2천만 원을 보냈어요.",
    "**중요:** 3일 안에 서류 2장을 내세요.",
]


SPEEDS = (None, 130)
"""espeak-ng words per minute: None is its default (175)."""


def speak(text: str, workdir: Path, name: str, speed: int | None) -> bytes:
    path = workdir / f"{name}.wav"
    rate = [] if speed is None else ["-s", str(speed)]
    subprocess.run(["espeak-ng", "-v", "ko", *rate, "-w", str(path), "--stdin"],
                   input=text.encode(), check=True, capture_output=True)
    return path.read_bytes()


def recovered(counts: ErrorCounts) -> int:
    return counts.reference_length - counts.substitutions - counts.deletions


def counts_dict(counts: ErrorCounts) -> dict:
    return {"cer": round(counts.rate, 4), "errors": counts.errors, "insertions": counts.insertions,
            "recovered_chars": recovered(counts), "reference_chars": counts.reference_length}


def run(recognizer, speed: int | None, workdir: Path, sentences: list[str]) -> dict:
    """Every sentence spoken raw and through spoken() at one espeak-ng rate, transcribed."""
    keys = ("raw", "spoken", "raw_normalised", "spoken_normalised")
    totals = {key: ErrorCounts() for key in keys}
    rows = []
    for i, text in enumerate(sentences):
        reference = spoken(text)
        row = {"text": text, "reference": reference}
        for key, said in (("raw", text), ("spoken", reference)):
            transcript = recognizer.transcribe(decode(speak(said, workdir, f"{i}-{key}", speed))).text
            plain, normalised = char_errors(reference, transcript), char_errors(reference, spoken(transcript))
            totals[key] += plain
            totals[f"{key}_normalised"] += normalised
            row[f"transcript_{key}"] = transcript
            row[f"cer_{key}"] = round(plain.rate, 4)
            row[f"cer_{key}_normalised"] = round(normalised.rate, 4)
            row[f"recovered_{key}"] = recovered(plain)
        logger.info("%s %2d  CER %.2f → %.2f  %s", speed or "default", i, row["cer_raw"], row["cer_spoken"], text)
        rows.append(row)
    better = sum(r["cer_spoken_normalised"] < r["cer_raw_normalised"] for r in rows)
    worse = sum(r["cer_spoken_normalised"] > r["cer_raw_normalised"] for r in rows)
    corpus = {
        "before_raw_text": counts_dict(totals["raw"]),
        "after_spoken_text": counts_dict(totals["spoken"]),
        "before_raw_text_transcript_normalised": counts_dict(totals["raw_normalised"]),
        "after_spoken_text_transcript_normalised": counts_dict(totals["spoken_normalised"]),
        "sentences_better_worse_same_normalised": [better, worse, len(rows) - better - worse],
    }
    return {"espeak_speed": speed or "default (175)", "corpus": corpus, "sentences": rows}


def markdown(head: dict, result: dict) -> str:
    """The printed summary: per espeak-ng rate, raw text against spoken() text."""
    rows = []
    for one in result["runs"]:
        corpus = one["corpus"]
        for label, key in (("raw", "before_raw_text"), ("spoken()", "after_spoken_text")):
            plain, normalised = corpus[key], corpus[f"{key}_transcript_normalised"]
            rows.append([one["espeak_speed"], label, f"{plain['cer']:.3f}", f"{normalised['cer']:.3f}",
                         f"{plain['recovered_chars']} of {plain['reference_chars']}"])
    lines = [f"espeak-ng speaking {result['sentences']} sentences raw and through spoken(), heard by "
             f"{result['recognizer']}. {common.header_line(head)}", "",
             common.table(["espeak-ng rate", "text spoken", "CER", "CER, transcript through spoken()",
                           "chars recovered"], rows), ""]
    for one in result["runs"]:
        better, worse, same = one["corpus"]["sentences_better_worse_same_normalised"]
        lines.append(f"- {one['espeak_speed']}: spoken() better for {better} sentences, worse for {worse}, "
                     f"same for {same} (transcripts through spoken()).")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "the first 4 sentences", NAME)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(SCRIPT, parse_args, argv)
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is missing: apt-get install espeak-ng")
    sentences = SENTENCES[:4] if args.quick else SENTENCES
    recognizer = build_recognizer(Settings.from_env())
    result = {"espeak": ESPEAK, "recognizer": recognizer.description, "sentences": len(sentences)}
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / "spoken-tts"
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    result["runs"] = [run(recognizer, speed, workdir, sentences) for speed in SPEEDS]
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(head, result)
    common.finish(NAME, args, head, {**result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
