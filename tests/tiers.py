"""The test tiers: the marker each fixture puts on every test that uses it, so that `make check`
(`-m "not model and not server and not browser and not bench"`) runs only the fast logic tests.

A fixture joins a tier by name (FIXTURE_TIERS) or by a tag on its function:

    @pytest.fixture(scope="module")
    @tier("server")
    def server(tmp_path_factory): ...

A test that starts an app, loads a model or drives a browser itself, with no such fixture,
carries the marker directly (`@pytest.mark.server`).
"""

from __future__ import annotations

from typing import Callable

import pytest

TIERS = ("model", "server", "browser", "bench")
FIXTURE_TIERS = {
    "recognizer": "model",  # the real Whisper model (tests/conftest.py)
    "playwright": "browser",  # a real Chromium (tests/test_ui_browser.py)
}


def tier(name: str) -> Callable[[Callable], Callable]:
    """Tag a fixture function: every test that uses it (directly or through another fixture) is marked `name`."""
    if name not in TIERS:
        raise ValueError(f"unknown tier {name!r}: one of {TIERS}")

    def tag(fixture: Callable) -> Callable:
        fixture.tier = name
        return fixture
    return tag


def tiers_of(item: pytest.Item) -> set[str]:
    """The tiers of the fixtures a collected test uses, its own markers included."""
    found = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
    definitions = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        if name in FIXTURE_TIERS:
            found.add(FIXTURE_TIERS[name])
        for fixturedef in (definitions.name2fixturedefs.get(name, ()) if definitions else ()):
            if getattr(fixturedef.func, "tier", None):
                found.add(fixturedef.func.tier)
    return found
