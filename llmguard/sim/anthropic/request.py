"""The checked parts of an Anthropic Messages request: model, messages and max_tokens, custom tools
and tool_choice, the thinking budget, the prompt's cache breakpoints, and the tool call this turn
makes. Each check raises the real API's 400 (`InvalidRequest`) or returns the part as the routes use it.
"""

from __future__ import annotations

from typing import Any

from llmguard.sim.anthropic import wire
from llmguard.sim.anthropic.cache import CacheControlError, PromptLayout, prompt_layout
from llmguard.sim.core import Reply, anthropic_ids, json_response, positive_int
from llmguard.sim.counting import message_tokens
from llmguard.sim.structured import SchemaError, ToolChoiceError, choose_tool, instance_for
from llmguard.sim.text import request_digest

MIN_THINKING_BUDGET = 1024
_TOOL_CHOICES = ("auto", "any", "tool", "none")
_BUDGET_TOO_BIG = (
    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
)


class InvalidRequest(Reply):
    """A request the real API answers with a 400 `invalid_request_error`; `message` is what it says."""

    def __init__(self, message: str) -> None:
        super().__init__(json_response(400, wire.error(message), anthropic_ids()))
        self.message = message


def check_basics(body: dict[str, Any] | None, need_max_tokens: bool) -> dict[str, Any]:
    if body is None:
        raise InvalidRequest("There was an error parsing the body of your request as JSON.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model: Field required")
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("messages: Field required")
    if need_max_tokens:
        if "max_tokens" not in body:
            raise InvalidRequest("max_tokens: Field required")
        if not positive_int(body["max_tokens"]):
            raise InvalidRequest("max_tokens: Input should be a valid integer greater than or equal to 1")
    return body


def tool_specs(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's custom tools as `structured` takes them: [{"name", "parameters"}]."""
    tools = body.get("tools")
    if tools is None:
        if body.get("tool_choice") is not None:
            raise InvalidRequest("tool_choice may only be specified while providing tools")
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")
    specs = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools.{i}: Input should be a valid dictionary")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise InvalidRequest(
                f"tools.{i}.type: llmguard.sim does not simulate server or client tools ({kind!r}); "
                "define a custom tool with name and input_schema instead"
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise InvalidRequest(f"tools.{i}.custom.name: Field required")
        if not isinstance(tool.get("input_schema"), dict):
            raise InvalidRequest(f"tools.{i}.custom.input_schema: Field required")
        specs.append({"name": tool["name"], "parameters": tool["input_schema"]})
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES:
            raise InvalidRequest(
                "tool_choice: Input tag found using 'type' does not match any of the expected tags: "
                "'auto', 'any', 'tool', 'none'"
            )
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise InvalidRequest("tool_choice.tool.name: Field required")
    return specs


def thinking_budget(body: dict[str, Any], max_tokens: int) -> int:
    """Tokens the answer may think (0: no thinking block)."""
    thinking = body.get("thinking")
    if thinking is None:
        return 0
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("disabled", "between_tools"):
        return 0
    if kind == "adaptive":
        budget = max_tokens // 2
    elif kind == "enabled":
        if "budget_tokens" not in thinking:
            raise InvalidRequest("thinking.enabled.budget_tokens: Field required")
        budget = thinking["budget_tokens"]
        if not positive_int(budget) or budget < MIN_THINKING_BUDGET:
            raise InvalidRequest(
                f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
            )
        if budget >= max_tokens:
            raise InvalidRequest(_BUDGET_TOO_BIG)
    else:
        raise InvalidRequest(
            "thinking: Input tag found using 'type' does not match any of the expected tags: "
            "'enabled', 'disabled', 'adaptive', 'between_tools'"
        )
    choice = body.get("tool_choice")
    if budget and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise InvalidRequest("Thinking may not be enabled when tool_choice forces tool use.")
    return budget


def layout_of(body: dict[str, Any], raw: bytes) -> PromptLayout:
    """The prompt's breakpoints; without any `cache_control` in the body, just its token count."""
    model, messages, system, tools = body["model"], body["messages"], body.get("system"), body.get("tools")
    if b'"cache_control"' not in raw:
        return PromptLayout(message_tokens(messages, model, system=system, tools=tools), ())
    try:
        return prompt_layout(model, messages, system, tools, body.get("cache_control"))
    except CacheControlError as exc:
        raise InvalidRequest(str(exc)) from None


def after_tool_result(messages: list[Any]) -> bool:
    """Whether the conversation's last message hands tool results back."""
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return False
    content = messages[-1].get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def tool_call(body: dict[str, Any], specs: list[dict[str, Any]], seed: int) -> tuple[str, dict[str, Any]] | None:
    """(name, input) of the call this turn makes, or None for a text answer."""
    if not specs:
        return None
    digest = request_digest("messages.tool_use", body, seed)
    try:
        tool = choose_tool(specs, body.get("tool_choice"), digest, after_tool_result(body["messages"]))
    except ToolChoiceError as exc:
        raise InvalidRequest(f"tool_choice: {exc}") from None
    if tool is None:
        return None
    index = specs.index(tool)
    try:
        value = instance_for(tool["parameters"], digest)
    except SchemaError as exc:
        raise InvalidRequest(
            f"tools.{index}.custom.input_schema: llmguard.sim cannot build an input for this schema: {exc}"
        ) from None
    return tool["name"], value if isinstance(value, dict) else {}
