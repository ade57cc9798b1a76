"""How well hands-free finds turns (voiceqna.endpointing) in streams made of the real Korean
recordings (../shared/data/korean-read-speech), fed in the chunk sizes a browser sends.

    python benchmarks/endpointing.py            # writes benchmarks/results/endpointing.json (~3 min)
    python benchmarks/endpointing.py --no-asr   # without the transcription check (~1 min)
    python benchmarks/endpointing.py --quick    # the first 3 clips: endpointing-quick.json

The streams (voiceqna.evaluation.streams): each clip trimmed to its speech (Silero offline at
0.35 on the clean clip; for 25 of the 30 clips that end is the file's end), with the room's own
background noise (noise shaped like the clip's quietest frames) before, between and after.
Condition "room" has that background at its recorded level; "noisy" adds it again over the
whole stream, speech included, 15 dB below the level of the speech.

- delay: end of speech → turn reported, for one clip followed by 3 s of room noise. Reported =
  the end of the chunk in which the endpointer ends the turn (a browser sends a chunk when it is
  full) plus the time `feed` took on it. Per chunk size and per HANDSFREE_SILENCE_S.
  `split_clips`: clips the endpointer cut into more than one turn (their own pauses are long).
- cuts: pairs of clips with no pause of 0.5 s or more inside (Silero offline), each pair in both
  orders, joined by 0.3 s of room noise (must be one turn holding both) and by 2 s (must be two
  turns, one per clip).
- noise_only: streams with no speech (room noise, louder room noise, white noise, digital
  silence) must give no turn.
- cpu: CPU seconds `feed` spends per second of audio, per chunk size.
- transcripts: the clip as recorded against what the endpointer cut out of the room stream,
  both through the app's recognizer (`voiceqna.compose.build_recognizer(settings)`), CER.
- barge_in: a first turn sets the speaker's level; then the answer plays with barge-in on: a
  synthetic answer (espeak-ng) as echo at a level relative to that voice, and 2 s later another
  recording over it. False = the echo alone interrupted; delay = speech start → barge-in reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks import common
from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.config import HandsFreeOptions, Settings
from voiceqna.endpointing import Endpointer, TurnEnded
from voiceqna.evaluation import clips as clip_files
from voiceqna.evaluation import streams
from voiceqna.evaluation.metrics import ErrorCounts, char_errors

PROJECT_ROOT = Path(__file__).resolve().parents[1]

logger = logging.getLogger("endpointing")

NAME = "endpointing"

CHUNKS_MS = (20, 100, 160, 250, 500)
"""Chunk sizes fed: 100–250 ms is what a browser streaming the microphone sends."""
BROWSER_CHUNK_MS = 160
SILENCES_S = (0.5, 0.6, 0.7, 0.8)
NOISY_SNR_DB = 15.0
"""Condition "noisy": the room's background added over everything, this many dB below the speech."""
ECHO_LEVELS_DB = (-6, -10, -15, -20, -30)


def feed(endpointer: Endpointer, audio: np.ndarray, chunk_ms: int) -> tuple[list[tuple[float, TurnEnded]], float]:
    """Feed `audio` in chunks; each turn with the time it was reported (chunk end + time in feed),
    and the CPU seconds spent in `feed`."""
    size = chunk_ms * SAMPLE_RATE // 1000
    turns, cpu = [], 0.0
    for begin in range(0, audio.size, size):
        chunk = audio[begin: begin + size]
        wall, started = time.perf_counter(), time.process_time()
        events = endpointer.feed(chunk)
        cpu += time.process_time() - started
        reported = (begin + chunk.size) / SAMPLE_RATE + time.perf_counter() - wall
        turns += [(reported, e) for e in events if isinstance(e, TurnEnded)]
    turns += [(audio.size / SAMPLE_RATE, e) for e in endpointer.flush()]
    return turns, cpu


def options(silence_s: float) -> HandsFreeOptions:
    return dataclasses.replace(Settings.from_env().handsfree, silence_s=silence_s)


def overlaps(turn: TurnEnded, span: tuple[float, float]) -> bool:
    return turn.start_s < span[1] and turn.end_s > span[0]


def coverage(turns: list[TurnEnded], span: tuple[float, float]) -> float:
    """The share of the speech span inside the audio of the turns."""
    covered = sum(max(0.0, min(span[1], t.audio_start_s + t.seconds) - max(span[0], t.audio_start_s)) for t in turns)
    return covered / (span[1] - span[0])


def one_clip_streams(recordings: list[streams.Recording], condition: str) -> list[streams.Stream]:
    snr = None if condition == "room" else NOISY_SNR_DB
    return [streams.join([r], [], lead_s=1.0, tail_s=3.0, seed=i, snr_db=snr) for i, r in enumerate(recordings)]


def delay(recordings: list[streams.Recording], names: list[str], condition: str) -> dict:
    prepared = one_clip_streams(recordings, condition)
    result = {}
    for silence in SILENCES_S:
        per_chunk = {}
        for chunk_ms in CHUNKS_MS:
            delays, shares, split, missed, partly, audio_s, cpu = [], [], [], [], {}, 0.0, 0.0
            for name, stream in zip(names, prepared):
                turns, spent = feed(Endpointer(options(silence)), stream.audio, chunk_ms)
                cpu, audio_s = cpu + spent, audio_s + stream.seconds
                mine = [(t, e) for t, e in turns if overlaps(e, stream.speech[0])]
                share = coverage([e for _, e in mine], stream.speech[0])
                shares.append(share)
                if share < 0.95:
                    partly[name] = round(share, 3)
                if not mine:
                    missed.append(name)
                    continue
                if len(mine) > 1:
                    split.append(name)
                delays.append(mine[-1][0] - stream.speech[0][1])
            per_chunk[f"{chunk_ms}ms"] = {
                "end_of_speech_to_turn_s": common.spread(delays), "split_clips": split, "missed_clips": missed,
                "speech_in_turns": common.spread(shares), "clips_under_95pct_of_speech_in_turns": partly,
                "cpu_s_per_audio_s": round(cpu / audio_s, 5)}
        result[f"silence_{silence}s"] = per_chunk
        row = per_chunk[f"{BROWSER_CHUNK_MS}ms"]
        logger.info("delay %s, silence %.1f s, %d ms chunks: %s; %d clips split, %d under 95 %% of speech kept",
                    condition, silence, BROWSER_CHUNK_MS, row["end_of_speech_to_turn_s"], len(row["split_clips"]),
                    len(row["clips_under_95pct_of_speech_in_turns"]))
    return result


def pairs(recordings: list[np.ndarray]) -> list[tuple[int, int]]:
    """Consecutive pairs (cyclic) of the clips with no pause of 0.5 s or more, in both orders."""
    single = [i for i, r in enumerate(recordings) if streams.longest_pause_s(r) < 0.5]
    logger.info("%d of %d clips have no pause of 0.5 s or more", len(single), len(recordings))
    ordered = [(single[k], single[(k + 1) % len(single)]) for k in range(len(single))]
    return ordered + [(b, a) for a, b in ordered]


def right_cut(turns: list[TurnEnded], speech: list[tuple[float, float]], pause: float) -> bool:
    """0.3 s apart: one turn with both clips' speech; 2 s apart: two turns, one per clip."""
    if pause < 1:
        return len(turns) == 1 and all(overlaps(turns[0], s) for s in speech)
    return len(turns) == 2 and all(overlaps(t, s) and not overlaps(t, other)
                                   for t, s, other in zip(turns, speech, speech[::-1]))


def cuts(recordings: list[streams.Recording], names: list[str], cases: list[tuple[int, int]], condition: str) -> dict:
    result = {"cases_per_pause": len(cases)}
    snr = None if condition == "room" else NOISY_SNR_DB
    for silence in SILENCES_S:
        wrong = {"0.3s": [], "2.0s": []}
        for n, (a, b) in enumerate(cases):
            for pause in (0.3, 2.0):
                stream = streams.join([recordings[a], recordings[b]], [pause], seed=n, snr_db=snr)
                turns = [e for _, e in feed(Endpointer(options(silence)), stream.audio, BROWSER_CHUNK_MS)[0]]
                if not right_cut(turns, stream.speech, pause):
                    wrong[f"{pause}s"].append({
                        "clips": [names[a], names[b]], "speech": [[round(x, 2) for x in s] for s in stream.speech],
                        "turns": [[round(t.start_s, 2), round(t.end_s, 2)] for t in turns]})
        result[f"silence_{silence}s"] = {"wrong_cuts_0.3s_pause_one_turn": len(wrong["0.3s"]),
                                         "wrong_cuts_2s_apart_two_turns": len(wrong["2.0s"]), "wrong": wrong}
        logger.info("cuts %s, silence %.1f s: wrong %d (0.3 s) + %d (2 s) of %d + %d", condition, silence,
                    len(wrong["0.3s"]), len(wrong["2.0s"]), len(cases), len(cases))
    return result


def noise_only(recordings: list[streams.Recording]) -> dict:
    rng = np.random.default_rng(7)
    cases = {
        "room_noise_10s": [r.room_tone(10, i) for i, r in enumerate(recordings)],
        "room_noise_20dB_louder_10s": [r.room_tone(10, i, gain_db=20) for i, r in enumerate(recordings)],
        "white_noise_-60_-40_-30_-20dBFS_10s": [(rng.standard_normal(10 * SAMPLE_RATE) * 10 ** (db / 20)).astype(np.float32)
                                                 for db in (-60, -40, -30, -20)],
        "digital_silence_10s": [np.zeros(10 * SAMPLE_RATE, dtype=np.float32)],
    }
    result = {}
    for name, audios in cases.items():
        turns = sum(len(feed(Endpointer(Settings.from_env().handsfree), a, BROWSER_CHUNK_MS)[0]) for a in audios)
        result[name] = {"streams": len(audios), "turns": turns}
    logger.info("noise only: %s", result)
    return result


def transcripts(recordings: list[streams.Recording], originals: list[np.ndarray], clips: list) -> dict:
    from voiceqna.compose import build_recognizer

    settings = Settings.from_env()
    recognizer = build_recognizer(settings)
    recognizer.warm_up()
    total_original, total_cut, rows = ErrorCounts(), ErrorCounts(), []
    for i, (stream, audio, clip) in enumerate(zip(one_clip_streams(recordings, "room"), originals, clips)):
        turns = [e for _, e in feed(Endpointer(settings.handsfree), stream.audio, BROWSER_CHUNK_MS)[0]]
        original = recognizer.transcribe(audio).text
        cut = " ".join(recognizer.transcribe(t.audio).text for t in turns).strip()
        a, b = char_errors(clip.text, original), char_errors(clip.text, cut)
        total_original, total_cut = total_original + a, total_cut + b
        rows.append({"clip": clip.path.name, "turns": len(turns), "original": original, "cut": cut,
                     "cer_original": round(a.rate, 4), "cer_cut": round(b.rate, 4),
                     "cer_cut_vs_original_transcript": round(char_errors(original, cut).rate, 4)})
        logger.info("%2d CER %.3f → %.3f  %d turn(s)  %s", i, a.rate, b.rate, len(turns), clip.path.name)
    return {"recognizer": recognizer.description, "clips": len(rows),
            "corpus_cer_original": round(total_original.rate, 4), "corpus_cer_cut": round(total_cut.rate, 4),
            "clips_worse_same_better": [sum(r["cer_cut"] > r["cer_original"] for r in rows),
                                        sum(r["cer_cut"] == r["cer_original"] for r in rows),
                                        sum(r["cer_cut"] < r["cer_original"] for r in rows)],
            "per_clip": rows}


def barge_in(recordings: list[streams.Recording]) -> dict:
    if shutil.which("espeak-ng") is None:
        logger.warning("espeak-ng is missing: no barge-in figures (apt-get install espeak-ng)")
        return {"skipped": "espeak-ng is missing"}
    knowledge = json.loads((PROJECT_ROOT / "voiceqna/engines/knowledge_ko.json").read_text(encoding="utf-8"))
    echoes = [decode(clip_files.espeak(item["answer"])) for item in knowledge[: len(recordings)]]
    settings = Settings.from_env().handsfree
    chunk = BROWSER_CHUNK_MS * SAMPLE_RATE // 1000
    result = {"options": {"barge_in_threshold": settings.barge_in_threshold,
                          "barge_in_min_speech_s": settings.barge_in_min_speech_s,
                          "barge_in_margin_db": settings.barge_in_margin_db}}
    for relative in ECHO_LEVELS_DB:
        false, missed, delays = 0, 0, []
        for k, first in enumerate(recordings):
            endpointer = Endpointer(settings)
            endpointer.feed(streams.join([first], [], 0.5, 1.0, seed=k).audio)
            endpointer.flush()
            endpointer.start_playback(barge_in=True)
            echo = echoes[k % len(echoes)]
            echo = echo * 10 ** ((endpointer.voice_db + relative - streams.level_db(echo)) / 20)
            user = recordings[(k + 1) % len(recordings)]  # the next clip: often another speaker's level
            lead = 2 * SAMPLE_RATE  # where the user's speech starts
            audio = np.zeros(max(echo.size, lead + user.speech.size) + SAMPLE_RATE, dtype=np.float32)
            audio[: echo.size] += echo
            audio[lead - user.onset: lead - user.onset + user.audio.size] += user.audio
            audio += first.room_tone(audio.size / SAMPLE_RATE, k)
            found = None
            for start in range(0, audio.size, chunk):
                if any(getattr(e, "barge_in", False) for e in endpointer.feed(audio[start: start + chunk])):
                    found = (start + chunk - lead) / SAMPLE_RATE
                    break
            if found is None:
                missed += 1
            elif found < 0:
                false += 1
            else:
                delays.append(found)
        result[f"echo_{relative}dB"] = {"trials": len(recordings), "false_barge_in": false, "missed": missed,
                                        "speech_start_to_barge_in_s": common.spread(delays)}
        logger.info("barge-in, echo %d dB: %s", relative, result[f"echo_{relative}dB"])
    return result


def markdown(head: dict, result: dict) -> str:
    """The printed summary: delays and cuts per silence, noise only, barge-in, transcripts."""
    chunk = f"{result['browser_chunk_ms']}ms"
    delays, cut_rows = [], []
    for condition in ("room", "noisy"):
        for silence, per_chunk in result[f"delay_{condition}"].items():
            row = per_chunk[chunk]
            d = row["end_of_speech_to_turn_s"]
            delays.append([condition, silence.removeprefix("silence_"), d["n"], common.fmt(d.get("p50"), 3),
                           common.fmt(d.get("p95"), 3), common.fmt(d.get("max"), 3), len(row["split_clips"]),
                           len(row["missed_clips"]), len(row["clips_under_95pct_of_speech_in_turns"]),
                           f"{row['cpu_s_per_audio_s']:.5f}"])
        cuts = result[f"cuts_{condition}"]
        for silence, row in cuts.items():
            if silence.startswith("silence_"):
                cut_rows.append([condition, silence.removeprefix("silence_"),
                                 f"{row['wrong_cuts_0.3s_pause_one_turn']} of {cuts['cases_per_pause']}",
                                 f"{row['wrong_cuts_2s_apart_two_turns']} of {cuts['cases_per_pause']}"])
    lines = [f"Hands-free endpointing, {result['clips']} real clips, {result['browser_chunk_ms']} ms chunks, "
             f"noisy = room noise {result['noisy_snr_db']:g} dB below the speech. {common.header_line(head)}", "",
             common.table(["condition", "silence", "clips", "delay p50 s", "p95 s", "max s", "split", "missed",
                           "under 95 % of speech", "CPU s per audio s"], delays), "",
             common.table(["condition", "silence", "wrong: 0.3 s pause, one turn", "wrong: 2 s apart, two turns"],
                          cut_rows), "",
             common.table(["noise only", "streams", "turns"],
                          [[name, r["streams"], r["turns"]] for name, r in result["noise_only"].items()]), ""]
    barge = result["barge_in"]
    if "skipped" in barge:
        lines += [f"Barge-in: skipped ({barge['skipped']}).", ""]
    else:
        rows = []
        for name, r in barge.items():
            if name.startswith("echo_"):
                d = r["speech_start_to_barge_in_s"]
                rows.append([name.removeprefix("echo_"), r["trials"], r["false_barge_in"], r["missed"],
                             common.fmt(d.get("p50"), 3), common.fmt(d.get("p95"), 3)])
        lines += [common.table(["echo", "trials", "false barge-in", "missed", "delay p50 s", "p95 s"], rows), ""]
    if "transcripts" in result:
        t = result["transcripts"]
        worse, same, better = t["clips_worse_same_better"]
        lines.append(f"Transcripts ({t['recognizer']}, {t['clips']} clips): corpus CER {t['corpus_cer_original']:.4f} "
                     f"as recorded, {t['corpus_cer_cut']:.4f} as cut by the endpointer; clips worse {worse}, "
                     f"same {same}, better {better}.")
    else:
        lines.append("Transcripts: not checked (--no-asr).")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "the first 3 clips", NAME)
    parser.add_argument("--no-asr", action="store_true", help="skip the transcription check")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, head = common.start(NAME, parse_args, argv)

    clips = clip_files.read_speech()[: 3 if args.quick else None]
    originals = [decode(c.path.read_bytes()) for c in clips]
    recordings = [streams.Recording.of(a) for a in originals]
    names = [c.path.name for c in clips]
    defaults = Settings.from_env().handsfree
    result = {"clips": len(clips), "options": dataclasses.asdict(defaults), "browser_chunk_ms": BROWSER_CHUNK_MS,
              "noisy_snr_db": NOISY_SNR_DB}
    started = time.perf_counter()
    cases = pairs(originals)
    result["pair_clips"] = sorted({names[i] for pair in cases for i in pair})
    for condition in ("room", "noisy"):
        result[f"delay_{condition}"] = delay(recordings, names, condition)
        result[f"cuts_{condition}"] = cuts(recordings, names, cases, condition)
    result["noise_only"] = noise_only(recordings)
    result["barge_in"] = barge_in(recordings)
    if not args.no_asr:
        result["transcripts"] = transcripts(recordings, originals, clips)
        logger.info("CER original %.4f, cut %.4f", result["transcripts"]["corpus_cer_original"],
                    result["transcripts"]["corpus_cer_cut"])
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(head, result)
    common.finish(NAME, args, head, {**result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
