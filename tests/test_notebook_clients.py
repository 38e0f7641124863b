"""Issue 17's acceptance in a real kernel: a notebook using openai, anthropic, google-genai,
LangChain and LiteLLM side by side, no code changed for llmguard, shows every call in the ledger
and the widget's tally with the simulator's exact tokens and cost, all under one budget."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

from llmguard.ledger.sqlite import read_events

REPO = Path(__file__).resolve().parent.parent

CELLS = [
    "import os\nos.environ['LITELLM_LOCAL_MODEL_COST_MAP'] = 'True'\nfrom llmguard.sim import SimProvider\n"
    "sim = SimProvider().start()",
    "%load_ext llmguard",
    "%llmguard budget 0.50",
    "import openai\nopenai.OpenAI(base_url=sim.base_url + '/v1', api_key='sk-nb-openai-1', timeout=30)"
    ".chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'One.'}], max_tokens=20)",
    "import anthropic\nanthropic.Anthropic(base_url=sim.base_url, api_key='sk-ant-nb-2', timeout=30)"
    ".messages.create(model='claude-3-5-haiku-latest', messages=[{'role': 'user', 'content': 'Two.'}], max_tokens=20)",
    "from google import genai\ngoogle = genai.Client(api_key='AIza-nb-3', http_options={'base_url': sim.base_url})\n"
    "google.models.generate_content(model='gemini-2.5-flash', contents='Three.', config={'max_output_tokens': 20})",
    "from langchain_openai import ChatOpenAI\nChatOpenAI(model='gpt-4.1-nano', base_url=sim.base_url + '/v1', "
    "api_key='sk-nb-lc-4', max_tokens=20, timeout=30).invoke('Four.')",
    "import litellm\nlitellm.completion(model='anthropic/claude-3-5-haiku-latest', api_base=sim.base_url, "
    "api_key='sk-ant-nb-5', messages=[{'role': 'user', 'content': 'Five.'}], max_tokens=20, timeout=30)",
    "import json, llmguard\nseen = llmguard.current().metrics.snapshot()\n"
    "print('PROBE ' + json.dumps({'requests': sim.stats['requests'], 'models': sim.stats['models'], "
    "'calls': seen['calls'], 'provider_calls': seen['provider_calls'], 'cost_usd': seen['cost_usd']}))",
]


def test_five_clients_side_by_side_in_one_notebook_under_one_budget(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    home, path = tmp_path / "home", tmp_path / "clients.ipynb"
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "LLMGUARD_", "JPY_"))}
    env |= {"LLMGUARD_HOME": str(home), "JPY_SESSION_NAME": str(path), "PYTHONPATH": str(REPO)}
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=env)
    [probe] = [
        json.loads(line.removeprefix("PROBE "))
        for output in notebook.cells[-1].outputs
        if output.output_type == "stream"
        for line in output.text.splitlines()
        if line.startswith("PROBE ")
    ]
    books = probe["models"]
    assert probe["requests"] == 5 and sorted(books) == [
        "claude-3-5-haiku-latest",
        "gemini-2.5-flash",
        "gpt-4.1-nano",
        "gpt-4o-mini",
    ]
    rows = read_events(home / "ledger.sqlite3")
    assert [r["status"] for r in rows] == ["ok"] * 5
    for model, book in books.items():
        mine = [r for r in rows if r["model"] == model]
        assert len(mine) == book["requests"]
        assert sum(r["input_tokens"] for r in mine) == book["input_tokens"], model
        assert sum(r["output_tokens"] for r in mine) == book["output_tokens"], model
        assert sum(Decimal(repr(r["cost_usd"])) for r in mine) == Decimal(book["cost_decimal"]), model
    billed = sum(Decimal(book["cost_decimal"]) for book in books.values())
    # the widget's tally: every call, all of them sent, the same dollars
    assert (probe["calls"], probe["provider_calls"]) == (5, 5)
    assert abs(Decimal(repr(probe["cost_usd"])) - billed) < Decimal("1e-12")
    assert {r["notebook"] for r in rows} == {str(path)}
