"""Model routing before a call and fallback chains when the chosen model cannot answer.

Routing rules are the seed article's `choose_model`: match tags (feature, risk, ...) and pick a
model. Fallbacks are per model (`gpt-4o → gpt-4o-mini`) and are used when retries are spent, the
limiter would make an interactive call wait too long, or the budget cannot afford the first choice.
A call tagged `risk="high"` never falls back: a weaker answer there is worse than a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

NO_FALLBACK_RISKS = frozenset({"high"})


class Router:
    def __init__(
        self,
        routes: Sequence[Mapping[str, Any]] | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.routes = [self._checked(rule) for rule in (routes or [])]
        self.fallbacks = {model: list(chain) for model, chain in (fallbacks or {}).items()}

    @staticmethod
    def _checked(rule: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(rule, Mapping) or "model" not in rule or not isinstance(rule.get("when", {}), Mapping):
            raise ValueError(
                f"llmguard: a route must look like {{'when': {{'feature': 'classification'}}, 'model': "
                f"'gpt-4o-mini'}}; got {rule!r}"
            )
        return {"when": dict(rule.get("when", {})), "model": rule["model"], "from": rule.get("from")}

    def route(self, model: str, tags: Mapping[str, Any]) -> str:
        """The model the first matching rule picks for these tags, or the requested one."""
        for rule in self.routes:
            if rule["from"] is not None and rule["from"] != model:
                continue
            if all(str(tags.get(key)) == str(value) for key, value in rule["when"].items()):
                return rule["model"]
        return model

    def fallback_chain(self, model: str, tags: Mapping[str, Any]) -> list[str]:
        if str(tags.get("risk")) in NO_FALLBACK_RISKS:
            return []
        return list(self.fallbacks.get(model, []))

    def forbids_fallback(self, tags: Mapping[str, Any]) -> bool:
        return str(tags.get("risk")) in NO_FALLBACK_RISKS
