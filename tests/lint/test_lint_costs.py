"""--costs: the static cost map, sorted by worst case, in text and JSON."""

from __future__ import annotations

from decimal import Decimal

from llmguard.policies.pricing import default_pricer
from llmguard.policies.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, count_text

SOURCE = """
import litellm
from anthropic import Anthropic
from openai import OpenAI

SYSTEM = "You are a careful assistant that answers briefly."
openai_client = OpenAI(timeout=30)
claude = Anthropic(timeout=30)

def cheap(q):
    return openai_client.chat.completions.create(
        model="gpt-4o-mini", max_tokens=200,
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}])

def expensive(q):
    return claude.messages.create(model="claude-3-5-sonnet-latest", max_tokens=4000, system=SYSTEM,
                                  messages=[{"role": "user", "content": f"Question: {q}"}])

def unbounded(q):
    return openai_client.responses.create(model="gpt-4o", input=q)

def unknown_model(q, model):
    return litellm.completion(model=model, messages=[], max_tokens=100)
"""


def test_cost_map_json(cli, project):
    root = project({"calls.py": SOURCE})
    result = cli(["lint", ".", "--costs", "--format", "json"], cwd=root)
    assert result.code == 0
    rows = result.json()
    assert [(r["line"], r["model"]) for r in rows] == [
        (19, "gpt-4o"),
        (15, "claude-3-5-sonnet-latest"),
        (10, "gpt-4o-mini"),
        (22, None),
    ]
    unbounded, expensive, cheap, unknown = rows
    assert unbounded["bounded"] is False and unbounded["worst_case_usd"] is None
    system_tokens = count_text("You are a careful assistant that answers briefly.", "gpt-4o-mini").tokens
    assert cheap["prompt_tokens"] == REPLY_PRIMING + 2 * TOKENS_PER_MESSAGE + system_tokens
    assert cheap["prompt_tokens_approximate"] is True  # the user message is only known at run time
    expected = default_pricer().worst_case("openai", "gpt-4o-mini", cheap["prompt_tokens"], 200)
    assert Decimal(str(cheap["worst_case_usd"])) == expected.quantize(Decimal(str(cheap["worst_case_usd"])))
    assert expensive["provider"] == "anthropic" and expensive["max_tokens"] == 4000
    assert expensive["worst_case_usd"] > cheap["worst_case_usd"]
    assert unknown["model"] is None and unknown["worst_case_usd"] is None


def test_cost_map_text(cli, project):
    root = project({"calls.py": SOURCE})
    result = cli(["lint", ".", "--costs"], cwd=root)
    assert result.code == 0
    assert "Static cost map" in result.out and "unbounded" in result.out and "4 call sites" in result.out
