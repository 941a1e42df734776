"""Optional dependency groups: one line naming the extra to install."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from stream.core.cliutil import CommandError
from stream.core.extras import EXTRA_OF, MissingExtra, missing, require

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_a_missing_library_names_its_extra() -> None:
    assert missing("json", "no_such_module_here") == ["no_such_module_here"]
    with pytest.raises(MissingExtra) as info:
        require("fraudstream build", "json", "no_such_module_here")
    assert isinstance(info.value, CommandError) and isinstance(info.value, ImportError)
    assert str(info.value) == (
        "fraudstream build needs no_such_module_here, not installed: "
        "pip install 'fraudstream[train]'"
    )
    require("fraudstream build", "json")  # present: no error


def test_every_optional_module_belongs_to_the_extra_that_installs_it() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    base = {name(req) for req in project["dependencies"]}
    extras = {k: {name(req) for req in v} for k, v in project["optional-dependencies"].items()}
    for module, extra in EXTRA_OF.items():
        assert module not in base, f"{module} is in the base install"
        assert module in extras[extra] or f"{module}-cu12" in extras[extra], (module, extra)


def name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower()
