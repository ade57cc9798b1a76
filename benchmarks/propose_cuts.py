"""Propose where to cut the real clips into 1–3 s pieces whose reference text is known.

    python benchmarks/propose_cuts.py > voiceqna/evaluation/read_speech_cuts.csv

How the table committed beside `voiceqna/evaluation/perturb.py` was made (once; review the
output before committing it). Per clip: faster-whisper's default call with word timestamps
gives where each recognised word ends; the recognised characters are aligned to the
reference's; a boundary between two words counts only where both sides of it match the
reference exactly and fall on a reference word boundary; the cut goes at the quietest 20 ms
frame within 0.15 s of that boundary, and only where that frame is a pause (RMS at most 12 %
of the clip's loud frames). Per clip at most one head piece [0, t] and one tail piece [t, end]
of 1–3 s, the quietest. The reference of a piece is its reference words (`first_word` up to,
not including, `end_word`): the human transcript, never the recognizer's.
"""

from __future__ import annotations

import csv
import sys

import numpy as np


from voiceqna.audio import SAMPLE_RATE, decode
from voiceqna.config import PROJECT_ROOT
from voiceqna.evaluation.clips import read_speech
from voiceqna.textnorm import compact

FRAME_S = 0.02
PAUSE = 0.12
"""A cut frame's RMS at most this share of the clip's 90th-percentile frame RMS."""
PIECE_S = (1.0, 3.0)


def matches(reference: list[str], hypothesis: list[str]) -> dict[int, int]:
    """Hypothesis index -> reference index for the characters a minimal alignment matches."""
    n, m = len(reference), len(hypothesis)
    cost = np.zeros((n + 1, m + 1), int)
    cost[:, 0], cost[0, :] = range(n + 1), range(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]),
                             cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs, i, j = {}, n, m
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            if reference[i - 1] == hypothesis[j - 1]:
                pairs[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs


def boundaries(samples: np.ndarray, text: str, words) -> list[tuple[float, int, float]]:
    """(cut time, reference word index after the cut, loudness at the cut) per safe boundary."""
    ref_chars, ref_word = zip(*[(ch, k) for k, w in enumerate(text.split()) for ch in compact(w)])
    hyp_chars, hyp_word = zip(*[(ch, k) for k, w in enumerate(words) for ch in compact(w.word)])
    pairs = matches(list(ref_chars), list(hyp_chars))
    hop = int(FRAME_S * SAMPLE_RATE)
    rms = np.sqrt((samples[: samples.size // hop * hop].reshape(-1, hop) ** 2).mean(axis=1))
    loud = np.percentile(rms, 90)
    found = []
    for k in range(len(words) - 1):
        last = max(i for i, w in enumerate(hyp_word) if w == k)
        if last not in pairs or last + 1 not in pairs:
            continue
        before, after = pairs[last], pairs[last + 1]
        if after != before + 1 or ref_word[before] == ref_word[after]:
            continue
        lo = max(0, int((words[k].end - 0.15) / FRAME_S))
        hi = min(len(rms) - 1, int((words[k + 1].start + 0.15) / FRAME_S))
        if hi <= lo:
            continue
        frame = lo + int(np.argmin(rms[lo : hi + 1]))
        found.append((round((frame + 0.5) * FRAME_S, 2), ref_word[after], float(rms[frame] / loud)))
    times = [t for t, _, _ in found]
    return [b for b in found if times.count(b[0]) == 1 and b[2] <= PAUSE]


def main() -> int:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(PROJECT_ROOT / "models" / "whisper-base"), device="cpu", compute_type="int8")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["file_name", "start_s", "end_s", "first_word", "end_word"])
    for clip in read_speech():
        samples = decode(clip.path.read_bytes())
        duration = samples.size / SAMPLE_RATE
        segments, _ = model.transcribe(samples, language="ko", word_timestamps=True)
        words = [w for s in segments for w in s.words if compact(w.word)]
        found = boundaries(samples, clip.text, words) if words else []
        n_words = len(clip.text.split())
        heads = [(t, k, e) for t, k, e in found if PIECE_S[0] <= t <= PIECE_S[1]]
        tails = [(t, k, e) for t, k, e in found if PIECE_S[0] <= duration - t <= PIECE_S[1]]
        if heads:
            t, k, _ = min(heads, key=lambda b: b[2])
            writer.writerow([clip.path.name, 0.0, t, 0, k])
        if tails:
            t, k, _ = min(tails, key=lambda b: b[2])
            writer.writerow([clip.path.name, t, round(duration, 2), k, n_words])
    return 0


if __name__ == "__main__":
    sys.exit(main())
