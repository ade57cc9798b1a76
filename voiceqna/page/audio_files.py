"""Audio as files: the page's uploads read, and answer audio written for Gradio to serve (content-addressed, format sniffed)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path

from voiceqna.errors import BadAudio, EmptyAudio


class AudioFiles:
    """Answer audio as files for Gradio to serve: content-addressed, written once.

    Gradio copies each file it is given into its own cache (which `delete_cache` empties), so
    a file here is needed only for a moment; files unused for `keep_s` are removed. Without a
    `folder`, a new private one (mkdtemp: mode 0700, a random name) is made for this object and
    removed with it, so no other local user can plant files under the names the page serves.
    """

    def __init__(self, folder: Path | None = None, keep_s: float = 3600.0) -> None:
        if folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="voiceqna-page-audio-"))
            weakref.finalize(self, shutil.rmtree, self.folder, ignore_errors=True)
        else:
            self.folder = Path(folder)
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep_s = keep_s

    def save(self, data: bytes) -> str | None:
        """The path of a file holding `data`; None when the bytes are not audio a browser plays."""
        suffix = audio_suffix(data)
        if suffix is None:
            return None
        self._prune()
        path = self.folder / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
        if path.is_file():
            os.utime(path)
        else:
            partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(data)
            os.replace(partial, path)
        return str(path)

    def _prune(self) -> None:
        cutoff = time.time() - self.keep_s
        for old in self.folder.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:  # another process pruned it first
                pass


def audio_suffix(data: bytes) -> str | None:
    """The file extension a browser needs to play these bytes; None for bytes that are not audio."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return ".wav"
    if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return ".mp3"
    if data[:4] == b"OggS":
        return ".ogg"
    if data[:4] == b"fLaC":
        return ".flac"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return ".webm"
    if data[4:8] == b"ftyp":
        return ".m4a"
    return None


def read_upload(audio_path: str | None) -> bytes:
    """The bytes of a recording or upload; EmptyAudio / BadAudio say what to do."""
    if not audio_path:
        raise EmptyAudio("Nothing was recorded: press record, speak, then stop (or send an audio file).")
    try:
        return Path(audio_path).read_bytes()
    except OSError as exc:
        raise BadAudio(f"The upload could not be read ({exc}): try again.") from None
