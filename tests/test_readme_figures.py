"""README's figures come from committed benchmark results: each quoted table is its results file's own."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from benchmarks import readme

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CITED = sorted(set(re.findall(r"benchmarks/results/[\w.-]+\.json", README)))


def test_readme_quotes_results_files() -> None:
    markers = [line for line in README.splitlines() if readme.MARKER.match(line)]
    assert len(markers) >= 6, markers
    assert len(CITED) >= 10, CITED


@pytest.mark.parametrize("path", CITED)
def test_cited_results_file_is_committed_with_its_header(path: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"README cites {path}, which does not exist: run its benchmark and commit the file"
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True)
    assert tracked.returncode == 0, f"{path} is cited by README but not committed (git add it)"
    data = json.loads(file.read_text(encoding="utf-8"))
    assert "header" not in data, f"{path} nests its header: its keys belong at the top (benchmarks/common.py)"
    for key in ("benchmark", "commit", "machine", "date", "command"):
        assert data.get(key), f"{path} has no {key!r} in its header"
    assert len(data["load_average"]["start"]) == len(data["load_average"]["end"]) == 3, path


def test_quoted_tables_are_the_results_files_own() -> None:
    _, changed = readme.rewrite(README)
    assert not changed, f"README's tables differ from {changed}: run python benchmarks/readme.py"


def test_a_changed_figure_is_caught() -> None:
    marker = next(m for m in re.finditer(r"<!-- results: (.+?) -->\n\n?\|", README))
    row_start = README.index("\n|", README.index("\n| ---", marker.start())) + 1
    digit = re.search(r"\d", README[row_start:]).start() + row_start
    tampered = README[:digit] + str((int(README[digit]) + 1) % 10) + README[digit + 1:]
    _, changed = readme.rewrite(tampered)
    assert changed == [marker.group(1)]
