"""Korean test sets made from the real clips: silence or room noise around the speech, and clips cut to 1–3 s.

    python -m voiceqna.evaluation.perturb                 # into a new temporary folder
    python -m voiceqna.evaluation.perturb --out /tmp/sets --seed 0

Each set is an audiofolder (WAV files + metadata.csv with file_name,text) that evaluate.py
reads with --dataset. Deterministic: the same seed gives the same files, byte for byte. The
audio is made from ../shared/data/korean-read-speech and written only where asked, never into
the project (the recordings' licence allows no redistributed derivatives).

- silence: 0.5–3 s of digital silence before, after, or on both sides of each clip;
- noise: the same with room-like noise (pink, 10–25 dB under the speech) instead of silence;
- cut: 27 pieces of 1–3 s cut at pauses between words (read_speech_cuts.csv, made by
  benchmarks/propose_cuts.py); each piece's reference is its words of the human transcript;
- espeak: Korean questions spoken by espeak-ng, four with foreign place names (robotic:
  plumbing, not accuracy).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceqna.audio import SAMPLE_RATE, decode, encode_wav
from voiceqna.evaluation import clips as clip_source

logger = logging.getLogger(__name__)

CUTS = Path(__file__).with_name("read_speech_cuts.csv")
PAD_S = (0.5, 3.0)
NOISE_DB_UNDER_SPEECH = (10.0, 25.0)
ESPEAK_QUESTIONS = (
    "안녕하세요, 오늘 날씨 어때요?",
    "한국에서 가장 높은 산은 어디예요?",
    "서울에서 부산까지 얼마나 걸려요?",
    "김치는 어떻게 만들어요?",
    "한글은 누가 만들었어요?",
    "한국의 수도는 어디예요?",
    "잠이 안 와요. 어떻게 하면 좋을까요?",
    "지하철 이 호선은 몇 시까지 다녀요?",
    # Foreign place names: Whisper tends to write these in Latin letters although told ko.
    "사우디아라비아의 수도는 어디예요?",
    "뉴욕에서 런던까지 비행기로 얼마나 걸려요?",
    "파리에 있는 에펠탑은 얼마나 높아요?",
    "캘리포니아 날씨는 어때요?",
)
SETS = ("silence", "noise", "cut", "espeak")


@dataclass(frozen=True)
class Piece:
    name: str
    samples: np.ndarray
    text: str


def room_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink noise (power falling as 1/f, like the hum and rumble of a room) with RMS 1."""
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, n))
    frequencies = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    frequencies[0] = frequencies[1]
    noise = np.fft.irfft(spectrum / np.sqrt(frequencies), n)
    return noise / np.sqrt(np.mean(noise**2))


def speech_level(samples: np.ndarray) -> float:
    """RMS of the loud frames (90th percentile of 20 ms frames): the level of the speech itself."""
    hop = SAMPLE_RATE // 50
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    return float(np.percentile(np.sqrt(np.mean(frames**2, axis=1)), 90))


def padded(samples: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The clip with 0.5–3 s of silence or room noise before, after or on both sides; and a
    short description of what was added."""
    side = ("before", "after", "both")[rng.integers(3)]
    before = rng.uniform(*PAD_S) if side in ("before", "both") else 0.0
    after = rng.uniform(*PAD_S) if side in ("after", "both") else 0.0
    level = 0.0
    if kind == "noise":
        level = speech_level(samples) * 10 ** (-rng.uniform(*NOISE_DB_UNDER_SPEECH) / 20)
    parts = []
    for seconds in (before, after):
        n = int(seconds * SAMPLE_RATE)
        parts.append(level * room_noise(n, rng) if kind == "noise" and n else np.zeros(n))
    out = np.concatenate([parts[0], samples, parts[1]]).astype(np.float32)
    return out, f"{kind} {before:.1f} s before, {after:.1f} s after"


def padded_set(kind: str, seed: int = 0, source: Path = clip_source.READ_SPEECH) -> list[Piece]:
    """Every real clip with silence ("silence") or room noise ("noise") around it."""
    pieces = []
    for index, clip in enumerate(clip_source.read_speech(source)):
        rng = np.random.default_rng([seed, index, SETS.index(kind)])
        samples, _ = padded(decode(clip.path.read_bytes()), kind, rng)
        pieces.append(Piece(f"{kind}-{clip.path.stem}.wav", samples, clip.text))
    return pieces


def cut_set(source: Path = clip_source.READ_SPEECH) -> list[Piece]:
    """The 1–3 s pieces listed in read_speech_cuts.csv, each with its words of the transcript."""
    texts = {clip.path.name: clip.text for clip in clip_source.read_speech(source)}
    with open(CUTS, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pieces, cache = [], {}
    for row in rows:
        name = row["file_name"]
        if name not in cache:
            cache[name] = decode((Path(source) / name).read_bytes())
        start, end = (int(float(row[k]) * SAMPLE_RATE) for k in ("start_s", "end_s"))
        words = texts[name].split()[int(row["first_word"]) : int(row["end_word"])]
        stem = Path(name).stem
        pieces.append(Piece(f"cut-{stem}-{row['start_s']}-{row['end_s']}.wav", cache[name][start:end], " ".join(words)))
    return pieces


def espeak_set(sentences: tuple[str, ...] = ESPEAK_QUESTIONS) -> list[Piece]:
    return [Piece(f"espeak-{i:02d}.wav", decode(clip_source.espeak(s, rate_wpm=120)), s)
            for i, s in enumerate(sentences)]


def write_audiofolder(folder: Path, pieces: list[Piece]) -> Path:
    """WAV files and metadata.csv (file_name,text): the layout evaluate.py --dataset reads."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "text"])
        for piece in pieces:
            (folder / piece.name).write_bytes(encode_wav(piece.samples))
            writer.writerow([piece.name, piece.text])
    return folder


def build(out: Path, seed: int = 0, names: tuple[str, ...] = SETS,
          source: Path = clip_source.READ_SPEECH) -> dict[str, Path]:
    """Write the named sets under `out`, one audiofolder each; returns name -> folder."""
    makers = {
        "silence": lambda: padded_set("silence", seed, source),
        "noise": lambda: padded_set("noise", seed, source),
        "cut": lambda: cut_set(source),
        "espeak": espeak_set,
    }
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(f"Unknown set(s) {', '.join(unknown)}: choose from {', '.join(SETS)}")
    return {name: write_audiofolder(Path(out) / name, makers[name]()) for name in names}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for the sets (default: a new temporary folder)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the padding and noise (default 0)")
    parser.add_argument("--set", dest="names", action="append", choices=SETS, help="only this set (repeatable)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="voiceqna-sets-"))
    try:
        folders = build(out, args.seed, tuple(args.names or SETS))
    except FileNotFoundError as exc:
        logger.error("perturb: %s", exc)
        return 2
    for name, folder in folders.items():
        sys.stdout.write(f"{name}\t{folder}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
