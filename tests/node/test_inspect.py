"""Publishing-time validation of JavaScript scripts (inspect_js) and finding Node (find_node),
on the machine's real `node`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fnhub.node.inspect import inspect_js
from fnhub.node.locate import MIN_NODE_MAJOR, NodeBinary, NodeNotFound, find_node
from fnhub.scripts.inspect import ScriptError


@pytest.fixture(scope="module")
def node() -> NodeBinary:
    return find_node()


def _error(node: NodeBinary, pending: dict[str, str], **active: str) -> ScriptError:
    with_hashes = {n: (c, hashlib.sha256(c.encode()).hexdigest()) for n, c in active.items()}
    with pytest.raises(ScriptError) as caught:
        inspect_js(pending, with_hashes, node=node)
    return caught.value


EXPORTS = """
const fnhub = require('fnhub');
exports.greet = fnhub.api(
  { title: 'Greet', timeout: 5, retryDelay: 2, max_attempts: 4, tags: ['b', 'a', 'b'],
    doc: 'Says hi.' },
  async ({ name = 'world', times = 3, loud, ...rest }) => name,
);
exports.handler = (event, context, callback) => callback(null, event);
exports.modern = async (event, context) => event;
exports.any = (args) => args;
exports.none = () => 1;
exports.strict = ({}) => 1;
exports._private = () => 1;
exports.notAFunction = 42;
"""


def test_exported_functions_params_conventions_and_options(node: NodeBinary) -> None:
    found = inspect_js({"main": EXPORTS}, {}, node=node)
    by_name = {f.name: f for f in found["main"]}
    assert sorted(by_name) == ["any", "greet", "handler", "modern", "none", "strict"]
    greet = by_name["greet"]
    assert (greet.script, greet.is_async, greet.convention, greet.doc) == (
        "main",
        True,
        "kwargs",
        "Says hi.",
    )
    assert [(p.name, p.kind, p.required, p.default) for p in greet.params] == [
        ("name", "keyword_only", False, "world"),
        ("times", "keyword_only", False, 3),
        ("loud", "keyword_only", True, None),
        ("rest", "var_keyword", False, None),
    ]
    options = greet.options
    assert (options.title, options.timeout, options.retry_delay, options.max_attempts) == (
        "Greet",
        5,
        2,
        4,
    )
    assert options.tags == ["a", "b"]
    assert greet.check_kwargs({"loud": True, "extra": 1}) is None
    assert greet.check_kwargs({}) == "main.greet() missing required argument(s): loud"
    for name in ("handler", "modern"):
        info = by_name[name]
        assert info.convention == "event_context"
        assert [p.name for p in info.params] == ["event", "context"]
    assert by_name["any"].check_kwargs({"whatever": 1}) is None
    assert by_name["none"].check_kwargs({"whatever": 1}) is None
    assert by_name["strict"].check_kwargs({"x": 1}) == (
        "main.strict() got unexpected keyword argument(s): x"
    )


def test_es_module_exports_and_imports_of_active_scripts(node: NodeBinary) -> None:
    helper = "exports.base = 1;\n"
    found = inspect_js(
        {
            "esm": "import fnhub from 'fnhub';\nimport { base } from './helper.js';\n"
            "export const f = fnhub.api({ queue: 'fast' }, async ({ n = base }) => n);\n"
            "export default function ignored() {}\n"
        },
        {"helper": (helper, hashlib.sha256(helper.encode()).hexdigest())},
        node=node,
    )
    [f] = found["esm"]
    assert (f.name, f.options.queue, f.params[0].default) == ("f", "fast", None)
    assert inspect_js({"empty": "const x = 1;\n"}, {}, node=node) == {"empty": []}


def test_commonjs_syntax_error_has_line_and_column(node: NodeBinary) -> None:
    error = _error(node, {"bad": "const a = 1;\nconst b = a +* 2;\n"})
    assert (error.script, error.line, error.column) == ("bad", 2, 14)
    assert error.detail.startswith("syntax error at line 2, column 14: Unexpected token '*'")
    assert error.detail.endswith("const b = a +* 2;\n                 ^")


def test_es_module_syntax_error_has_line_and_column(node: NodeBinary) -> None:
    error = _error(node, {"bad": "import fnhub from 'fnhub';\n\nexport const f = () => { a b };\n"})
    assert (error.script, error.line, error.column) == ("bad", 3, 28)
    assert "Unexpected identifier 'b'" in error.detail


def test_throw_at_load_is_refused_with_its_message_and_line(node: NodeBinary) -> None:
    error = _error(node, {"boom": "const x = 1;\n\nthrow new TypeError('no config');\n"})
    assert (error.script, error.line) == ("boom", 3)
    assert error.detail == (
        "error while loading: TypeError: no config (boom.js line 3: "
        "throw new TypeError('no config');)"
    )
    error = _error(
        node, {"boom": "export const f = () => 1;\nawait Promise.reject(new Error('tla'));\n"}
    )
    assert error.detail.startswith("error while loading: Error: tla")


def test_broken_import_names_the_imported_script(node: NodeBinary) -> None:
    error = _error(
        node, {"main": "const h = require('./h');\nexports.f = () => h;\n"}, h="exports.x = (;\n"
    )
    assert error.script == "main"
    assert error.detail.startswith("imported script h: syntax error at line 1, column 14")
    error = _error(node, {"main": "const h = require('./missing');\nexports.f = () => h;\n"})
    assert "Cannot find module './missing'" in error.detail and error.line == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{ timout: 3 }", "unknown fnhub.api option `timout` (did you mean 'timeout'?)"),
        ("{ timeout: -1 }", "timeout must be in (0, 86400] seconds, got -1.0"),
        ("{ tags: 'x' }", "fnhub.api option `tags`: expected `array`, got `str`"),
        ("{ queue: 'a b' }", "queue name must be letters, digits, '-' or '_', got 'a b'"),
        ("{ retry_delay: 1, retryDelay: 2 }", "fnhub.api option `retry_delay` given twice"),
    ],
)
def test_bad_options_are_refused_like_pythons(node: NodeBinary, options: str, message: str) -> None:
    code = f"const fnhub = require('fnhub');\nexports.f = fnhub.api({options}, () => 1);\n"
    error = _error(node, {"opts": code})
    assert error.detail.startswith(f"cannot export f: {message}")


def test_find_node_checks_the_version(node: NodeBinary) -> None:
    assert node.version[0] >= MIN_NODE_MAJOR
    assert os.path.isabs(node.path)
    assert find_node(node.path) == node


def test_node_not_found_says_what_was_tried(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(
        NodeNotFound, match="node_path setting '/nowhere/node' is not an executable"
    ):
        find_node("/nowhere/node")
    fake = tmp_path / "node"
    fake.write_text("#!/bin/sh\necho v12.22.0\n")
    fake.chmod(0o755)
    with pytest.raises(NodeNotFound, match=r"is Node 12\.22\.0; fnhub needs 18 or newer"):
        find_node(str(fake))
    fake.write_text("#!/bin/sh\necho hello\n")
    with pytest.raises(NodeNotFound, match="is not Node"):
        find_node(str(tmp_path / "." / "node"))  # another path: not the cached answer
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(NodeNotFound, match="no `node` on PATH"):
        find_node()


def test_a_script_that_never_finishes_loading_is_refused(node: NodeBinary, monkeypatch) -> None:
    import fnhub.node.inspect as inspect_module

    monkeypatch.setattr(inspect_module, "INSPECT_TIMEOUT_SECONDS", 1.0)
    error = _error(node, {"forever": "while (true) {}\nexports.f = () => 1;\n"})
    assert (error.script, error.detail) == ("forever", "loading took over 1s")
