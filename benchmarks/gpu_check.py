"""One GPU check: faster-whisper's default call against the app's recognizer, CUDA float16, on the real clips and the sets built from them.

    python benchmarks/gpu_check.py                      # prints the table; JSON to $OUT or /tmp
    python benchmarks/gpu_check.py --sets read          # the 30 real clips only

Runs benchmarks/accuracy.py with --device cuda --compute-type float16 on the sets that need
no espeak-ng (read, silence, noise, cut): CER, CER with numbers read, WER, repetition, RTF,
latency p50/p95 per recognizer, and the speed-up on clips of 2–4 s. Needs the Python
requirements, models/whisper-base and ../shared/data/korean-read-speech; about a minute
after the model loads.

CTranslate2 4.8's wheels load CUDA 12's cuBLAS (libcublas.so.12). Where only another major
version is installed (CUDA 13), this script links libcublas.so.12 / libcublasLt.so.12 to it
in a temporary folder and starts itself again with that folder on LD_LIBRARY_PATH (what the
earlier H100 run did by hand).
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import sys
import tempfile
from pathlib import Path

SEARCH = ("/usr/local/cuda*/lib64", "/usr/local/cuda*/targets/*/lib", "/usr/lib/x86_64-linux-gnu",
          f"{sys.prefix}/lib/python3*/site-packages/nvidia/*/lib")


def cublas_12_loads() -> bool:
    try:
        ctypes.CDLL("libcublas.so.12")
        return True
    except OSError:
        return False


def link_cublas() -> str | None:
    """A folder with libcublas(.Lt).so.12 links to the newest cuBLAS found, or None."""
    folder = tempfile.mkdtemp(prefix="cublas12-")
    for name in ("libcublas", "libcublasLt"):
        found = sorted(p for pattern in SEARCH for p in glob.glob(f"{pattern}/{name}.so.*")
                       if Path(p).name.split(".so.")[1].split(".")[0].isdigit())
        if not found:
            return None
        os.symlink(found[-1], f"{folder}/{name}.so.12")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="read,silence,noise,cut", help="comma-separated sets (default: %(default)s)")
    args = parser.parse_args()
    if not cublas_12_loads() and "VOICEQNA_CUBLAS_LINKED" not in os.environ:
        folder = link_cublas()
        if folder:
            env = dict(os.environ, VOICEQNA_CUBLAS_LINKED="1",
                       LD_LIBRARY_PATH=f"{folder}:{os.environ.get('LD_LIBRARY_PATH', '')}")
            os.execve(sys.executable, [sys.executable, *sys.argv], env)
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        print("gpu_check.py needs a CUDA GPU and found none: run it on a machine with one "
              "(benchmarks/accuracy.py measures the same on CPU)", file=sys.stderr)
        return 1
    from benchmarks import accuracy

    out = Path(os.environ.get("OUT") or tempfile.gettempdir()) / "gpu-accuracy.json"
    return accuracy.main(["--sets", args.sets, "--device", "cuda", "--compute-type", "float16", "--out", str(out)])


if __name__ == "__main__":
    sys.exit(main())
