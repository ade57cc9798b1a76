"""Paste each committed results file's tables into README, after its `<!-- results: FILE -->` marker.

    python benchmarks/readme.py            # rewrite README.md's quoted tables from benchmarks/results
    python benchmarks/readme.py --check    # exit 1 where README differs from a results file

A marker is followed by that file's tables ("markdown" in the JSON: what the script printed),
blank lines between them; the block ends at the first line that is neither. Prose around the
tables (what was run, on what, at which load) is written by hand and quotes the same file.
tests/test_readme_figures.py runs the check.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- results: (benchmarks/results/[\w.-]+\.json) -->$")


def tables(markdown: str) -> list[str]:
    """The Markdown tables of a text, each as its lines."""
    found: list[list[str]] = []
    current: list[str] = []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line.rstrip())
        elif current:
            found.append(current)
            current = []
    return ["\n".join(t) for t in found]


def block_for(path: str) -> list[str]:
    data = json.loads((ROOT / path).read_text(encoding="utf-8"))
    if "markdown" not in data:
        raise SystemExit(f"{path} keeps no printed tables (no 'markdown' key): quote it in prose instead")
    return "\n\n".join(tables(data["markdown"])).splitlines()


def rewrite(text: str) -> tuple[str, list[str]]:
    """README with every marker's block replaced by its file's tables; the files that differed."""
    lines, out, changed = text.splitlines(), [], []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        match = MARKER.match(lines[i])
        i += 1
        if not match:
            continue
        end = i
        while end < len(lines) and (lines[end].startswith("|") or not lines[end].strip()):
            end += 1
        old = lines[i:end]
        while old and not old[-1].strip():
            old.pop()
        new = block_for(match.group(1))
        if old != new:
            changed.append(match.group(1))
        out += new + [""]
        i = end
    return "\n".join(out) + "\n", changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report where README differs")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new, changed = rewrite(text)
    if args.check:
        for path in changed:
            print(f"README's tables for {path} differ from the file: run python benchmarks/readme.py")
        return 1 if changed else 0
    args.readme.write_text(new, encoding="utf-8")
    print("updated: " + (", ".join(changed) or "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
