"""The literal prefilter without libcst: can any rule match this text at all?

Each rule names literals a file must contain for it to match (rules/base.py); their union is here
too, so callers that lint one small text at a time (a notebook cell) can skip plain text without
loading libcst or the rules.
"""

from __future__ import annotations

import re

from llmguard.lint import keys, sdk
from llmguard.lint.config import LintConfig

# A module-level assignment to a prompt-like name (LG401 checks those even without an SDK call).
PROMPT_ASSIGNMENT = re.compile(
    r"^\w*(?:" + "|".join(sdk.PROMPT_NAME_WORDS) + r")\w*\s*(?::[^=\n]*)?=", re.IGNORECASE | re.MULTILINE
)
# Wrappers the SDK literals do not cover (LG205), and API-key prefixes (LG501).
WRAPPER_LITERALS = ("ChatGoogleGenerativeAI",)
ANY_RULE_LITERALS = sdk.SDK_LITERALS + sdk.RETRY_LITERALS + sdk.LLM_HOSTS + WRAPPER_LITERALS + keys.KEY_LITERALS
# "sk-" also occurs in "task-" or "risk-": those literals only count when a whole key is there.
_PLAIN_LITERALS = tuple(literal for literal in ANY_RULE_LITERALS if literal not in keys.KEY_LITERALS)


def could_exceed(text: str, limit: int) -> bool:
    """A token is at least one UTF-8 byte, so text this short cannot be over `limit` tokens."""
    return (len(text) if text.isascii() else 4 * len(text)) > limit


def may_need_rules(text: str, config: LintConfig) -> bool:
    """False when no rule could match `text` (a superset test of every rule's own prefilter)."""
    if any(literal in text for literal in _PLAIN_LITERALS) or keys.has_key(text):
        return True
    if any(t.name.rsplit(".", 1)[-1] in text for t in config.call_targets):
        return True
    return could_exceed(text, config.max_prompt_tokens) and PROMPT_ASSIGNMENT.search(text) is not None
