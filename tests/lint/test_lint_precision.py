"""Precision and recall on real code (issue 12): test paths, unresolved receivers, `**params`,
raw HTTP to LLM endpoints by path, `functools.partial`, module constants, prompts built in lists."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from llmguard.lint import LintConfig, lint_source, load_config
from llmguard.lint.config import config_from_table
from llmguard.lint.engine import Engine


def _findings(source: str, path: str = "app.py", config: LintConfig | None = None, codes: set[str] | None = None):
    config = config or LintConfig()
    engine = Engine(config, frozenset(codes) if codes else None)
    return engine.lint_text(textwrap.dedent(source), path).findings


def _codes(source: str, path: str = "app.py", config: LintConfig | None = None, codes: set[str] | None = None):
    return [(f.code, f.line) for f in _findings(source, path, config, codes)]


# -- 1. test paths: LG201 and LG301 are off there unless include-tests = true ---------------------------
TEST_FILE = """
from openai import OpenAI
client = OpenAI()
client.chat.completions.create(model="gpt-4o-mini", messages=[])
forever = OpenAI(timeout=None)
"""
TEST_CODES = {"LG201", "LG202", "LG301"}  # other rules (new ones too) are not what these tests are about


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_app.py",
        "tests/helpers/fake_llm.py",
        "test_app.py",
        "pkg/app_test.py",
        "conftest.py",
        "pkg/tests/conftest.py",
        "test/test_client.py",
    ],
)
def test_test_files_skip_lg201_and_lg301_but_not_other_rules(path):
    assert _codes(TEST_FILE, path, codes=TEST_CODES) == [("LG202", 5)]


@pytest.mark.parametrize(
    "path",
    ["app.py", "src/attest.py", "pkg/latest.py", "contest.py", "mytests/app.py", "testing/app.py", "pkg/testdata.py"],
)
def test_other_files_keep_lg201_and_lg301(path):
    assert _codes(TEST_FILE, path, codes=TEST_CODES) == [("LG201", 3), ("LG301", 4), ("LG202", 5)]


def test_include_tests_turns_them_back_on():
    config = config_from_table({"include-tests": True})
    assert config.include_tests
    assert _codes(TEST_FILE, "tests/test_app.py", config, TEST_CODES) == [("LG201", 3), ("LG301", 4), ("LG202", 5)]
    assert config_from_table({"include_tests": True}).include_tests  # underscores are accepted too


def test_include_tests_must_be_a_boolean():
    from llmguard.lint import LintConfigError

    with pytest.raises(LintConfigError, match="include-tests must be true or false, got 'yes'"):
        config_from_table({"include-tests": "yes"})


def test_test_paths_are_relative_to_the_config_root(tmp_path):
    root = tmp_path / "tests" / "project"  # the project itself lives in a folder named tests
    config = LintConfig(root=root)
    assert _codes(TEST_FILE, str(root / "app.py"), config, TEST_CODES) == [("LG201", 3), ("LG301", 4), ("LG202", 5)]
    assert _codes(TEST_FILE, str(root / "tests" / "test_app.py"), config, TEST_CODES) == [("LG202", 5)]


def test_cli_skips_tests_and_per_file_ignores_still_apply(cli, project):
    root = project(
        {
            "pyproject.toml": """
            [tool.llmguard.lint]
            per-file-ignores = { "tests/test_sim.py" = ["LG202"], "src/legacy.py" = ["LG201"] }
        """,
            "tests/test_sim.py": TEST_FILE,
            "tests/test_other.py": TEST_FILE,
            "src/legacy.py": TEST_FILE,
        }
    )
    found = sorted(
        (f["file"], f["code"])
        for f in cli(["lint", ".", "--format", "json", "--no-cache", "--select", "LG201,LG202,LG301"], cwd=root).json()
    )
    assert found == [("src/legacy.py", "LG202"), ("src/legacy.py", "LG301"), ("tests/test_other.py", "LG202")]
    (root / "pyproject.toml").write_text(
        '[tool.llmguard.lint]\ninclude-tests = true\nper-file-ignores = { "tests/test_sim.py" = ["LG201"] }\n'
    )
    found = sorted(
        (f["file"], f["code"])
        for f in cli(
            ["lint", "tests", "--format", "json", "--no-cache", "--select", "LG201,LG202,LG301"], cwd=root
        ).json()
    )
    assert found == [
        ("tests/test_other.py", "LG201"),
        ("tests/test_other.py", "LG202"),
        ("tests/test_other.py", "LG301"),
        ("tests/test_sim.py", "LG202"),
        ("tests/test_sim.py", "LG301"),
    ]


def test_this_repository_keeps_its_per_file_ignores():
    config = load_config(Path(__file__).parent)
    ignores = dict(config.per_file_ignores)
    assert ignores["tests/sim/test_sim_chat.py"] == ("LG201", "LG301")
    assert not config.include_tests


def test_lint_keys_under_tool_llmguard_warn_once(project, capsys):
    root = project({"pyproject.toml": "[tool.llmguard]\ntimeout_s = 30\nselect = ['LG2']\nignore = ['LG201']\n"})
    config = load_config(root)
    err = capsys.readouterr().err
    assert "select, ignore" in err and "[tool.llmguard.lint]" in err and str(root / "pyproject.toml") in err
    assert "ignored" in err
    assert config.select == ("ALL",)  # still not applied: they are in the wrong table
    load_config(root)
    assert capsys.readouterr().err == ""  # once per file and process


def test_lint_keys_next_to_a_lint_table_warn_too(cli, project):
    root = project(
        {
            "pyproject.toml": "[tool.llmguard]\nignore = ['LG201']\n[tool.llmguard.lint]\nselect = ['LG2']\n",
            "a.py": "import openai\nopenai.OpenAI()\n",
        }
    )
    result = cli(["lint", "a.py"], cwd=root)
    assert result.code == 1
    assert "[tool.llmguard] has lint settings (ignore)" in result.err
    assert "[tool.llmguard.lint]" in result.err


def test_runtime_keys_under_tool_llmguard_do_not_warn(project, capsys):
    root = project({"pyproject.toml": "[tool.llmguard]\ntimeout_s = 30\nmax_attempts = 3\n"})
    load_config(root)
    assert capsys.readouterr().err == ""


# -- 2. an unresolved receiver is not assumed to be OpenAI ---------------------------------------
def test_self_in_a_subclass_of_anthropic_is_an_anthropic_client():
    source = """
    from anthropic import Anthropic
    class Bot(Anthropic):
        def legacy(self, text):
            return self.completions.create(model="claude-2.1", prompt=text, max_tokens_to_sample=300)
        def ask(self, text):
            return self.messages.create(model="claude-3-5-haiku-latest", messages=[{"role": "user", "content": text}])
    """
    found = _findings(source, codes={"LG301"})
    assert [(f.line, f.confidence) for f in found] == [(7, "high")]
    assert "max_tokens" in found[0].message


def test_unknown_receiver_of_completions_accepts_either_sdks_argument():
    source = """
    def ask(llm, text):
        llm.completions.create(model="claude-2.1", prompt=text, max_tokens_to_sample=300)
        llm.completions.create(model="gpt-3.5-turbo-instruct", prompt=text, max_tokens=300)
        return llm.completions.create(model=MODEL, prompt=text)
    """
    found = _findings(source, codes={"LG301"})
    assert [(f.line, f.confidence) for f in found] == [(5, "low")]
    assert "max_tokens or max_tokens_to_sample" in found[0].message


def test_subclass_of_openai_resolves_self():
    source = """
    import openai
    class Chat(openai.OpenAI):
        def ask(self, msgs):
            return self.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    """
    assert [(f.line, f.confidence) for f in _findings(source, codes={"LG301"})] == [(5, "high")]


# -- 3. **params is looked into, not taken as proof --------------------------------------------
def test_star_params_from_a_local_dict_are_resolved():
    source = """
    from openai import OpenAI
    good = {"timeout": 30, "max_retries": 2}
    ok = OpenAI(**good)
    bad = {"api_key": "k"}
    client = OpenAI(**bad)
    """
    assert _codes(source, codes={"LG201"}) == [("LG201", 6)]


def test_star_params_resolve_max_tokens_and_timeout_of_calls():
    source = """
    from openai import OpenAI
    client = OpenAI()
    def ask(msgs):
        opts = {"model": "gpt-4o-mini", "messages": msgs, "timeout": 10}
        client.chat.completions.create(**opts)
        bounded = dict(model="gpt-4o-mini", messages=msgs, max_tokens=50, timeout=10)
        return client.chat.completions.create(**bounded)
    """
    assert _codes(source, codes={"LG201", "LG301"}) == [("LG301", 6)]


def test_star_params_with_a_later_subscript_assignment():
    source = """
    from openai import OpenAI
    client = OpenAI(timeout=10)
    def ask(msgs, limit):
        params = {"model": "gpt-4o-mini", "messages": msgs}
        params["max_tokens"] = limit
        return client.chat.completions.create(**params)
    def ask2(msgs, limit):
        params = {"model": "gpt-4o-mini", "messages": msgs}
        params.update(max_completion_tokens=limit)
        return client.chat.completions.create(**params)
    """
    assert _codes(source, codes={"LG301"}) == []


def test_star_params_with_a_key_chosen_at_run_time():
    """llmguard/magics/cell_llm.py: `{bound: max_tokens}` with bound one of the two bound names."""
    source = """
    from openai import OpenAI
    client = OpenAI(timeout=10)
    def ask(model, msgs, limit):
        bound = "max_completion_tokens" if model.startswith("o") else "max_tokens"
        kwargs = {"model": model, "messages": msgs, bound: limit}
        return client.chat.completions.create(**kwargs)
    def other(model, msgs, value):
        name = "max_tokens" if model.startswith("o") else "temperature"
        return client.chat.completions.create(model=model, messages=msgs, **{name: value})
    """
    found = _findings(source, codes={"LG201", "LG301"})
    assert [(f.code, f.line, f.confidence) for f in found] == [("LG301", 10, "low")]
    assert "chosen at run time" in found[0].message


def test_unresolved_star_params_are_reported_with_low_confidence():
    source = """
    from openai import OpenAI
    client = OpenAI(**load_settings())
    def ask(msgs):
        return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, **self_options())
    """
    found = _findings(source, codes={"LG201", "LG301"})
    assert [(f.code, f.line, f.confidence) for f in found] == [("LG201", 3, "low"), ("LG301", 5, "low")]
    assert all("could not see inside **" in f.message for f in found)
    assert all(f.fix is None for f in found)  # never --fix a guess


def test_forwarded_star_kwargs_leave_the_bound_to_the_caller():
    source = """
    from openai import OpenAI
    def make_client(**kwargs):
        return OpenAI(**kwargs)
    def ask(client, **params):
        return client.chat.completions.create(**params)
    """
    assert _codes(source, codes={"LG201", "LG301"}) == []


def test_max_tokens_none_inside_star_params():
    source = """
    from openai import OpenAI
    client = OpenAI(timeout=10)
    params = {"model": "gpt-4o-mini", "max_tokens": None}
    client.chat.completions.create(messages=[], **params)
    """
    assert _codes(source, codes={"LG301", "LG302"}) == [("LG302", 4)]  # reported at the None, in the dict


# -- 4. raw HTTP to LLM endpoints, recognised by path too ----------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        'requests.post(f"{base_url}/chat/completions", json=body)',
        'requests.post(base_url + "/v1/messages", json=body, headers=headers)',
        'requests.post(url=f"{self.base_url}/api/generate", json=body)',
        'requests.post(f"{self.endpoint}/v1beta/models/{model}:generateContent?key={key}", json=body)',
        'requests.post(f"{host}/models/{model}:streamGenerateContent", json=body, stream=True)',
        'requests.post(f"{base}/embeddings", json=body)',
        'requests.request("POST", f"{base}/v1/responses", json=body)',
        'requests.post(OLLAMA + "/api/chat", json=body)',
    ],
)
def test_raw_http_to_an_llm_path_without_timeout(call):
    source = f"import requests\ndef ask(self, base_url, base, host, model, key, body, headers):\n    return {call}\n"
    assert _codes(source, codes={"LG204"}) == [("LG204", 3)]


def test_raw_http_url_in_a_variable_and_a_session():
    source = """
    import requests
    def ask(base, body):
        url = f"{base}/chat/completions"
        session = requests.Session()
        session.post(url, json=body)
        return requests.post(url, json=body, timeout=60)
    """
    assert _codes(source, codes={"LG204"}) == [("LG204", 6)]


def test_raw_http_url_in_a_class_field():
    source = """
    import requests
    class Endpoint:
        endpoint_url: str = "http://localhost:8000/v1/completions"
        def ask(self, body):
            return requests.post(self.endpoint_url, json=body)
    """
    assert _codes(source, codes={"LG204"}) == [("LG204", 6)]


def test_httpx_timeout_none_to_an_llm_path_is_lg202():
    source = """
    import httpx
    async def ask(base, body):
        return await httpx.AsyncClient().post(f"{base}/chat/completions", json=body, timeout=None)
    """
    assert _codes(source, codes={"LG202", "LG204"}) == [("LG202", 4)]


@pytest.mark.parametrize(
    "url",
    [
        'f"{base}/users/completions-report/{uid}"',
        'f"{base}/survey/responses/{rid}"',
        'f"{base}/orders"',
        'base + "/messages/unread"',
    ],
)
def test_raw_http_to_other_paths_is_not_lg204(url):
    source = f"import requests\ndef get(base, uid, rid):\n    return requests.get({url})\n"
    assert _codes(source, codes={"LG204"}) == []


def test_raw_http_by_path_through_lint_paths(project):
    from llmguard.lint import lint_paths

    root = project(
        {
            "client.py": 'import requests\ndef ask(b, body):\n    return requests.post(f"{b}/chat/completions", json=body)\n'
        }
    )
    result = lint_paths([str(root)], LintConfig(root=root), use_cache=False, jobs=1)
    assert [(f.code, f.line) for f in result.findings] == [("LG204", 3)]


def test_raw_http_by_path_in_a_notebook_cell():
    """lint_source's cheap prefilter must let a cell with only an endpoint path through."""
    cell = 'import requests\nr = requests.post(f"{BASE}/chat/completions", json={"model": "llama3"})\n'
    assert [(f.code, f.line) for f in lint_source(cell)] == [("LG204", 2)]


# -- 5. functools.partial, module constants, documents in lists of messages ----------------------
def test_partial_of_an_sdk_method_called_without_max_tokens():
    source = """
    import functools
    from functools import partial
    from openai import OpenAI
    client = OpenAI(timeout=30)
    ask = functools.partial(client.chat.completions.create, model="gpt-4o-mini")
    ask(messages=[])
    bounded = partial(client.chat.completions.create, model="gpt-4o-mini", max_tokens=100)
    bounded(messages=[])
    later = partial(client.chat.completions.create, model="gpt-4o-mini")
    later(messages=[], max_completion_tokens=100)
    """
    found = _findings(source, codes={"LG301"})
    assert [(f.line, f.confidence) for f in found] == [(6, "high")]
    assert found[0].fix == "add max_completion_tokens=1024"


def test_partial_fix_adds_the_bound_to_the_partial():
    from llmguard.lint.fixer import fix_source

    source = (
        "import functools\nfrom openai import OpenAI\nclient = OpenAI(timeout=30)\n"
        "ask = functools.partial(client.chat.completions.create, model='gpt-4o-mini')\nask(messages=[])\n"
    )
    fixed, applied = fix_source(Engine(LintConfig(), frozenset({"LG301"})), source, "app.py")
    assert applied == 1
    assert "functools.partial(client.chat.completions.create, model='gpt-4o-mini', max_completion_tokens=1024)" in fixed


def test_module_constant_none_as_max_tokens():
    source = """
    from openai import OpenAI
    MAX = None
    LIMIT = 500
    client = OpenAI(timeout=30)
    client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=MAX)
    client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=LIMIT)
    def ask(msgs, max_tokens=None):  # a parameter: the caller decides
        return client.chat.completions.create(model="gpt-4o-mini", messages=msgs, max_tokens=max_tokens)
    """
    assert _codes(source, codes={"LG301", "LG302"}) == [("LG302", 6)]


def test_module_constant_reassigned_is_not_resolved():
    source = """
    from openai import OpenAI
    MAX = None
    def configure(n):
        global MAX
        MAX = n
    client = OpenAI(timeout=30)
    client.chat.completions.create(model="gpt-4o-mini", messages=[], max_tokens=MAX)
    """
    assert _codes(source, codes={"LG302"}) == []


def test_module_constant_none_as_timeout():
    source = """
    from openai import OpenAI
    TIMEOUT = None
    client = OpenAI(timeout=TIMEOUT)
    """
    assert _codes(source, codes={"LG202"}) == [("LG202", 4)]


_HEAD = """
from openai import OpenAI
client = OpenAI(timeout=30)
"""


@pytest.mark.parametrize(
    "body",
    [
        # appended to the list of messages
        """
    messages = [{"role": "system", "content": "Summarise."}]
    with open(path) as f:
        messages.append({"role": "user", "content": f.read()})
    """,
        # one of two bindings
        """
    if path is None:
        messages = [{"role": "user", "content": "hi"}]
    else:
        with open(path) as f:
            messages = [{"role": "user", "content": f.read()}]
    """,
        # a list comprehension
        """
    messages = [{"role": "user", "content": open(p).read()} for p in [path]]
    """,
        # list concatenation
        """
    with open(path) as f:
        messages = [{"role": "system", "content": "x"}] + [{"role": "user", "content": f.read()}]
    """,
        # extended
        """
    messages = []
    with open(path) as f:
        messages.extend([{"role": "user", "content": f.read()}])
    """,
        # += on the list
        """
    messages = [{"role": "system", "content": "x"}]
    with open(path) as f:
        messages += [{"role": "user", "content": f.read()}]
    """,
    ],
    ids=["append", "one-of-two-bindings", "comprehension", "list-plus-list", "extend", "plus-equals"],
)
def test_document_read_reaches_the_prompt_through_a_list_of_messages(body):
    source = (
        _HEAD
        + "def ask(path):\n"
        + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
        + ('\n    return client.chat.completions.create(model="gpt-4o-mini", max_tokens=9, messages=messages)\n')
    )
    assert [c for c, _ in _codes(source, codes={"LG402"})] == ["LG402"]


def test_truncated_read_appended_is_not_lg402():
    source = (
        _HEAD
        + """
def ask(path):
    messages = []
    with open(path) as f:
        messages.append({"role": "user", "content": f.read()[:8000]})
    return client.chat.completions.create(model="gpt-4o-mini", max_tokens=9, messages=messages)
"""
    )
    assert _codes(source, codes={"LG402"}) == []


def test_template_appended_to_messages_is_lg403(project):
    root = project({"prompts/system.txt": "word " * 3000})
    source = (
        _HEAD
        + """
messages = []
messages.append({"role": "system", "content": open("prompts/system.txt").read()})
client.chat.completions.create(model="gpt-4o-mini", max_tokens=9, messages=messages)
"""
    )
    found = _codes(source, str(root / "app.py"), LintConfig(root=root), codes={"LG403"})
    assert found == [("LG403", 6)]  # where the template is read, in the append
