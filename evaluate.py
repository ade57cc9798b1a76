"""Error rates, repetition and speed of the recognizer on a Korean test set.

    python evaluate.py                                   # Bingsu/zeroth-korean, test split, the app's settings
    python evaluate.py --dataset ../shared/data/korean-read-speech --limit 10
    python evaluate.py --model base --model my-ko --compute-type int8 --compute-type float32
    python evaluate.py --dataset ../shared/data/korean-read-speech --recognizer default --recognizer app
    python evaluate.py --dataset ../shared/data/korean-read-speech --window-s 10 --window-s 30 --beam-size 1 --beam-size 2
    python evaluate.py --dataset ../shared/data/korean-read-speech --vad-threshold 0.35 --vad-threshold 0.5

Each combination of --model, --compute-type, --beam-size, --window-s and --vad-threshold is one
run of the recognizer,
built exactly as the app builds it (Settings from the environment and .env, the flags
replacing single fields). `--recognizer default` adds, per model and compute type, a run of
faster-whisper's own default call (`transcribe(audio, language="ko")`) on the same model:
the baseline. One loaded model serves every run that differs only in decoding. For the app's
recognizer against the default call on every Korean set we build, with speed-ups, see
benchmarks/accuracy.py. Writes results.json, utterances.csv, results.md and cer_vs_rtf.png to
--output. Metrics: see voiceqna/evaluation/metrics.py; model load is not timed.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import logging
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.compose import build_recognizer
from voiceqna.config import Settings, WhisperOptions
from voiceqna.errors import BadAudio, EngineUnavailable, VoiceQnAError
from voiceqna.evaluation import metrics, positive_int
from voiceqna.evaluation.baseline import DefaultCall
from voiceqna.evaluation.datasets import SpeechSet, Utterance, open_speech_set
from voiceqna.evaluation.metrics import ErrorCounts
from voiceqna.ports import Recognizer

logger = logging.getLogger("evaluate")

DEFAULT_DATASET = "Bingsu/zeroth-korean"
RECOGNIZERS = ("app", "default")
"""app: the recognizer as the app builds it; default: faster-whisper's default call on the same model."""


@dataclass(frozen=True)
class UtteranceResult:
    id: str
    reference: str
    hypothesis: str
    words: ErrorCounts
    chars: ErrorCounts
    spoken_chars: ErrorCounts
    """Characters after reading numbers out in Hangul on both sides."""
    repeated: str
    """A span of 4+ syllables the hypothesis says twice back to back and the reference does not."""
    duration_s: float
    time_s: float
    """Wall time of its transcription (alongside others when --batch-size > 1)."""


@dataclass(frozen=True)
class RunResult:
    label: str
    settings: dict
    utterances: list[UtteranceResult]
    transcribe_s: float
    """Wall time spent transcribing, model load and audio decoding excluded."""
    load_s: float
    skipped: list[str]
    """Ids of utterances whose audio could not be decoded."""

    @property
    def n(self) -> int:
        return len(self.utterances)

    @property
    def audio_s(self) -> float:
        return sum(u.duration_s for u in self.utterances)

    @property
    def wer(self) -> float:
        return sum((u.words for u in self.utterances), ErrorCounts()).rate

    @property
    def cer(self) -> float:
        return sum((u.chars for u in self.utterances), ErrorCounts()).rate

    @property
    def cer_spoken(self) -> float:
        return sum((u.spoken_chars for u in self.utterances), ErrorCounts()).rate

    @property
    def repetition_rate(self) -> float:
        """Share of utterances whose hypothesis repeats a span the reference says once."""
        return sum(1 for u in self.utterances if u.repeated) / self.n if self.n else float("nan")

    @property
    def insertion_rate(self) -> float:
        """Inserted characters over reference characters."""
        chars = sum((u.chars for u in self.utterances), ErrorCounts())
        return chars.insertions / chars.reference_length if chars.reference_length else float("nan")

    @property
    def rtf(self) -> float:
        return self.transcribe_s / self.audio_s if self.audio_s else float("nan")

    def summary(self) -> dict:
        return {
            "label": self.label,
            "n": self.n,
            "wer": self.wer,
            "cer": self.cer,
            "cer_numbers_read": self.cer_spoken,
            "repetition_rate": self.repetition_rate,
            "repetitions": sum(1 for u in self.utterances if u.repeated),
            "insertion_rate": self.insertion_rate,
            "rtf": self.rtf,
            "latency_s": metrics.percentiles([u.time_s for u in self.utterances], (50, 90, 95, 99)),
            "audio_s": self.audio_s,
            "transcribe_s": self.transcribe_s,
            "load_s": self.load_s,
            "skipped": self.skipped,
            "settings": self.settings,
        }


@dataclass(frozen=True)
class Loaded:
    settings: Settings
    recognizer: Recognizer
    kind: str
    """"app" or "default" (see RECOGNIZERS)."""
    load_s: float
    """Seconds to load and warm up (0 when an earlier run already loaded the same model)."""

    @property
    def label(self) -> str:
        options = self.settings.whisper
        if self.kind == "default":
            return f"default call: {options.model} ({self.recognizer.compute_type}, beam 5, 30 s)"
        changed = "".join(f", {name} {getattr(options, field)}" for field, name in _LABELLED
                          if getattr(options, field) != getattr(WhisperOptions, field))
        return f"{options.model} ({self.recognizer.compute_type}, beam {options.beam_size}{changed})"


_LABELLED = (("window_s", "window s"), ("vad_threshold", "VAD"))
"""Options named in a run's label when they differ from the app's defaults."""


def load(settings: Settings, kind: str = "app") -> Loaded:
    """The recognizer exactly as the app builds it (or the default call on the same model),
    warmed up, with the time that took."""
    started = time.perf_counter()
    try:
        if kind == "default":
            recognizer = DefaultCall(settings.whisper, settings.models_dir)
        else:
            recognizer = build_recognizer(settings)
        recognizer.warm_up()
    except (OSError, RuntimeError, ValueError) as exc:
        raise EngineUnavailable(
            f"Could not load Whisper model {settings.whisper.model!r} with compute type "
            f"{settings.whisper.compute_type!r} ({type(exc).__name__}: {exc}). Give a folder name under models/ "
            "(python -m voiceqna.convert or finetune.py makes one), a CTranslate2 folder, or a size name or hub id when online."
        ) from None
    loaded = Loaded(settings, recognizer, kind, time.perf_counter() - started)
    logger.info("%s: loaded in %.1f s", loaded.label, loaded.load_s)
    return loaded


def run(loaded: Loaded, speech_set: SpeechSet, batch_size: int) -> RunResult:
    """Transcribe every utterance, `batch_size` at once, timing only the transcriptions."""
    recognizer, settings, label = loaded.recognizer, loaded.settings, loaded.label
    results: list[UtteranceResult] = []
    skipped: list[str] = []
    transcribe_s = 0.0
    progress = _progress(speech_set, label)
    with ThreadPoolExecutor(max_workers=batch_size) as pool:
        for batch in _batched(progress, batch_size):
            decoded = []
            for utterance in batch:
                try:
                    decoded.append((utterance, decode(utterance.audio)))
                except BadAudio as exc:
                    logger.warning("Skipping %s: %s", utterance.id, exc)
                    skipped.append(utterance.id)
            batch_started = time.perf_counter()
            futures = [pool.submit(_timed, recognizer.transcribe, samples) for _, samples in decoded]
            outcomes = [future.result() for future in futures]
            transcribe_s += time.perf_counter() - batch_started
            for (utterance, samples), (transcript, seconds) in zip(decoded, outcomes):
                results.append(_score(utterance, transcript.text, samples.size / SAMPLE_RATE, seconds))
    options = dataclasses.asdict(settings.whisper)
    options.update(recognizer=loaded.kind, device=recognizer.device, compute_type=recognizer.compute_type,
                   batch_size=batch_size)
    return RunResult(label, options, results, transcribe_s, loaded.load_s, skipped)


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def _score(utterance: Utterance, hypothesis: str, duration_s: float, time_s: float) -> UtteranceResult:
    return UtteranceResult(
        id=utterance.id,
        reference=utterance.text,
        hypothesis=hypothesis,
        words=metrics.word_errors(utterance.text, hypothesis),
        chars=metrics.char_errors(utterance.text, hypothesis),
        spoken_chars=metrics.spoken_char_errors(utterance.text, hypothesis),
        repeated=metrics.repeated_span(utterance.text, hypothesis),
        duration_s=duration_s,
        time_s=time_s,
    )


def _batched(iterable, size: int):
    iterator = iter(iterable)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _progress(speech_set: SpeechSet, label: str):
    from tqdm import tqdm

    # disable=None: a bar on a terminal, silence in logs and CI.
    return tqdm(speech_set, total=speech_set.size, desc=label, unit="utt", disable=None)


# --- writers -------------------------------------------------------------------------------


def write_outputs(output: Path, description: str, runs: list[RunResult]) -> None:
    output.mkdir(parents=True, exist_ok=True)
    report = {
        "dataset": description,
        "normalisation": "NFKC, lower case, punctuation and symbols removed, whitespace collapsed; "
        "CER on characters without spaces (voiceqna/textnorm.py); cer_numbers_read after reading numbers, "
        "units and letters out in Hangul on both sides (voiceqna.textnorm.spoken)",
        "repetition": f"share of utterances whose hypothesis says a span of {metrics.MIN_REPEAT}+ syllables twice "
        "back to back where the reference does not",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": [r.summary() for r in runs],
    }
    (output / "results.json").write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str) + "\n")
    _write_csv(output / "utterances.csv", runs)
    (output / "results.md").write_text(markdown_table(description, runs), encoding="utf-8")
    _write_plot(output / "cer_vs_rtf.png", description, runs)


def _write_csv(path: Path, runs: list[RunResult]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run", "id", "reference", "hypothesis", "word_errors", "reference_words",
                         "char_errors", "reference_chars", "char_insertions", "spoken_char_errors",
                         "spoken_reference_chars", "repeated", "duration_s", "time_s"])
        for r in runs:
            for u in r.utterances:
                writer.writerow([r.label, u.id, u.reference, u.hypothesis, u.words.errors, u.words.reference_length,
                                 u.chars.errors, u.chars.reference_length, u.chars.insertions, u.spoken_chars.errors,
                                 u.spoken_chars.reference_length, u.repeated, f"{u.duration_s:.3f}", f"{u.time_s:.3f}"])


def markdown_table(description: str, runs: list[RunResult]) -> str:
    lines = [
        f"Test set: {description}",
        "",
        "| recognizer | n | CER | CER, numbers read | WER | repetition | insertions | RTF "
        "| latency p50 / p95 (s) | load (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        latency = metrics.percentiles([u.time_s for u in r.utterances], (50, 95))
        lines.append(
            f"| {r.label} | {r.n} | {r.cer:.3f} | {r.cer_spoken:.3f} | {r.wer:.3f} | {r.repetition_rate:.3f} "
            f"| {r.insertion_rate:.3f} | {r.rtf:.3f} | {latency['p50']:.2f} / {latency['p95']:.2f} | {r.load_s:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _write_plot(path: Path, description: str, runs: list[RunResult]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    points = [r for r in runs if math.isfinite(r.cer) and math.isfinite(r.rtf)]
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for r in points:
        axes.scatter(r.rtf, r.cer, s=40)
        axes.annotate(r.label, (r.rtf, r.cer), textcoords="offset points", xytext=(6, 4), fontsize=8)
    axes.set_xlabel("real-time factor (processing s / audio s; lower is faster)")
    axes.set_ylabel("character error rate (lower is better)")
    axes.set_title(f"CER against speed — {description}", fontsize=9)
    # Room right of and above the points for their labels.
    axes.set_xlim(0, 1.4 * max([r.rtf for r in points], default=1.0) or 1.0)
    axes.set_ylim(0, 1.25 * max([r.cer for r in points], default=1.0) or 1.0)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


# --- command line --------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help="hub name, an audiofolder (audio + metadata.csv/jsonl with file_name,text), "
                             f"a folder saved with save_to_disk, or a folder of parquet files (default {DEFAULT_DATASET})")
    parser.add_argument("--split", default="test", help="split to use (default test)")
    parser.add_argument("--limit", type=positive_int, help="only the first N utterances")
    parser.add_argument("--model", action="append",
                        help="model name or folder, as WHISPER_MODEL (repeat to compare; default: WHISPER_MODEL)")
    parser.add_argument("--compute-type", action="append",
                        help="CTranslate2 compute type (repeat to compare; default: WHISPER_COMPUTE_TYPE)")
    parser.add_argument("--beam-size", action="append", type=positive_int,
                        help="beam size, 1 = greedy (repeat to compare; default: WHISPER_BEAM_SIZE)")
    parser.add_argument("--window-s", action="append", type=positive_int,
                        help="shortest window in s, 30 = faster-whisper's 30 s path (repeat to compare; "
                             "default: WHISPER_WINDOW_S)")
    parser.add_argument("--vad-threshold", action="append", type=float,
                        help="Silero speech probability (repeat to compare; default: WHISPER_VAD_THRESHOLD)")
    parser.add_argument("--device", help="auto, cpu or cuda (default: WHISPER_DEVICE)")
    parser.add_argument("--recognizer", action="append", choices=RECOGNIZERS,
                        help="app: the app's recognizer; default: faster-whisper's default call "
                             "transcribe(audio, language='ko') on the same model, the baseline "
                             "(repeat to compare on the same clips; default: app)")
    parser.add_argument("--batch-size", type=positive_int, default=1,
                        help="utterances transcribed at once, with as many workers (WHISPER_WORKERS); "
                             "1 measures latency as one user sees it (default 1)")
    parser.add_argument("--output", type=Path, default=Path("eval-results"), help="folder for the results")
    return parser.parse_args(argv)


def configurations(base: Settings, args: argparse.Namespace) -> list[tuple[Settings, str]]:
    """(Settings, recognizer kind) per combination of the repeated flags; unset flags keep the
    app's value. The default call ignores --beam-size, --window-s and --vad-threshold: one run per
    model and compute type."""
    options = base.whisper
    if args.device:
        options = dataclasses.replace(options, device=args.device)
    models = args.model or [options.model]
    compute_types = args.compute_type or [options.compute_type]
    beams = args.beam_size or [options.beam_size]
    windows = args.window_s or [options.window_s]
    thresholds = args.vad_threshold or [options.vad_threshold]
    workers = args.batch_size if args.batch_size > 1 else options.workers
    chosen, seen = [], set()
    for kind, m, c, b, w, t in itertools.product(args.recognizer or ["app"], models, compute_types, beams, windows,
                                                 thresholds):
        key = (kind, m, c, *((b, w, t) if kind == "app" else ()))
        if key not in seen:
            seen.add(key)
            whisper = dataclasses.replace(options, model=m, compute_type=c, beam_size=b, window_s=w, vad_threshold=t,
                                          workers=workers)
            chosen.append((dataclasses.replace(base, whisper=whisper), kind))
    return chosen


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per clip otherwise
    args = parse_args(argv)
    try:
        base = Settings.from_env()
        speech_set = open_speech_set(args.dataset, args.split).head(args.limit)
        # Every model is loaded before the long loop, so a wrong name fails in seconds.
        recognizers = [load(settings, kind) for settings, kind in configurations(base, args)]
    except (VoiceQnAError, ValueError) as exc:
        logger.error("evaluate.py: %s", exc)
        return 2
    runs: list[RunResult] = []
    for loaded in recognizers:
        runs.append(run(loaded, speech_set, args.batch_size))
        if not runs[-1].n:
            logger.error("evaluate.py: no utterance of %s could be decoded", speech_set.description)
            return 1
        write_outputs(args.output, speech_set.description, runs)  # after each run: a long run loses nothing
    sys.stdout.write(markdown_table(speech_set.description, runs))
    logger.info("Wrote results.json, utterances.csv, results.md and cer_vs_rtf.png to %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
