"""The package's shape, as README's layout section draws it: imports flow one way (front doors
→ service → ports ← engines), every engine is one file registered in one line, and README's
engine table is the registry's."""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

from voiceqna import ports, registry
from voiceqna.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "voiceqna"
FRONT_DOORS = ("voiceqna.api", "voiceqna.page", "voiceqna.remote")
PROTOCOL = {"asr": ports.Recognizer, "chat": ports.ChatEngine, "tts": ports.Synthesizer, "store": ports.ConversationStore}


def module_name(path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path) -> set[str]:
    """Every voiceqna module a file imports (at any depth, lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("voiceqna")}


MODULES = {module_name(path): imports(path) for path in PACKAGE.rglob("*.py")}


def importers_of(prefixes: tuple[str, ...]) -> dict[str, set[str]]:
    return {module: {i for i in found if i.startswith(prefixes)} for module, found in MODULES.items()}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(("voiceqna.service", "voiceqna.ports"))
                                          or m.startswith(FRONT_DOORS)))
def test_the_service_and_the_front_doors_import_no_concrete_engine(module):
    assert not {i for i in MODULES[module] if i.startswith("voiceqna.engines")}, MODULES[module]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("voiceqna.engines")))
def test_engines_import_neither_the_service_nor_a_front_door(module):
    above = ("voiceqna.service", "voiceqna.compose", "voiceqna.registry", *FRONT_DOORS)
    assert not {i for i in MODULES[module] if i.startswith(above)}, MODULES[module]


def test_ports_depend_on_nothing_but_the_errors():
    assert MODULES["voiceqna.ports"] <= {"voiceqna.errors"} | {f"voiceqna.errors.{n}" for n in dir(
        importlib.import_module("voiceqna.errors"))}


def test_the_runtime_never_imports_the_evaluation_tooling():
    tooling = ("voiceqna.evaluation", "voiceqna.convert")  # voiceqna.convert: the converter's short command name
    runtime = [m for m in MODULES if not m.startswith(tooling)]
    assert not [m for m in runtime if any(i.startswith("voiceqna.evaluation") for i in MODULES[m])]


@pytest.mark.parametrize("spec", registry.ENGINES, ids=lambda s: f"{s.stage}-{s.name}")
def test_each_registered_engine_is_one_module_with_build_and_implements_its_stage(spec):
    module = importlib.import_module(spec.module)
    assert callable(module.build) and inspect.signature(module.build).parameters.keys() == {"settings"}
    built_type = inspect.signature(module.build).return_annotation
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__
               and PROTOCOL[spec.stage] in c.__mro__]
    assert classes, f"{spec.module} has no class implementing {PROTOCOL[spec.stage].__name__}"
    assert any(c.__name__ in str(built_type) for c in classes)


def test_every_module_says_its_job_in_its_first_line():
    for path in PACKAGE.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and doc.splitlines()[0].strip(), f"{path.relative_to(PROJECT_ROOT)} has no one-line docstring"


def test_readmes_engine_table_is_the_registrys():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert registry.markdown_table() in readme, "README's engine table is out of date: paste registry.markdown_table()"
