"""`@fnhub.api` options of the wrong type are refused with the option's name, never taken apart
(a string of tags as its letters) or half-used (a truthy "no" for a bool)."""

from __future__ import annotations

import pytest

import fnhub
from fnhub.scripts.inspect import ScriptError


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue": 1}, r"option `queue`: expected `str \| null`, got `int`"),
        ({"timeout": "10"}, r"option `timeout`: expected `float \| null`, got `str`"),
        ({"retries": 1.5}, r"option `retries`: expected `int`, got `float`"),
        ({"tags": "shop"}, r"option `tags`: expected `array`, got `str`"),
        ({"record": "no"}, r"option `record`: expected `bool`, got `str`"),
        ({"concurrency": "2"}, r"option `concurrency`: expected `int \| null`, got `str`"),
        ({"delayed_crontab": "30"}, r"option `delayed_crontab`: expected .*got `str`"),
        ({"delayed_crontab": [0, "30"]}, r"option `delayed_crontab\[1\]`: expected `float`"),
    ],
)
def test_an_option_of_the_wrong_type_is_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        fnhub.api(**options)


def test_options_of_the_right_types_are_kept():
    fn = fnhub.api("T", tags=["b", "a", "b"], timeout=10, delayed_crontab=5, retries=2)(
        lambda: None
    )
    options = fn.__fnhub_api__
    assert options.tags == ["a", "b"]
    assert options.timeout == 10.0
    assert options.delayed_crontab == [5.0]
    assert options.retries == 2


def test_a_script_with_a_mistyped_option_is_not_published(services):
    code = "import fnhub\n\n@fnhub.api(queue=1)\ndef f():\n    pass\n"
    with pytest.raises(ScriptError, match=r"option `queue`: expected `str \| null`, got `int`"):
        services.scripts.publish({"typed": code})
    assert "typed" not in services.scripts.active_code()
