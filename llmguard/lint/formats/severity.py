"""How serious each rule's finding is, as SARIF levels: "error", "warning" or "note".

- error: the hazard has no end (a retry or a wait that can last forever), every call fails, a secret
  is exposed, or the file was not checked;
- warning: bounded only by a default that is far too generous (the SDK's 600 s, the model's own
  output limit), or a retry policy that makes incidents worse;
- note: a bound is set but is above a threshold you configure (`max-timeout-s`,
  `max-output-tokens`, `max-prompt-tokens`).

A rule class may declare its own `severity` (one of the three); that wins over this table, and a
rule that is in neither is a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmguard.lint.rules.base import Rule

LEVELS = ("error", "warning", "note")

SEVERITY: dict[str, str] = {
    "LG000": "error",  # the file was not checked
    "LG101": "error",  # `while True` retries with no attempt bound
    "LG102": "error",  # tenacity without stop= retries forever
    "LG103": "error",  # backoff without max_tries/max_time retries forever
    "LG104": "warning",
    "LG105": "warning",
    "LG106": "warning",
    "LG201": "warning",  # the SDK default: 600 s, then retries
    "LG202": "error",  # timeout=None waits forever
    "LG203": "note",
    "LG204": "warning",  # requests waits forever, httpx/aiohttp have (generous) defaults
    "LG205": "warning",  # LangChain waits forever, LiteLLM has the SDK's 600 s
    "LG301": "warning",  # bounded only by the model's own output limit
    "LG302": "warning",
    "LG303": "note",
    "LG304": "note",  # n=/best_of= multiplies a bounded cost
    "LG305": "error",  # the reasoning model rejects every such call with a 400
    "LG306": "warning",  # probably misspelt or retired, or newer than the price list
    "LG401": "note",
    "LG402": "warning",  # a document has no size limit
    "LG403": "note",
    "LG501": "error",  # an API key in the code
    "LG601": "warning",
}


def level(rule: type[Rule]) -> str:
    declared = getattr(rule, "severity", None)
    if isinstance(declared, str) and declared in LEVELS:
        return declared
    return SEVERITY.get(rule.code, "warning")
