"""How well hands-free finds turns (voiceqna.endpointing) in streams made of the real Korean
recordings (../shared/data/korean-read-speech), fed in the chunk sizes a browser sends.

    python benchmarks/endpointing.py            # writes benchmarks/results/endpointing.json (~10 min)
    python benchmarks/endpointing.py --only-turn --out /tmp/eot.json   # the end-of-turn comparison alone
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
- end_of_turn (not with --no-asr): the Korean end-of-turn set (benchmarks/data/end_of_turn_ko.csv):
  each recording whole, and cut at each inner pause of 0.15 s or more with a 0.8 s thinking pause
  put there, fed 100 ms at a time to hands-free's decision (run_turns, the same steps as
  voiceqna/page/handsfree.py): a fixed 0.7 s pause; the words (voiceqna.turn_end) on the app's
  recognizer's transcript of the turn so far, known the measured recognition time after the
  pause reached HANDSFREE_SPECULATE_S (and, as a lower bound, at once); Smart Turn v3.2 alone and
  where the words are unsure, when its ONNX file is found (--smart-turn PATH, or an installed
  pipecat-ai). Reported: cuts ended early (a turn ended in the thinking pause), mid-sentence and
  between sentences; the wait after finished utterances (end of speech → turn reported), p50/p95.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import logging
import shutil
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks import common
from voiceqna import turn_end
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
    if "end_of_turn" in result:
        lines += [""] + end_of_turn_markdown(result["end_of_turn"])
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = common.arguments(__doc__, "the first 3 clips", NAME)
    parser.add_argument("--no-asr", action="store_true", help="skip the transcription check and the end-of-turn words")
    parser.add_argument("--only-turn", action="store_true", help="only the end-of-turn comparison")
    parser.add_argument("--smart-turn", type=Path, default=None,
                        help=f"Smart Turn's ONNX file ({SMART_TURN_FILE}; default: the one in an installed pipecat-ai)")
    parser.add_argument("--write-set", action="store_true", help=f"find the cuts again and write {TURN_SET.name}")
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
    if args.write_set:  # from every clip, even with --quick
        every = clip_files.read_speech()
        rows = write_turn_set(every, [decode(c.path.read_bytes()) for c in every])
        logger.info("%d rows written to %s", rows, TURN_SET)
    if not args.no_asr:
        result["end_of_turn"] = end_of_turn(clips, originals, find_smart_turn(args.smart_turn), args.quick)
    if args.only_turn:
        result["seconds"] = round(time.perf_counter() - started, 1)
        text = "\n".join([f"{common.header_line(head)}", ""] + end_of_turn_markdown(result["end_of_turn"]))
        common.finish(NAME, args, head, {**result, "markdown": text})
        return result
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



# --- end of turn: the words (voiceqna.turn_end) against a fixed pause ---------------------------

TURN_SET = PROJECT_ROOT / "benchmarks/data/end_of_turn_ko.csv"
"""The Korean end-of-turn set: each recording whole ("finished") and cut at each of its inner
pauses of MIN_CUT_PAUSE_S or more ("unfinished"), as seconds into the shared recordings. Column
`place`, labelled by hand from the reference sentences: "mid_sentence" where the sentence goes on
after the cut (사상 최악.. | 음.., 처음 가는데 | 어떤), "between_sentences" where one ended there
(그래요? | 어디로), "end" for the whole utterance. --write-set keeps the labels of the cuts it finds again."""
MIN_CUT_PAUSE_S = 0.15
THINKING_PAUSE_S = 0.8
"""The pause put at each cut: someone thinking in the middle of a sentence."""
TURN_CHUNK_MS = 100
"""What the page sends a request (assets/handsfree.js)."""
SMART_TURN_FILE = "smart-turn-v3.2-cpu.onnx"
SMART_TURN_SECONDS = 8


def write_turn_set(clips: list, originals: list[np.ndarray], path: Path = TURN_SET) -> int:
    """Find the cuts (Silero offline at HANDSFREE_THRESHOLD for the pauses, at the streams'
    SPAN_THRESHOLD for where the speech starts and ends) and write them; how many rows."""
    threshold = Settings.from_env().handsfree.threshold
    labels = {}
    if path.is_file():
        labels = {(r["file_name"], r["cut_s"]): r.get("place", "") for r in csv.DictReader(open(path, encoding="utf-8"))}
    rows = []
    for clip, audio in zip(clips, originals):
        whole = streams.speech_spans(audio)
        start, end = whole[0][0] / SAMPLE_RATE, whole[-1][1] / SAMPLE_RATE
        rows.append([clip.path.name, "finished", start, end, "", end])
        spans = streams.speech_spans(audio, threshold)
        for a, b in zip(spans, spans[1:]):
            if (b[0] - a[1]) / SAMPLE_RATE >= MIN_CUT_PAUSE_S and start < a[1] / SAMPLE_RATE < end:
                rows.append([clip.path.name, "unfinished", start, a[1] / SAMPLE_RATE, b[0] / SAMPLE_RATE, end])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "kind", "speech_start_s", "cut_s", "resume_s", "speech_end_s", "place"])
        for row in rows:
            row = [row[0], row[1]] + [f"{x:.3f}" if x != "" else "" for x in row[2:]]
            writer.writerow(row + ["end" if row[1] == "finished" else labels.get((row[0], row[3]), "")])
    return len(rows)


@dataclass
class TurnSample:
    """One row of the set as a microphone stream: room noise, the speech up to the cut, the
    thinking pause, the rest (unfinished), room noise."""

    name: str
    kind: str
    place: str
    """end, mid_sentence or between_sentences (TURN_SET)."""
    audio: np.ndarray = field(repr=False)
    end_s: float
    """Where the speech stops (the cut, or the end), in the stream."""
    resume_s: float | None
    """Where it resumes after the thinking pause (unfinished only)."""


def turn_samples(rows: list[dict], originals: dict[str, np.ndarray]) -> list[TurnSample]:
    samples = []
    for n, row in enumerate(rows):
        audio = originals[row["file_name"]]
        recording = streams.Recording.of(audio)
        def at(name: str, row: dict = row) -> int:
            return int(round(float(row[name]) * SAMPLE_RATE))

        begin = max(0, at("speech_start_s") - int(streams.LEAD_IN_S * SAMPLE_RATE))
        lead = recording.room_tone(1.0, n)
        parts = [lead, audio[begin: at("cut_s")]]
        end_s = (lead.size + at("cut_s") - begin) / SAMPLE_RATE
        resume_s = None
        if row["kind"] == "unfinished":
            rest = max(at("cut_s"), at("resume_s") - int(0.05 * SAMPLE_RATE))
            parts += [recording.room_tone(THINKING_PAUSE_S, n + 1), audio[rest: at("speech_end_s")]]
            resume_s = end_s + THINKING_PAUSE_S + (at("resume_s") - rest) / SAMPLE_RATE
        parts.append(recording.room_tone(3.0, n + 2))
        samples.append(TurnSample(row["file_name"], row["kind"], row["place"], np.concatenate(parts).astype(np.float32), end_s, resume_s))
    return samples


class SmartTurn:
    """Smart Turn v3 (Pipecat's end-of-turn audio model, BSD-2), from its ONNX file: the
    probability that the speech so far is a finished turn. Features: Whisper's 80 log-mel bins of
    the last 8 s, zero-padded at the start, the waveform normalised first (as Pipecat does)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # more threads are slower on 2 cores
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.features = FeatureExtractor(feature_size=80)
        self.path = path

    def __call__(self, audio: np.ndarray) -> float:
        size = SMART_TURN_SECONDS * SAMPLE_RATE
        audio = audio[-size:]
        audio = np.pad(audio, (size - audio.size, 0)).astype(np.float32)
        audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
        mel = self.features(audio, padding=0)[:, : SMART_TURN_SECONDS * 100].astype(np.float32)
        return float(self.session.run(None, {"input_features": mel[None]})[0].reshape(-1)[0])


def find_smart_turn(given: Path | None) -> Path | None:
    """The Smart Turn ONNX file: --smart-turn, else the one inside an installed `pipecat-ai`."""
    if given is not None:
        if not given.is_file():
            raise SystemExit(f"--smart-turn {given}: no such file (see docs/hands-free.md for how to get it)")
        return given
    import importlib.util

    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = Path(list(spec.submodule_search_locations)[0]) / "audio/turn/smart_turn/data" / SMART_TURN_FILE
    return found if found.is_file() else None


class Timed:
    """A function of a pause's audio, each answer cached with the wall time it took (measured
    once, on this machine, at its load)."""

    def __init__(self, function) -> None:
        self.function = function
        self.cache: dict[str, tuple[object, float]] = {}

    def __call__(self, audio: np.ndarray) -> tuple[object, float]:
        key = hashlib.sha1(audio.tobytes()).hexdigest()
        if key not in self.cache:
            started = time.perf_counter()
            value = self.function(audio)
            self.cache[key] = (value, time.perf_counter() - started)
        return self.cache[key]


def policy_words(words: Timed, options: HandsFreeOptions, on_time: bool = False):
    def decide(pause: TurnEnded) -> tuple[turn_end.Verdict, float]:
        text, seconds = words(pause.audio)
        return turn_end.decide(text, pause.end_s - pause.start_s, options), 0.0 if on_time else seconds
    return decide


def smart_verdict(probability: float, options: HandsFreeOptions) -> turn_end.Verdict:
    if probability >= 0.5:
        return turn_end.Verdict(turn_end.FINISHED, options.finished_wait_s, f"smart turn {probability:.2f}")
    return turn_end.Verdict(turn_end.UNFINISHED, options.unfinished_wait_s, f"smart turn {probability:.2f}")


def policy_smart(smart: Timed, options: HandsFreeOptions):
    def decide(pause: TurnEnded) -> tuple[turn_end.Verdict, float]:
        probability, seconds = smart(pause.audio)
        return smart_verdict(probability, options), seconds
    return decide


def policy_combined(words: Timed, smart: Timed, options: HandsFreeOptions):
    """The words decide; where they are unsure (but the speech is not too short), Smart Turn."""
    def decide(pause: TurnEnded) -> tuple[turn_end.Verdict, float]:
        text, asr_s = words(pause.audio)
        verdict = turn_end.decide(text, pause.end_s - pause.start_s, options)
        probability, smart_s = smart(pause.audio)
        if verdict.kind == turn_end.UNSURE and verdict.reason != f"speech under {options.short_speech_s:g} s":
            verdict = smart_verdict(probability, options)
        return verdict, max(asr_s, smart_s)
    return decide


def run_turns(audio: np.ndarray, options: HandsFreeOptions, decide=None) -> tuple[list, list]:
    """Feed `audio` as the page does and end turns as hands-free does (voiceqna/page/handsfree.py):
    at a pause of HANDSFREE_SPECULATE_S the turn so far is recognised, the pause may last up to
    UNFINISHED_WAIT_S meanwhile, and once the words are known (the measured time later) they set
    the wait; a turn that has waited that long already ends then. `decide`: None for a fixed pause.
    The turns, each with when it was reported; and each pause judged, with its verdict."""
    endpointer = Endpointer(options)
    size = TURN_CHUNK_MS * SAMPLE_RATE // 1000
    turns, judged, early = [], [], None  # early: [end_s of its pause, when its verdict is known, verdict, applied]
    for begin in range(0, audio.size, size):
        now = min(begin + size, audio.size) / SAMPLE_RATE
        for event in endpointer.feed(audio[begin: begin + size]):
            if isinstance(event, TurnEnded):
                turns.append((now, event))
                early = None
        if decide is None:
            continue
        pause = endpointer.preview() if endpointer.pause_s >= options.speculate_s else None
        if early is not None and (pause is None or pause.end_s != early[0]):
            early = None
        if pause is not None and early is None:
            verdict, seconds = decide(pause)
            judged.append((pause, verdict))
            early = [pause.end_s, now + seconds, verdict, False]
            endpointer.wait_for(options.unfinished_wait_s)
        if early is not None and not early[3] and now >= early[1]:
            early[3] = True
            ended = endpointer.wait_for(early[2].wait_s)
            if ended is not None:
                turns.append((now, ended))
                early = None
    return turns, judged


def score_turns(samples: list[TurnSample], results: list[list[tuple[float, TurnEnded]]]) -> dict:
    """Cuts ended early (a turn ended in the thinking pause), mid-sentence and between sentences;
    the wait after finished utterances (end of speech → the turn reported)."""
    early = {"mid_sentence": [], "between_sentences": []}
    waits, split_finished = [], []
    for sample, turns in zip(samples, results):
        if sample.kind == "unfinished":
            # a turn ended at this cut, in its thinking pause (an earlier pause of the same recording is another cut)
            cut = any(abs(e.end_s - sample.end_s) <= 0.15 and at < sample.resume_s for at, e in turns)
            early[sample.place].append(sample.name if cut else "")
        else:
            last = [at for at, e in turns if e.end_s >= sample.end_s - 0.3]
            if last:
                waits.append(round(last[0] - sample.end_s, 3))
            if len(turns) > 1:
                split_finished.append(sample.name)
    result = {}
    for place, cuts in early.items():
        ended = [name for name in cuts if name]
        result[place] = {"cuts": len(cuts), "ended_early": len(ended),
                         "ended_early_pct": round(100 * len(ended) / max(len(cuts), 1), 1), "ended_early_clips": ended}
    return {**result, "finished": len(waits), "finished_wait_s": common.spread(waits),
            "finished_split": split_finished, "finished_waits": waits}


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """Probability that a finished utterance scores above an unfinished one (ties count half)."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 3)


def end_of_turn(clips: list, originals: list[np.ndarray], smart_path: Path | None, quick: bool) -> dict:
    from voiceqna.compose import build_recognizer

    rows = list(csv.DictReader(open(TURN_SET, encoding="utf-8")))
    by_name = {c.path.name: a for c, a in zip(clips, originals)}
    rows = [r for r in rows if r["file_name"] in by_name]
    samples = turn_samples(rows, by_name)
    settings = Settings.from_env()
    options = settings.handsfree
    fixed = dataclasses.replace(options, silence_s=0.7)
    recognizer = build_recognizer(settings)
    recognizer.warm_up()
    words = Timed(lambda audio: unicodedata.normalize("NFC", recognizer.transcribe(audio).text).strip())
    methods = {"fixed 0.7 s": None,
               "words": policy_words(words, options),
               "words, recognised at once (lower bound)": policy_words(words, options, on_time=True)}
    smart = None
    if smart_path is not None:
        model = SmartTurn(smart_path)
        smart = Timed(model)
        methods["smart turn"] = policy_smart(smart, options)
        methods["words, smart turn where unsure"] = policy_combined(words, smart, options)
    result = {"set": str(TURN_SET.relative_to(PROJECT_ROOT)), "thinking_pause_s": THINKING_PAUSE_S,
              "chunk_ms": TURN_CHUNK_MS, "options": dataclasses.asdict(options),
              "recognizer": recognizer.description, "smart_turn": str(smart_path) if smart_path else None,
              "samples": {"finished": sum(s.kind == "finished" for s in samples),
                          "unfinished": sum(s.kind == "unfinished" for s in samples)},
              "methods": {}}
    judged_by_words = []
    for name, decide in methods.items():
        runs = [run_turns(s.audio, fixed if decide is None else options, decide) for s in samples]
        result["methods"][name] = score_turns(samples, [turns for turns, _ in runs])
        logger.info("end of turn, %s: %s", name, end_of_turn_markdown_row(result["methods"][name]))
        if name == "words":
            judged_by_words = [judged for _, judged in runs]
    # What each judge says at the pause that matters (the cut, or the end of the utterance).
    kinds, verdicts, probabilities = {}, [], {"end": [], "mid_sentence": [], "between_sentences": []}
    for sample, judged in zip(samples, judged_by_words):
        near = [(pause, verdict) for pause, verdict in judged if abs(pause.end_s - sample.end_s) < 0.3]
        if not near:
            continue
        pause, verdict = near[-1]
        kinds.setdefault(sample.place, {}).setdefault(verdict.kind, 0)
        kinds[sample.place][verdict.kind] += 1
        text, seconds = words(pause.audio)
        row = {"clip": sample.name, "kind": sample.kind, "place": sample.place, "speech_s": round(pause.end_s - pause.start_s, 2),
               "text": text, "verdict": verdict.kind, "reason": verdict.reason, "recognition_s": round(seconds, 3)}
        if smart is not None:
            row["smart_turn"] = round(smart(pause.audio)[0], 3)
            probabilities[sample.place].append(row["smart_turn"])
        verdicts.append(row)
    result["words_verdicts"] = kinds
    result["recognition_s"] = common.spread([seconds for _, seconds in words.cache.values()])
    if smart is not None:
        result["smart_turn_auc"] = auc(probabilities["end"], probabilities["mid_sentence"] + probabilities["between_sentences"])
        result["smart_turn_auc_mid_sentence"] = auc(probabilities["end"], probabilities["mid_sentence"])
        result["smart_turn_s"] = common.spread([seconds for _, seconds in smart.cache.values()])
    result["per_sample"] = verdicts
    return result


def end_of_turn_markdown_row(r: dict) -> str:
    return (f"mid-sentence cuts ended early {r['mid_sentence']['ended_early']} of {r['mid_sentence']['cuts']}, "
            f"between sentences {r['between_sentences']['ended_early']} of {r['between_sentences']['cuts']}, "
            f"wait after finished {r['finished_wait_s']}")


def end_of_turn_markdown(result: dict) -> list[str]:
    rows = []
    for name, r in result["methods"].items():
        w = r["finished_wait_s"]
        early = [f"{r[p]['ended_early']} of {r[p]['cuts']} ({r[p]['ended_early_pct']:g} %)"
                 for p in ("mid_sentence", "between_sentences")]
        rows.append([name, *early, common.fmt(w.get("p50"), 2), common.fmt(w.get("p95"), 2),
                     f"{len(r['finished_split'])} of {r['finished']}"])
    lines = [f"End of turn: {result['samples']['finished']} utterances whole, {result['samples']['unfinished']} cut at "
             f"an inner pause with a {result['thinking_pause_s']:g} s thinking pause put there "
             f"({result['set']}); words by {result['recognizer']}, recognition p50 "
             f"{common.fmt(result['recognition_s'].get('p50'))} s here, started at a "
             f"{result['options']['speculate_s']:g} s pause; {result['chunk_ms']} ms chunks.", "",
             common.table(["method", "mid-sentence cuts ended early", "between-sentence cuts ended early",
                           "wait after finished p50 s", "p95 s", "finished split"], rows), "",
             f"Words at the pause that matters: {json.dumps(result['words_verdicts'], ensure_ascii=False)}."]
    if result.get("smart_turn"):
        lines.append(f"Smart Turn AUC finished vs mid-sentence cut: {result['smart_turn_auc_mid_sentence']}, "
                     f"vs any cut: {result['smart_turn_auc']}; {common.fmt(result['smart_turn_s'].get('p50'), 3)} s a call here.")
    else:
        lines.append("Smart Turn: not measured (its ONNX file was not found: --smart-turn PATH).")
    return lines




if __name__ == "__main__":
    main()
