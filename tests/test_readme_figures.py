"""The docs' figures and settings come from the project: each quoted table is its results file's own,
each settings table is voiceqna/config.py's."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from benchmarks import readme

ROOT = Path(__file__).resolve().parent.parent
PAGES = {page.relative_to(ROOT).as_posix(): page.read_text(encoding="utf-8") for page in readme.pages()}
ALL = "\n".join(PAGES.values())
CITED = sorted(set(re.findall(r"benchmarks/results/[\w.-]+\.json", ALL)))
QUOTING = sorted(name for name, text in PAGES.items() if any(readme.MARKER.match(line) for line in text.splitlines()))


def test_docs_quote_results_files() -> None:
    markers = [line for line in ALL.splitlines() if readme.MARKER.match(line)]
    assert len(markers) >= 12, markers
    assert len(CITED) >= 14, CITED


@pytest.mark.parametrize("path", CITED)
def test_cited_results_file_is_committed_with_its_header(path: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"the docs cite {path}, which does not exist: run its benchmark and commit the file"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True)
    assert tracked.returncode == 0, f"{path} is cited by the docs but not committed (git add it)"
    data = json.loads(file.read_text(encoding="utf-8"))
    assert "header" not in data, f"{path} nests its header: its keys belong at the top (benchmarks/common.py)"
    for key in ("benchmark", "commit", "machine", "date", "command"):
        assert data.get(key), f"{path} has no {key!r} in its header"
    assert len(data["load_average"]["start"]) == len(data["load_average"]["end"]) == 3, path


@pytest.mark.parametrize("name", sorted(PAGES))
def test_generated_tables_are_the_projects_own(name: str) -> None:
    _, changed = readme.rewrite(PAGES[name])
    assert not changed, f"{name}: the tables under {changed} are out of date: run python benchmarks/readme.py"


@pytest.mark.parametrize("name", QUOTING)
def test_a_changed_figure_is_caught(name: str) -> None:
    text = PAGES[name]
    marker = next(m for m in re.finditer(r"<!-- results: (.+?) -->\n\n?\|", text))
    row_start = text.index("\n|", text.index("\n| ---", marker.start())) + 1
    digit = re.search(r"\d", text[row_start:]).start() + row_start
    tampered = text[:digit] + str((int(text[digit]) + 1) % 10) + text[digit + 1:]
    _, changed = readme.rewrite(tampered)
    assert changed == [marker.group(1)]


def test_every_setting_is_documented_and_the_table_is_complete() -> None:
    found = readme.settings()
    undocumented = [s.variable for s in found if not s.meaning]
    assert not undocumented, f"write a docstring under these fields in voiceqna/config.py: {undocumented}"
    configuration = PAGES["docs/configuration.md"]
    for setting in found:
        assert f"| `{setting.variable}` | {setting.default} |" in configuration, setting
    for variable in ("WHISPER_MODEL", "KNOWLEDGE_BASE", "HANDSFREE_SILENCE_S", "MAX_WAITING_AUDIO_TURNS", "PORT"):
        assert variable in {s.variable for s in found}


def test_a_changed_default_is_caught() -> None:
    text = PAGES["docs/configuration.md"]
    tampered = text.replace("| `WHISPER_BEAM_SIZE` | `5` |", "| `WHISPER_BEAM_SIZE` | `2` |")
    assert tampered != text
    _, changed = readme.rewrite(tampered)
    assert changed == ["<!-- settings -->"]


def test_the_default_shown_is_the_one_the_code_uses() -> None:
    from voiceqna.config import PROJECT_ROOT, Settings

    shown = {s.variable: s.default for s in readme.settings()}
    assert shown["KNOWLEDGE_BASE"] == f"`{Settings().knowledge_base.relative_to(PROJECT_ROOT).as_posix()}`"
    assert shown["WHISPER_TEMPERATURES"] == "`0,0.4`" and shown["TTS_NORMALIZE"] == "`1`"
