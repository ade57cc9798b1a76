"""Recognizer "whisper": faster-whisper in this process, Korean fixed, VAD on, a no-speech gate.

Silence and noise must not become text. Three guards, cheapest first:
1. Silero VAD (bundled with faster-whisper) drops non-speech before the encoder runs;
2. a window that Whisper itself marks as probable non-speech gives no text;
3. the subtitle-credit phrases Whisper invents on quiet audio are removed.

The speech the VAD keeps is cut at pauses into pieces of at most 28 s; each piece is encoded
in a short silence-padded window and decoded with at most one fallback
(`asr_whisper_window.py`). WHISPER_WINDOW_S=30 uses faster-whisper's standard path instead.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from voiceqna.audio import SAMPLE_RATE
from voiceqna.config import Settings, WhisperOptions
from voiceqna.engines import asr_vad
from voiceqna.engines import asr_whisper_models as models
from voiceqna.engines.base import BaseEngine
from voiceqna.errors import EngineUnavailable
from voiceqna.ports import Recognizer, Transcript

logger = logging.getLogger(__name__)


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def pick_cpu_threads(requested: int) -> int:
    """CTranslate2's own default is 4 threads, which oversubscribes a 2-core machine."""
    if requested > 0:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(4, cores)


def pick_compute_type(device: str, compute_type: str) -> str:
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


_MODEL_CACHE: dict[tuple, object] = {}
_MODEL_LOCK = threading.Lock()


def load_model(options: WhisperOptions, models_dir) -> tuple[object, str, str]:
    """One WhisperModel per process and configuration, whatever the number of callers.

    A model that cannot be loaded (a corrupt or incomplete folder, a hub name while offline)
    is EngineUnavailable with the fix, so the app stops at start with one clear line.
    """
    from faster_whisper import WhisperModel

    device = pick_device(options.device)
    compute_type = pick_compute_type(device, options.compute_type)
    path = models.resolve(options.model, models_dir)
    threads = pick_cpu_threads(options.cpu_threads)
    key = (path, device, compute_type, threads, options.workers)
    with _MODEL_LOCK:
        if key not in _MODEL_CACHE:
            logger.info("Loading Whisper %s on %s (%s)", path, device, compute_type)
            try:
                _MODEL_CACHE[key] = WhisperModel(
                    path,
                    device=device,
                    compute_type=compute_type,
                    cpu_threads=threads,
                    num_workers=options.workers,
                )
            except Exception as exc:  # CTranslate2, tokenizers and the hub each raise their own types
                raise EngineUnavailable(
                    f"Could not load Whisper model {options.model!r} ({type(exc).__name__}: {str(exc)[:200]}): "
                    "set WHISPER_MODEL to a folder name under MODELS_DIR (python -m voiceqna.convert or finetune.py makes one), "
                    "a CTranslate2 folder, 'base' for the bundled model, or a size name or hub id when online."
                ) from None
        return _MODEL_CACHE[key], device, compute_type


def build(settings: Settings) -> "WhisperRecognizer":
    return WhisperRecognizer(settings.whisper, settings.models_dir)


class WhisperRecognizer(BaseEngine, Recognizer):
    """faster-whisper, Korean, with the guards above. Thread-safe; the model is shared."""

    def __init__(self, options: WhisperOptions, models_dir) -> None:
        from faster_whisper.vad import VadOptions

        from voiceqna.engines.asr_whisper_window import MAX_SPEECH_S, Thresholds, WindowDecoder  # imports CTranslate2

        self.options = options
        self.model, self.device, self.compute_type = load_model(options, models_dir)
        self.vad = VadOptions(threshold=options.vad_threshold, max_speech_duration_s=MAX_SPEECH_S)
        self.fine_vad = VadOptions(threshold=options.vad_threshold, min_silence_duration_ms=0, speech_pad_ms=0)
        self.thresholds = Thresholds(
            options.no_speech_threshold, options.log_prob_threshold, options.compression_ratio_threshold
        )
        short = options.window_s < 30
        self.window = WindowDecoder(self.model, options.window_s, options.beam_size) if short else None

    @property
    def description(self) -> str:
        # Public (GET /info): a model given as a folder shows its name, not its path.
        window = f", {self.options.window_s} s+ window" if self.window else ""
        return f"Whisper {Path(self.options.model).name} ({self.device}, {self.compute_type}){window}"

    def transcribe(self, samples: np.ndarray) -> Transcript:
        if self.window is None:
            return self._transcribe_standard(samples)
        pieces = self.speech_spans(samples)
        texts = [self.window.transcribe(p, self.options.temperatures, self.thresholds, end).text for p, end in pieces]
        return Transcript(" ".join(t for t in texts if t and not asr_vad.is_hallucination(t)).strip())

    def speech_spans(self, samples: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """What the VAD hears as speech, joined into pieces of at most MAX_SPEECH_S split at
        pauses (none when there is no speech), each with where its speech ends (s). A piece
        goes on past its last word: the VAD waits 2 s of silence before it ends speech (less
        where the audio ends first) and pads 0.4 s; a second, fine-grained pass of the VAD (no
        wait, no padding) finds the last word's end."""
        from faster_whisper.vad import get_speech_timestamps

        chunks = get_speech_timestamps(samples, self.vad, sampling_rate=SAMPLE_RATE)
        if not chunks:
            return []
        limit = self.vad.max_speech_duration_s * SAMPLE_RATE
        groups: list[list[dict]] = []
        for chunk in chunks:
            if groups and sum(c["end"] - c["start"] for c in groups[-1]) + chunk["end"] - chunk["start"] <= limit:
                groups[-1].append(chunk)
            else:
                groups.append([chunk])
        words = get_speech_timestamps(samples, self.fine_vad, sampling_rate=SAMPLE_RATE)
        spans = []
        for group in groups:
            piece = np.concatenate([samples[c["start"] : c["end"]] for c in group]).astype(np.float32, copy=False)
            last = group[-1]
            ends = [w["end"] for w in words if last["start"] < w["end"] <= last["end"]]
            after_speech = last["end"] - max(ends, default=last["end"])
            spans.append((piece, (piece.size - after_speech) / SAMPLE_RATE))
        return spans

    def _transcribe_standard(self, samples: np.ndarray) -> Transcript:
        """faster-whisper's own long-form path (WHISPER_WINDOW_S=30): 30 s windows, timestamps."""
        segments, _ = self.model.transcribe(
            samples,
            language="ko",
            beam_size=self.options.beam_size,
            temperature=list(self.options.temperatures),
            condition_on_previous_text=False,
            vad_filter=True,
            vad_parameters=self.vad,
            no_speech_threshold=self.options.no_speech_threshold,
            log_prob_threshold=self.options.log_prob_threshold,
            compression_ratio_threshold=self.options.compression_ratio_threshold,
        )
        kept = [s.text.strip() for s in segments if not self._is_non_speech(s)]
        return Transcript(" ".join(t for t in kept if t and not asr_vad.is_hallucination(t)).strip())

    def _is_non_speech(self, segment) -> bool:
        # Whisper's own rule, applied per segment: probably silence and not confidently decoded.
        return (
            segment.no_speech_prob > self.options.no_speech_threshold
            and segment.avg_logprob < self.options.log_prob_threshold
        )

    def warm_up(self) -> None:
        """Run the VAD, the encoder and the decoder once so the first user does not pay for lazy init."""
        noise = np.random.default_rng(0).normal(0, 1e-3, SAMPLE_RATE).astype(np.float32)
        self.speech_spans(noise)
        if self.window:
            self.window.transcribe(noise, self.options.temperatures[:1], self.thresholds)
        else:
            self.model.transcribe(noise, language="ko", beam_size=1)
