"""Which tool a turn calls: `choose_tool`, the one convention every simulated wire format follows
once its tools are `[{"name": str, "parameters": dict}]` (see the `structured` package docstring)."""

from __future__ import annotations

from typing import Any

from llmguard.sim.structured.common import ToolChoiceError, json_text


def _choice_mode(tool_choice: Any) -> tuple[str, str | None, list[str] | None]:
    """(mode, forced tool name, allowed names) from any of the wire forms."""
    if tool_choice is None:
        return "auto", None, None
    if isinstance(tool_choice, str):
        if tool_choice in ("none", "auto"):
            return tool_choice, None, None
        if tool_choice in ("required", "any"):
            return "required", None, None
        return "named", tool_choice, None
    if not isinstance(tool_choice, dict):
        raise ToolChoiceError(f"tool_choice must be a string or an object, got {type(tool_choice).__name__}")
    kind = tool_choice.get("type")
    if kind in ("none", "auto"):
        return kind, None, None
    if kind in ("required", "any"):
        return "required", None, None
    if kind == "allowed_tools":
        spec = tool_choice.get("allowed_tools", tool_choice)
        mode = spec.get("mode", "auto") if isinstance(spec, dict) else "auto"
        names = [_tool_name(t) for t in (spec.get("tools") or [])] if isinstance(spec, dict) else []
        return ("required" if mode == "required" else "auto"), None, [n for n in names if n]
    name = _tool_name(tool_choice)
    if name:
        return "named", name, None
    raise ToolChoiceError(f"unsupported tool_choice {json_text(tool_choice)[:200]}")


def _tool_name(spec: Any) -> str | None:
    if not isinstance(spec, dict):
        return None
    function = spec.get("function")
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return function["name"]
    name = spec.get("name")
    return name if isinstance(name, str) else None


def choose_tool(
    tools: list[dict[str, Any]], tool_choice: Any, digest: bytes, after_tool_result: bool = False
) -> dict[str, Any] | None:
    """The tool this turn calls, or None for a text answer (convention in the package docstring).

    `tools` is normalised: `[{"name": str, "parameters": dict}]`. `after_tool_result` says whether
    the conversation's last message is a tool result. Raises `ToolChoiceError` for a named tool
    the list does not hold.
    """
    mode, name, allowed = _choice_mode(tool_choice)
    if mode == "none" or not tools:
        return None
    if mode == "named":
        for tool in tools:
            if tool.get("name") == name:
                return tool
        raise ToolChoiceError(f"tool_choice names the tool {name!r}, which is not in tools")
    pool = tools
    if allowed is not None:
        pool = [t for t in tools if t.get("name") in allowed]
        if not pool:
            raise ToolChoiceError("tool_choice allowed_tools lists none of the request's tools")
    if mode == "auto" and after_tool_result:
        return None
    return pool[int.from_bytes(digest[8:12], "little") % len(pool)]
