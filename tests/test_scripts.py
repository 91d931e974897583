"""Publishing scripts: immutable versions, clear refusals, imports between scripts."""

from __future__ import annotations

import pytest
from tests.conftest import call_ok

from fnhub.features import FEATURES
from fnhub.project import apply_project
from fnhub.scripts.inspect import ScriptError, check_syntax

GOOD = '''
import fnhub

@fnhub.api("Double", timeout=5, queue="sync", cache_result=10)
def double(x: int, factor: int = 2) -> int:
    """Multiply x by factor."""
    return x * factor
'''


def test_publish_stores_an_immutable_version_with_metadata(services):
    [first] = services.scripts.publish({"maths": GOOD})
    assert first.version == 1 and first.changed
    [fn] = first.functions
    assert fn.ref == "maths.double"
    assert fn.doc == "Multiply x by factor."
    assert fn.options.timeout == 5 and fn.options.cache_result == 10
    assert [(p.name, p.required, p.default) for p in fn.params] == [
        ("x", True, None),
        ("factor", False, 2),
    ]
    [again] = services.scripts.publish({"maths": GOOD})
    assert again.version == 1 and not again.changed
    [second] = services.scripts.publish({"maths": GOOD + "\n# changed\n"})
    assert second.version == 2
    assert [v.version for v in services.scripts.versions("maths")] == [2, 1]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def broken(:\n    pass\n", r"syntax error at line 1, column \d+"),
        (
            "import fnhub\nimport no_such_module_here\n",
            r"import failed: ModuleNotFoundError.*line 2",
        ),
        ("import fnhub\nraise RuntimeError('bad top level')\n", r"RuntimeError: bad top level"),
        (
            "import fnhub\n@fnhub.api()\ndef f(): pass\n@fnhub.api()\ndef f(): pass\n",
            r"duplicate function name 'f' \(lines 3 and 5\)",
        ),
        ("import os\nos._exit(4)\n", r"ended without an answer \(exit code 4\)"),
    ],
)
def test_broken_script_is_refused_and_previous_version_stays(services, code, message):
    services.scripts.publish({"maths": GOOD})
    with pytest.raises(ScriptError, match=message):
        services.scripts.publish({"maths": code})
    active = services.scripts.active_code()
    assert active["maths"][0] == GOOD
    assert [v.version for v in services.scripts.versions("maths")] == [1]


def test_syntax_error_quotes_the_published_code_not_a_file_of_that_name(tmp_path, monkeypatch):
    """Python fills a SyntaxError's text from the file named like the code when one exists;
    a publisher working beside its own `orders.py` must still see the line it sent."""
    (tmp_path / "orders.py").write_text("import fnhub\n")
    monkeypatch.chdir(tmp_path)
    problem = check_syntax("orders", "def broken(:\n    pass\n")
    assert problem is not None
    assert "def broken(:" in problem.message
    assert "import fnhub" not in problem.message


@pytest.mark.parametrize("name", ["json", "redis", "fnhub", "_private", "has-dash"])
def test_script_names_that_would_shadow_modules_are_refused(services, name):
    with pytest.raises(ScriptError, match=name):
        services.scripts.publish({name: GOOD})


def test_scripts_import_each_other_and_workers_pick_up_changes(
    services, client, start_worker, settings
):
    helpers = "def greeting(name):\n    return 'hello ' + name\n"
    main = (
        "import fnhub\nimport helpers\n\n@fnhub.api()\n"
        "def hi(name):\n    return helpers.greeting(name)\n"
    )
    services.scripts.publish({"helpers": helpers, "main": main})  # new together: order-free
    start_worker(processes=1)
    assert call_ok(client, "main.hi", {"name": "ada"}).result == "hello ada"
    services.scripts.publish({"main": main.replace("helpers.greeting(name)", "name.upper()")})
    assert call_ok(client, "main.hi", {"name": "ada"}).result == "ADA"


def test_rollback_moves_the_active_pointer(services, client, start_worker):
    services.scripts.publish({"maths": GOOD})
    services.scripts.publish({"maths": GOOD.replace("x * factor", "x * factor + 1")})
    start_worker(processes=1)
    assert call_ok(client, "maths.double", {"x": 2}).result == 5
    services.scripts.rollback("maths", 1)
    assert call_ok(client, "maths.double", {"x": 2}).result == 4
    with pytest.raises(ScriptError, match="has no version 9"):
        services.scripts.rollback("maths", 9)


def test_apply_project_publishes_scripts_folder(settings, services):
    (settings.project_dir / "scripts").mkdir()
    (settings.project_dir / "scripts" / "maths.py").write_text(GOOD)
    (settings.project_dir / "fnhub.yaml").write_text("settings:\n  processes: 1\n")
    [published] = apply_project(settings, services.scripts, FEATURES).scripts
    assert published.script == "maths" and published.version == 1
    (settings.project_dir / "fnhub.yaml").write_text("no_such_section: []\n")
    with pytest.raises(ValueError, match="unknown section 'no_such_section'"):
        apply_project(settings, services.scripts, FEATURES)


def test_a_folder_named_like_a_script_in_the_working_directory_does_not_block_it(
    services, tmp_path, monkeypatch
):
    (tmp_path / "maths").mkdir()  # e.g. `fnhub init maths` run where the tests run
    monkeypatch.chdir(tmp_path)
    [published] = services.scripts.publish({"maths": GOOD})
    assert published.version == 1
