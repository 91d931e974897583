"""What the console's editor needs from the server: drafts (saved, read, published, kept when
a publish is refused), where a refused publish went wrong, a script's active code in one call,
versions for diffs, and function signatures a Run form can be built from."""

from __future__ import annotations

import httpx

from .conftest import Stack

SYNTAX = "import fnhub\n\n@fnhub.api()\ndef hi(:\n    return 1\n"
GOOD = "import fnhub\n\n@fnhub.api()\ndef hi(name: str = 'you'):\n    return f'hi {name}'\n"
GOOD_2 = "import fnhub\n\n@fnhub.api()\ndef hi(name: str = 'you'):\n    return f'hello {name}'\n"


def _error(answer: httpx.Response) -> dict:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_script", error
    return error


def test_a_draft_is_saved_read_listed_and_deleted_without_publishing(stack: Stack) -> None:
    with stack.admin() as c:
        assert c.get("/api/v1/scripts/drafty/draft").status_code == 404
        assert c.get("/api/v1/scripts/drafty").status_code == 404
        saved = c.put("/api/v1/scripts/drafty/draft", json={"code": SYNTAX}).json()
        assert saved["script"] == "drafty" and saved["code"] == SYNTAX
        assert saved["base_version"] is None and saved["author"]  # a new script: no base
        assert c.get("/api/v1/scripts/drafty/draft").json() == saved
        # a draft is never validated and never published: no version, no function
        assert c.get("/api/v1/scripts/drafty/versions").status_code == 404
        assert c.get("/api/v1/functions/drafty.hi").status_code == 404
        detail = c.get("/api/v1/scripts/drafty").json()
        assert detail == {"name": "drafty", "active": None, "draft": saved}
        listed = {d["script"]: d for d in c.get("/api/v1/drafts").json()}
        assert listed["drafty"]["bytes"] == len(SYNTAX) and "code" not in listed["drafty"]
        again = c.put("/api/v1/scripts/drafty/draft", json={"code": GOOD}).json()
        assert again["code"] == GOOD and again["updated_at"] >= saved["updated_at"]
        assert c.delete("/api/v1/scripts/drafty/draft").json() == {"deleted": True}
        assert c.delete("/api/v1/scripts/drafty/draft").status_code == 404
        assert c.get("/api/v1/scripts/drafty").status_code == 404
        assert "drafty" not in {d["script"] for d in c.get("/api/v1/drafts").json()}
        refused = c.put("/api/v1/scripts/os/draft", json={"code": GOOD})
        assert (
            refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_script_name"
        )


def test_a_draft_base_version_past_32_bits_is_refused(stack: Stack) -> None:
    """A version column is a 32-bit integer: a larger base version was a database error (500,
    found by schemathesis)."""
    with stack.admin() as c:
        refused = c.put("/api/v1/scripts/big/draft", json={"code": "", "base_version": 2**70})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_request"


def test_publishing_a_draft_clears_it_and_a_refused_publish_keeps_it(stack: Stack) -> None:
    with stack.admin() as c:
        assert c.post("/api/v1/scripts/pubd/draft/publish").status_code == 404  # no draft
        c.put("/api/v1/scripts/pubd/draft", json={"code": SYNTAX})
        error = _error(c.post("/api/v1/scripts/pubd/draft/publish"))
        assert (error["script"], error["line"], error["column"]) == ("pubd", 4, 8)
        assert c.get("/api/v1/scripts/pubd/draft").json()["code"] == SYNTAX  # kept
        assert c.get("/api/v1/scripts/pubd/versions").status_code == 404

        # publish with the code: saved as the draft first, so a refusal keeps what was typed
        error = _error(c.post("/api/v1/scripts/pubd/draft/publish", json={"code": SYNTAX + "#"}))
        assert error["line"] == 4
        assert c.get("/api/v1/scripts/pubd/draft").json()["code"] == SYNTAX + "#"

        published = c.post("/api/v1/scripts/pubd/draft/publish", json={"code": GOOD})
        assert published.status_code == 200, published.text
        assert published.json()["version"] == 1 and published.json()["functions"] == ["hi"]
        assert c.get("/api/v1/scripts/pubd/draft").status_code == 404  # cleared
        assert c.post("/api/v1/functions/pubd.hi/call", json={}).json()["result"] == "hi you"

        # an edit of the published script starts from its active version
        draft = c.put("/api/v1/scripts/pubd/draft", json={"code": GOOD_2}).json()
        assert draft["base_version"] == 1
        detail = c.get("/api/v1/scripts/pubd").json()
        assert detail["active"]["code"] == GOOD and detail["active"]["version"] == 1
        assert detail["draft"]["code"] == GOOD_2
        assert c.post("/api/v1/scripts/pubd/draft/publish").json()["version"] == 2
        assert c.get("/api/v1/scripts/pubd").json()["draft"] is None

        # PUT /scripts/{name} of other code leaves the draft; of the draft's code clears it
        c.put("/api/v1/scripts/pubd/draft", json={"code": GOOD})
        assert c.put("/api/v1/scripts/pubd", json={"code": GOOD_2}).status_code == 200
        assert c.get("/api/v1/scripts/pubd/draft").status_code == 200
        assert c.put("/api/v1/scripts/pubd", json={"code": GOOD}).json()["version"] == 3
        assert c.get("/api/v1/scripts/pubd/draft").status_code == 404


def test_a_refused_publish_says_where_in_the_script(stack: Stack) -> None:
    syntax = "import fnhub\n\nx = (1 +* 2)\n"
    loading = "import fnhub\n\nx = 1\nundefined_name\n"
    duplicate = (
        "import fnhub\n\n@fnhub.api()\ndef f():\n    pass\n\n@fnhub.api()\ndef f():\n    pass\n"
    )
    with stack.admin() as c:
        error = _error(c.put("/api/v1/scripts/where", json={"code": syntax}))
        assert "syntax error at line 3, column 9" in error["message"]  # the message as before
        assert (error["script"], error["line"], error["column"]) == ("where", 3, 9)
        assert (error["end_line"], error["end_column"]) == (3, 10)

        error = _error(c.put("/api/v1/scripts/where", json={"code": loading}))
        assert "NameError" in error["message"] and error["line"] == 4
        assert "column" not in error

        error = _error(c.put("/api/v1/scripts/where", json={"code": duplicate}))
        assert (error["line"], error["column"]) == (8, 1)

        # the failing frame is in an imported script: the importing line is what to mark here
        helper = "import fnhub\n\n\ndef boom():\n    return 1 / 0\n"
        assert c.put("/api/v1/scripts/where_helper", json={"code": helper}).status_code == 200
        importer = "import fnhub\nimport where_helper\n\nVALUE = where_helper.boom()\n"
        error = _error(c.put("/api/v1/scripts/where", json={"code": importer}))
        assert (
            "ZeroDivisionError" in error["message"] and "where_helper.py line 5" in error["message"]
        )
        assert error["line"] == 4
        assert c.get("/api/v1/scripts/where/versions").status_code == 404


def test_versions_give_the_code_to_diff_and_roll_back_to(stack: Stack) -> None:
    with stack.admin() as c:
        c.put("/api/v1/scripts/hist", json={"code": GOOD})
        c.put("/api/v1/scripts/hist", json={"code": GOOD_2})
        versions = c.get("/api/v1/scripts/hist/versions").json()
        assert [(v["version"], v["active"], v.get("code")) for v in versions] == [
            (2, True, None),
            (1, False, None),
        ]
        one = c.get("/api/v1/scripts/hist/versions/1").json()
        assert (one["code"], one["active"], one["functions"]) == (GOOD, False, ["hi"])
        assert c.get("/api/v1/scripts/hist/versions/3").status_code == 404
        huge = 2**64  # past any database's integer: refused, not a server error
        assert c.get(f"/api/v1/scripts/hist/versions/{huge}").status_code == 422
        assert c.post("/api/v1/scripts/hist/rollback", json={"version": huge}).status_code == 422
        assert c.post("/api/v1/scripts/hist/rollback", json={"version": 1}).status_code == 200
        assert c.get("/api/v1/scripts/hist").json()["active"]["code"] == GOOD


def test_function_parameters_describe_a_run_form(stack: Stack) -> None:
    code = (
        "import fnhub\n\n@fnhub.api()\n"
        "def form(a: int, b: list[str] | None = None, *, c: float = 1.5, d=2j, **rest):\n"
        "    return a\n"
    )
    with stack.admin() as c:
        assert c.put("/api/v1/scripts/formy", json={"code": code}).status_code == 200
        params = c.get("/api/v1/functions/formy.form").json()["params"]
    assert params == [
        {"name": "a", "kind": "positional_or_keyword", "required": True, "default": None,
         "annotation": "int"},
        {"name": "b", "kind": "positional_or_keyword", "required": False, "default": None,
         "annotation": "list[str] | None"},
        {"name": "c", "kind": "keyword_only", "required": False, "default": 1.5,
         "annotation": "float"},
        {"name": "d", "kind": "keyword_only", "required": False, "default": "2j",
         "annotation": None},
        {"name": "rest", "kind": "var_keyword", "required": False, "default": None,
         "annotation": None},
    ]  # fmt: skip


def test_the_function_list_follows_publishes_and_deletes(stack: Stack) -> None:
    """The lists are encoded once per scripts revision: a publish, a rollback or a delete
    shows at once."""
    with stack.admin() as c:

        def refs() -> set[str]:
            return {f["ref"] for f in c.get("/api/v1/functions").json()}

        def versions() -> dict[str, int]:
            return {s["name"]: s["version"] for s in c.get("/api/v1/scripts").json()}

        assert "listed.hi" not in refs() and "listed" not in versions()
        assert c.put("/api/v1/scripts/listed", json={"code": GOOD}).status_code == 200
        assert "listed.hi" in refs() and versions()["listed"] == 1
        assert c.put("/api/v1/scripts/listed", json={"code": GOOD_2}).status_code == 200
        assert versions()["listed"] == 2
        assert c.post("/api/v1/scripts/listed/rollback", json={"version": 1}).status_code == 200
        assert versions()["listed"] == 1
        one = c.get("/api/v1/functions", params={"script": "listed"}).json()
        assert [f["ref"] for f in one] == ["listed.hi"]
        assert c.get("/api/v1/functions/listed.hi").json() == one[0]
        assert c.delete("/api/v1/scripts/listed").status_code == 200
        assert "listed.hi" not in refs() and "listed" not in versions()
