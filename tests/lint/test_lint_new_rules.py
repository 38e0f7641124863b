"""The rules of issue 12 (LG205, LG304, LG305, LG306, LG501, LG601) beyond their own examples: the CLI
finds each on a realistic file, `rule CODE` documents it, an API key never leaves the linter
unmasked, and the prefilter skips files that cannot match."""

from __future__ import annotations

import json

import pytest
from conftest import make_notebook

from llmguard.lint import LintConfig, lint_notebook_source, lint_paths, lint_source
from llmguard.lint.engine import Engine
from llmguard.lint.keys import find_keys, redact
from llmguard.lint.prefilter import may_need_rules
from llmguard.lint.rules import get_rule

# Built from pieces: no literal in this file is a key (the project lints itself with LG501).
OPENAI_KEY = "sk-proj-" + "Zr4Kx8Lq2Vm6Tn0Wb3Yc7Hd1Jf5Gs9Pa4Ue8Io2Ql6"
ANTHROPIC_KEY = "sk-ant-api03-" + "Hb5Nx2Qw8Er4Ty7Ui1Op3As6Df9Gh0Jk2Lz5Xc8Vb1Nm4Qw7Er3Ty6Ui9Op2As5Df8G4d2b"
GOOGLE_KEY = "AIza" + "SyD4k9Lm2Np7Qr1St6Uv3Wx8Yz5Ab0Cd2Ef"
KEYS = (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY)
MASKED = ("sk-proj-…" + OPENAI_KEY[-4:], "sk-ant-…4d2b", "AIza…" + GOOGLE_KEY[-4:])
NEW_CODES = ("LG205", "LG304", "LG305", "LG306", "LG501", "LG601")

APP = """\
import litellm
from langchain_openai import ChatOpenAI
from openai import OpenAI

client = OpenAI(api_key="{key}", timeout=30)
llm = ChatOpenAI(model="gpt-4o-mini", max_tokens=256)


def brainstorm(topic, samples):
    return client.chat.completions.create(model="gpt-4o-mini", max_tokens=200, n=samples,
                                          messages=[{{"role": "user", "content": topic}}])


def solve(problem):
    return client.chat.completions.create(model="o3-mini", max_completion_tokens=2000, temperature=0,
                                          messages=[{{"role": "user", "content": problem}}])


def translate(text):
    return client.chat.completions.create(model="gpt-4o-mni", max_tokens=300,
                                          messages=[{{"role": "user", "content": text}}])


def embed_all(docs):
    return [client.embeddings.create(model="text-embedding-3-small", input=doc) for doc in docs]


def summarise(text):
    return litellm.completion(model="anthropic/claude-3-5-haiku-latest", max_tokens=300,
                              messages=[{{"role": "user", "content": text[:4000]}}])
"""


def test_the_cli_finds_each_new_rule_in_a_realistic_file(cli, project):
    root = project({"app.py": APP.format(key=OPENAI_KEY)})
    result = cli(["lint", "app.py", "--format", "json", "--no-cache"], cwd=root)
    assert result.code == 1, result.err
    found = sorted((f["code"], f["line"]) for f in result.json())
    assert found == [
        ("LG205", 6),
        ("LG205", 29),
        ("LG304", 10),
        ("LG305", 15),
        ("LG306", 20),
        ("LG501", 5),
        ("LG601", 25),
    ]
    messages = {f["code"]: f["message"] for f in result.json()}
    assert "did you mean 'gpt-4o-mini'?" in messages["LG306"]
    assert messages["LG305"].startswith("temperature is not supported by the reasoning model 'o3-mini'")
    assert messages["LG304"].startswith("n=samples is not a visible literal")
    assert messages["LG601"].startswith("embeddings.create runs once per item of `docs`")
    fixes = {(f["code"], f["line"]): f["fix"] for f in result.json()}
    assert fixes[("LG205", 6)] == {"description": "add timeout=60", "applicability": "safe"}


@pytest.mark.parametrize("code", NEW_CODES)
def test_rule_command_prints_the_docs(cli, code):
    rule = get_rule(code)
    doc = cli(["rule", code])
    assert doc.code == 0
    assert doc.out.startswith(f"# {code} {rule.name}\n\n{rule.summary}")
    for heading in ("## What it does", "## Why is this bad", "## Example", "## Use instead"):
        assert heading in doc.out
    assert ("Fix: `llmguard lint --fix`" in doc.out) == rule.fixable
    assert cli(["rule", rule.name]).out == doc.out
    assert not any(key in doc.out for key in KEYS) and not list(find_keys(doc.out))


KEY_FILE = """\
import os

# rotated on Monday, the old one was {anthropic}
OPENAI_KEY = "{openai}"
GOOGLE = {{"url": f"https://generativelanguage.googleapis.com/v1/models?key={google}"}}
fallback = os.environ.get("OPENAI_API_KEY", "sk-...")
"""


@pytest.mark.parametrize("fmt", ["json", "sarif", "github", "concise"])
def test_keys_are_masked_in_every_output_format(cli, project, fmt):
    root = project({"keys.py": KEY_FILE.format(openai=OPENAI_KEY, anthropic=ANTHROPIC_KEY, google=GOOGLE_KEY)})
    args = ["--concise"] if fmt == "concise" else ["--format", fmt]
    result = cli(["lint", "keys.py", "--no-cache", *args], cwd=root)
    assert result.code == 1, result.err
    for key in KEYS:
        assert key not in result.out and key[4:-4] not in result.out
    shown = json.dumps(json.loads(result.out), ensure_ascii=False) if fmt in ("json", "sarif") else result.out
    for masked in MASKED:
        assert masked in shown
    if fmt == "json":
        assert sorted((f["code"], f["line"]) for f in result.json()) == [("LG501", 3), ("LG501", 4), ("LG501", 5)]


def test_keys_are_masked_in_the_full_text_format(cli, project):
    root = project({"keys.py": KEY_FILE.format(openai=OPENAI_KEY, anthropic=ANTHROPIC_KEY, google=GOOGLE_KEY)})
    result = cli(["lint", "keys.py", "--no-cache"], cwd=root)
    assert result.code == 1
    assert not any(key in result.out for key in KEYS)


def test_key_shapes_placeholders_and_masks():
    text = f"a={OPENAI_KEY} b={ANTHROPIC_KEY} c={GOOGLE_KEY}"
    assert [(k.provider, k.masked) for k in find_keys(text)] == [
        ("openai", MASKED[0]),
        ("anthropic", "sk-ant-…4d2b"),
        ("google", MASKED[2]),
    ]
    assert redact(text) == f"a={MASKED[0]} b=sk-ant-…4d2b c={MASKED[2]}"
    placeholders = [
        "sk-...",
        "sk-xxx",
        "sk-" + "x" * 48,
        "sk-test-" + "Ab3dE5" * 8,
        "<your key>",
        "sk-proj-" + "YOUR_KEY_HERE_" * 4,
        "sk-" + "1234567890" * 5,
        "sk-ant-api03-" + "a" * 90,
        "AIza" + "0" * 35,
        "task-" + OPENAI_KEY[8:],
        OPENAI_KEY[:30],
    ]
    assert [p for p in placeholders if list(find_keys(p))] == []


def test_prefilter_skips_files_that_cannot_match(tmp_path):
    plain = "status = 'task-queued'  # risk-free, see the desk-top notes\nmask = 'sk-...'\n"
    assert not may_need_rules(plain, LintConfig())
    assert may_need_rules(f"KEY = '{OPENAI_KEY}'\n", LintConfig())
    engine = Engine(LintConfig(), frozenset(NEW_CODES))
    assert engine.candidates(plain) == []
    assert [r.code for r in engine.candidates(f"KEY = '{OPENAI_KEY}'\n")] == ["LG501"]
    litellm_call = "import litellm\nlitellm.completion(model='m', messages=[])\n"  # no `n=`, `temperature`, key
    assert [r.code for r in engine.candidates(litellm_call)] == ["LG205", "LG306", "LG601"]
    (tmp_path / "plain.py").write_text(plain)
    (tmp_path / "util.py").write_text("def add(a, b):\n    return a + b\n" * 200)
    result = lint_paths([str(tmp_path)], LintConfig(select=NEW_CODES), use_cache=False)
    assert (result.files, result.parsed, result.findings) == (2, 0, [])


def test_lg501_in_notebook_code_cells_and_saved_outputs():
    nb = json.loads(
        make_notebook(
            [
                ("markdown", f"Setup: the team key is {ANTHROPIC_KEY}"),
                ("code", "import os\nprint(os.environ)"),
                ("code", f"KEY = '{OPENAI_KEY}'"),
            ]
        )
    )
    nb["cells"][1]["outputs"] = [
        {
            "output_type": "stream",
            "name": "stdout",
            "text": ["environ({'HOME': '/root',\n", f" 'GOOGLE_API_KEY': '{GOOGLE_KEY}'}})\n"],
        }
    ]
    hits = list(get_rule("LG501")().check_notebook(nb["cells"]))
    assert [(h.cell, h.line, h.column) for h in hits] == [(1, 1, 24), (2, 1, 1)]
    assert hits[0].message.startswith("Anthropic API key sk-ant-…4d2b in this markdown cell: revoke it")
    assert hits[1].message.startswith(f"Google API key {MASKED[2]} in the saved output of this cell (output 1)")
    findings = lint_notebook_source(json.dumps(nb), "nb.ipynb")  # the code cell's key: found through the code
    assert [(f.cell, f.line, f.column) for f in findings if f.code == "LG501" and f.cell == 3] == [(3, 1, 7)]


def test_lg501_notebook_outputs_reach_the_findings():
    nb = json.loads(make_notebook([("code", "print(key)")]))
    nb["cells"][0]["outputs"] = [
        {
            "output_type": "execute_result",
            "execution_count": 1,
            "metadata": {},
            "data": {"text/plain": [f"'{OPENAI_KEY}'"]},
        }
    ]
    findings = lint_notebook_source(json.dumps(nb), "nb.ipynb")
    assert [(f.code, f.cell) for f in findings] == [("LG501", 1)]


def test_lg601_flags_direct_calls_only():
    helper = """
from openai import OpenAI
client = OpenAI(timeout=30)
def ask(q):
    return client.chat.completions.create(model="gpt-4o-mini", max_tokens=50, messages=[q])
def ask_all(questions):
    return [ask(q) for q in questions]
"""
    assert lint_source(helper, "a.py", LintConfig(select=("LG601",))) == []
    direct = helper.replace(
        "[ask(q) for q in questions]",
        "[client.chat.completions.create(model='gpt-4o-mini', max_tokens=50, messages=[q]) for q in questions]",
    )
    assert [(f.code, f.line) for f in lint_source(direct, "a.py", LintConfig(select=("LG601",)))] == [("LG601", 7)]
    guarded = "import llmguard\nllmguard.install()\n" + direct
    assert lint_source(guarded, "a.py", LintConfig(select=("LG601",))) == []


def test_lg205_reports_timeout_none_once():
    """LG202 already reports `timeout=None` on ChatOpenAI; LG205 adds it only where LG202 does not look."""
    source = (
        "from langchain_openai import ChatOpenAI\nfrom langchain_google_genai import ChatGoogleGenerativeAI\n"
        "a = ChatOpenAI(model='gpt-4o-mini', max_tokens=9, timeout=None)\n"
        "b = ChatGoogleGenerativeAI(model='gemini-2.0-flash', timeout=None)\n"
    )
    found = [(f.code, f.line) for f in lint_source(source, "a.py", LintConfig(select=("LG202", "LG205")))]
    assert found == [("LG202", 3), ("LG205", 4)]


def test_lg306_skips_servers_with_their_own_names():
    source = """
from openai import OpenAI
from anthropic import AnthropicBedrock
local = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none", timeout=30)
local.chat.completions.create(model="gpt-4o-mni", max_tokens=9, messages=[])
AnthropicBedrock(timeout=30).messages.create(model="anthropic.claude-3-5-sonnet-20240620-v1:0", max_tokens=9,
                                             messages=[])
OpenAI(timeout=30).chat.completions.create(model="gpt-4o-mni", max_tokens=9, messages=[])
"""
    found = lint_source(source, "a.py", LintConfig(select=("LG306",)))
    assert [(f.line, f.confidence) for f in found] == [(8, "high")]
