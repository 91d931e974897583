"""A project's scripts in two languages: one name per script, whatever its language."""

from __future__ import annotations

import pytest

from fnhub.bootstrap import Services
from fnhub.config import Settings
from fnhub.features import FEATURES
from fnhub.project import apply_project
from fnhub.scripts.inspect import ScriptError


def test_a_python_and_a_javascript_file_of_one_name_are_refused_by_name(
    settings: Settings, services: Services
) -> None:
    scripts = settings.project_dir / "scripts"
    scripts.mkdir()
    (scripts / "weather.py").write_text("import fnhub\n")
    (scripts / "weather.js").write_text("exports.f = () => 1;\n")
    with pytest.raises(ScriptError, match=r"scripts/weather.js and scripts/weather.py.*'weather'"):
        apply_project(settings, services.scripts, FEATURES)
    assert services.scripts.active_code() == {}


def test_an_unknown_language_is_refused(services: Services) -> None:
    with pytest.raises(ScriptError, match="unknown language 'ruby'"):
        services.scripts.publish({"x": "puts 1"}, languages={"x": "ruby"})
