"""Korean test clips: the real read-speech recordings beside the project, and sentences
spoken by espeak-ng (robotic, barely intelligible to Whisper base: plumbing, not accuracy)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.config import PROJECT_ROOT

READ_SPEECH = PROJECT_ROOT.parent / "shared" / "data" / "korean-read-speech"
"""30 real Korean read-speech recordings with their sentences (shared/data/README.md); never
copied into the project."""


@dataclass(frozen=True)
class Clip:
    path: Path
    text: str
    """The sentence read in it."""


def read_speech(folder: Path = READ_SPEECH) -> list[Clip]:
    """The clips of an audiofolder (`metadata.csv`: file_name,text). FileNotFoundError, saying
    where the recordings come from, when it is absent."""
    metadata = Path(folder) / "metadata.csv"
    if not metadata.is_file():
        raise FileNotFoundError(
            f"Real Korean recordings not found at {folder}: put the shared test data beside the project "
            "(shared/data/korean-read-speech, see shared/data/README.md; the Korean Read Speech Corpus "
            "sample, OpenSLR 97)"
        )
    with open(metadata, encoding="utf-8") as handle:
        return [Clip(Path(folder) / row["file_name"], row["text"]) for row in csv.DictReader(handle)]


def espeak(text: str, rate_wpm: int = 130, voice: str = "ko") -> bytes:
    """`text` spoken by espeak-ng, as a WAV file."""
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise FileNotFoundError("espeak-ng is missing: apt-get install espeak-ng (it is in packages.txt)")
    with tempfile.TemporaryDirectory(prefix="voiceqna-clip-") as folder:
        out = Path(folder) / "clip.wav"  # a file, not stdout: only then is the WAV header complete
        # Text through stdin: a sentence starting with "-" is never an option.
        subprocess.run([binary, "-v", voice, "-s", str(rate_wpm), "-w", str(out), "--stdin"], input=text.encode(),
                       check=True, capture_output=True)
        return out.read_bytes()


def seconds(data: bytes) -> float:
    """How long an audio file lasts (any format voiceqna.audio decodes)."""
    return decode(data).size / SAMPLE_RATE
