"""The literal prefilter without libcst: can any rule match this text at all?

Each rule names literals a file must contain for it to match (rules/base.py); their union is here
too, so callers that lint one small text at a time (a notebook cell) can skip plain text without
loading libcst or the rules. Some rules also need a shape a few substring searches can rule out
(`may_construct_client`: an SDK client constructor call). Every test here is a superset test:
it may let through a file the rule then finds nothing in, never drop one it would find something in.
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


def _shortest_tails(names: set[str]) -> tuple[str, ...]:
    """The fewest names every one of `names` ends with ("AsyncAzureOpenAI" ends with "OpenAI")."""
    tails: list[str] = []
    for name in sorted(names, key=len):
        if not name.endswith(tuple(tails)):
            tails.append(name)
    return tuple(tails)


# The last part of every SDK client class name, and what may follow it in a constructor call or an
# import that renames it: space, line breaks inside brackets, `\` continuations, comments and the
# `)` of a parenthesised callee, then `(` (a call) or `as` (`from openai import OpenAI as O`).
CLIENT_TAILS = _shortest_tails({name.rsplit(".", 1)[-1] for name in sdk.CLIENTS})
_AFTER_CLIENT_NAME = re.compile(r"(?:[\s)\\]|#[^\n]*+)*+(?:\(|as\b)")  # possessive: no backtracking


# An import that binds a name to the openai or anthropic module or to one of their names
# (names.ImportMap reads no other): `from openai import ...`, or the module named after `import`
# on the same logical line (`import os, openai`, `import anthropic as a`, `\` continuations).
_SDK_IMPORT = re.compile(
    r"\bfrom(?:\s|\\)+(?:openai|anthropic)(?:\s|\\)+import\b"
    r"|\bimport\b(?:[^\n\\]|\\\r?\n|\\)*?\b(?:openai|anthropic)\b"
)


def may_import_sdk(text: str) -> bool:
    """False when no import in `text` can bind a name to the openai or anthropic SDK (a superset test)."""
    return _SDK_IMPORT.search(text) is not None


def may_construct_client(text: str) -> bool:
    """False when `text` cannot construct an SDK client (LG201's prefilter).

    A constructor call names the class: the callee is a name or attribute chain (lint/names.py
    resolves nothing else), so its last part is the class name as written (`OpenAI(`,
    `openai.AsyncOpenAI (`, `(anthropic.Anthropic)(`), unless an import renamed it
    (`from openai import OpenAI as Client`): both leave the class name, then `(` or `as`.
    """
    for tail in CLIENT_TAILS:
        at = text.find(tail)
        while at != -1:
            at += len(tail)
            if _AFTER_CLIENT_NAME.match(text, at) is not None:
                return True
            at = text.find(tail, at)
    return False


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
