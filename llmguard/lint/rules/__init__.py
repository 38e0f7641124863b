"""The rule registry: code -> rule class, one module per rule, imported only when needed."""

from __future__ import annotations

from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmguard.lint.rules.base import Rule

RULE_MODULES: dict[str, str] = {
    "LG000": "lg000_parse_error",
    "LG101": "lg101_unbounded_retry_loop",
    "LG102": "lg102_tenacity_without_stop",
    "LG103": "lg103_backoff_without_limit",
    "LG104": "lg104_excessive_sdk_retries",
    "LG105": "lg105_retry_without_wait",
    "LG106": "lg106_retry_every_exception",
    "LG201": "lg201_client_without_timeout",
    "LG202": "lg202_timeout_disabled",
    "LG203": "lg203_timeout_too_long",
    "LG204": "lg204_raw_http_without_timeout",
    "LG205": "lg205_wrapper_without_timeout",
    "LG301": "lg301_missing_max_tokens",
    "LG302": "lg302_max_tokens_none",
    "LG303": "lg303_max_tokens_too_high",
    "LG304": "lg304_sampling_multiplier",
    "LG305": "lg305_temperature_on_reasoning_model",
    "LG306": "lg306_unknown_model",
    "LG401": "lg401_oversized_prompt_literal",
    "LG402": "lg402_unbounded_document_prompt",
    "LG403": "lg403_oversized_prompt_file",
    "LG501": "lg501_hardcoded_api_key",
    "LG601": "lg601_llm_call_in_loop",
}


def all_codes() -> tuple[str, ...]:
    return tuple(RULE_MODULES)


@cache
def get_rule(code: str) -> type[Rule]:
    module = import_module(f"llmguard.lint.rules.{RULE_MODULES[code]}")
    rules = [v for v in vars(module).values() if isinstance(v, type) and getattr(v, "code", None) == code]
    return rules[0]


def all_rules() -> list[type[Rule]]:
    return [get_rule(code) for code in RULE_MODULES]
