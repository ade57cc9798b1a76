"""Every `python -m` module and `python` script the docs show runs: `--help` exits 0 without a
traceback and lists each option the docs give it; a GPU command says so on a machine without one."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "models" / "README.md"]
COMMAND = re.compile(r"(?<![\w/.-])(?:\S*/)?python3? (?:-m ([A-Za-z_][\w.]*)|((?:[\w.-]+/)*[\w-]+\.py))([^`\n#|]*)")
OPTION = re.compile(r"(?<!\S)(--[a-z][\w-]*)")


def documented() -> dict[tuple[str, ...], set[str]]:
    """Each command (as argv after the interpreter) shown in the docs → the long options shown with it."""
    found: dict[tuple[str, ...], set[str]] = {}
    for page in PAGES:
        for match in COMMAND.finditer(page.read_text(encoding="utf-8")):
            module, script, rest = match.groups()
            argv = ("-m", module) if module else (script,)
            found.setdefault(argv, set()).update(o.split("=")[0] for o in OPTION.findall(rest))
    return found


COMMANDS = documented()


@cache
def helps() -> dict[tuple[str, ...], subprocess.CompletedProcess]:
    """`--help` of every documented command, four at a time, with the venv's python from the project root."""
    def run(argv: tuple[str, ...]) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *argv, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(COMMANDS, pool.map(run, COMMANDS)))


def test_the_docs_show_the_commands_people_run() -> None:
    shown = {" ".join(argv) for argv in COMMANDS}
    assert {"app.py", "evaluate.py", "-m voiceqna.convert", "benchmarks/readme.py"} <= shown, shown
    assert len(shown) >= 15, shown


@pytest.mark.parametrize("argv", sorted(COMMANDS), ids=" ".join)
def test_documented_command_answers_help(argv: tuple[str, ...]) -> None:
    result = helps()[argv]
    command = "python " + " ".join(argv)
    assert "Traceback" not in result.stderr, f"{command} --help ends in a traceback:\n{result.stderr[-2000:]}"
    assert result.returncode == 0, f"{command} --help exited {result.returncode}:\n{result.stderr[-2000:]}"
    assert "usage" in result.stdout.lower(), f"{command} --help printed no usage:\n{result.stdout[:500]}"
    missing = sorted(o for o in COMMANDS[argv] if o not in result.stdout)
    assert not missing, f"the docs give {command} options its --help does not list: {missing}"


def _has_gpu() -> bool:
    import ctranslate2

    return ctranslate2.get_cuda_device_count() > 0


GPU_COMMANDS = sorted(argv for argv, options in COMMANDS.items() if "--gpu" in options)


@pytest.mark.parametrize("argv", GPU_COMMANDS, ids=" ".join)
def test_a_gpu_command_without_a_gpu_says_so_in_one_line(argv: tuple[str, ...]) -> None:
    if _has_gpu():
        pytest.skip("this machine has a GPU: the command would run the whole measurement")
    result = subprocess.run([sys.executable, *argv, "--gpu"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "GPU" in result.stderr, result.stderr[-2000:]
