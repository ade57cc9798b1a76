"""Write the generated parts of README.md and docs/*.md: results tables and the settings tables.

    python benchmarks/readme.py            # rewrite every generated block from the code and benchmarks/results
    python benchmarks/readme.py --check    # exit 1 where a page differs

Two kinds of marker:
- `<!-- results: benchmarks/results/FILE.json -->` is followed by that file's tables ("markdown" in
  the JSON: what the script printed), blank lines between them; the block ends at the first line
  that is neither. Prose around the tables (what was run, on what, at which load) is written by
  hand and quotes the same file.
- `<!-- settings -->` (every setting), `<!-- settings: NAME,NAME -->` (those variables, in that
  order) or `<!-- settings: PREFIX_* -->` (those whose name starts so) is followed by a table of those settings, read from voiceqna/config.py: each field's
  variable, its default and its docstring. The block ends at the first line that is not a table row.
tests/test_readme_figures.py runs the check.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- results: (benchmarks/results/[\w.-]+\.json) -->$")
SETTINGS_MARKER = re.compile(r"^<!-- settings(?:: ([A-Z0-9_,*]+))? -->$")
CONFIG = ROOT / "voiceqna" / "config.py"


def pages() -> list[Path]:
    """The pages with generated blocks: README.md and every docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


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


# --- settings ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setting:
    variable: str
    default: str
    meaning: str


def _docstrings() -> dict[tuple[str, str], str]:
    """(class name, field name) → the docstring written under that field in config.py."""
    found = {}
    for node in ast.walk(ast.parse(CONFIG.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ClassDef):
            continue
        for field, after in zip(node.body, node.body[1:]):
            if (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                found[(node.name, field.target.id)] = " ".join(after.value.value.split())
    return found


def _fields(kind: type) -> list[tuple[str, object, str]]:
    """(name, default, description) of each field of a settings class (a dataclass or a pydantic model)."""
    if dataclasses.is_dataclass(kind):
        return [(f.name, f.default_factory() if f.default is dataclasses.MISSING else f.default, "")
                for f in dataclasses.fields(kind)]
    return [(name, info.get_default(call_default_factory=True), info.description or "")
            for name, info in kind.model_fields.items()]


def _shown(value: object) -> str:
    if isinstance(value, Path):
        value = value.relative_to(ROOT).as_posix() if value.is_relative_to(ROOT) else value.as_posix()
    elif isinstance(value, bool):
        value = int(value)
    elif isinstance(value, tuple):
        value = ",".join(f"{v:g}" for v in value)
    elif isinstance(value, float):
        value = f"{value:g}"
    return f"`{value}`" if str(value) != "" else "(empty)"


def settings() -> list[Setting]:
    """Every setting the app reads, in config.py's order: variable, default, the field's docstring."""
    from voiceqna.config import Settings

    docs = _docstrings()
    found = []

    def walk(kind: type, prefix: str) -> None:
        for name, default, description in _fields(kind):
            if dataclasses.is_dataclass(default) or hasattr(type(default), "model_fields"):
                walk(type(default), f"{prefix}{name}_")
                continue
            meaning = description or docs.get((kind.__name__, name), "")
            found.append(Setting((prefix + name).upper(), _shown(default), meaning.replace("|", "\\|")))

    walk(Settings, "")
    return found


def settings_block(names: str | None) -> list[str]:
    """The table of the settings named (comma-separated), or of every setting."""
    every = {s.variable: s for s in settings()}
    chosen = list(every.values()) if not names else [
        s for name in names.split(",")
        for s in ([every[name]] if not name.endswith("*") else
                  [s for v, s in every.items() if v.startswith(name[:-1])])]
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    return rows + [f"| `{s.variable}` | {s.default} | {s.meaning} |" for s in chosen]


# --- pages ---------------------------------------------------------------------------------------


def rewrite(text: str) -> tuple[str, list[str]]:
    """A page with every marker's block regenerated; the markers whose blocks differed."""
    lines, out, changed = text.splitlines(), [], []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        results, setting = MARKER.match(lines[i]), SETTINGS_MARKER.match(lines[i])
        i += 1
        if not (results or setting):
            continue
        end = i
        while end < len(lines) and (lines[end].startswith("|") or (results and not lines[end].strip())):
            end += 1
        old = lines[i:end]
        while old and not old[-1].strip():
            old.pop()
        new = block_for(results.group(1)) if results else settings_block(setting.group(1))
        if old != new:
            changed.append(results.group(1) if results else out[-1])
        out += new + ([""] if results else [])
        i = end
    return "\n".join(out) + "\n", changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report where a page differs")
    parser.add_argument("pages", nargs="*", type=Path, help="pages to rewrite (default: README.md and docs/*.md)")
    args = parser.parse_args(argv)
    differ = False
    for page in args.pages or pages():
        text = page.read_text(encoding="utf-8")
        new, changed = rewrite(text)
        name = page.resolve().relative_to(ROOT) if page.resolve().is_relative_to(ROOT) else page
        for what in changed:
            differ = True
            print(f"{name}: the block under {what} differs from the code or results"
                  + (": run python benchmarks/readme.py" if args.check else "; rewritten"))
        if changed and not args.check:
            page.write_text(new, encoding="utf-8")
    return 1 if differ and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
