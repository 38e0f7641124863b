"""`--costs`: the static cost map. Every LLM call site with its provider, model (when literal), static
prompt tokens, max tokens and worst-case cost per call (genai-prices), sorted by worst case.

Static prompt tokens count the literal text that reaches the call (message contents, system,
prompt, input, instructions; f-string fields and runtime values count as zero) plus the chat
message overhead, the way the guard counts (llmguard.tokens). A call without a literal max tokens
bound has no worst case: those sort first, because they are the unbounded ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from decimal import Decimal

from llmguard.lint import sdk
from llmguard.lint.config import LintConfig
from llmguard.lint.discover import discover
from llmguard.lint.engine import decode
from llmguard.lint.values import keyword, number

_LITELLM_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "azure": "azure", "bedrock": "aws",
                      "vertex_ai": "google", "gemini": "google", "groq": "groq", "mistral": "mistral"}


@dataclass
class CallCost:
    file: str
    cell: int | None
    line: int
    column: int
    provider: str
    endpoint: str
    model: str | None
    prompt_tokens: int
    prompt_tokens_approximate: bool
    max_tokens: int | None  # None: no literal bound
    bounded: bool  # a max tokens argument is present (literal or not)
    worst_case_usd: Decimal | None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["worst_case_usd"] = None if self.worst_case_usd is None else float(self.worst_case_usd)
        return data


def sort_key(row: CallCost) -> tuple[int, float, str, int]:
    if not row.bounded:
        rank, value = 0, 0.0
    elif row.worst_case_usd is not None:
        rank, value = 1, -float(row.worst_case_usd)
    else:
        rank, value = 2, 0.0
    return rank, value, row.file, row.line


def cost_map(paths: list[str], config: LintConfig, cwd: str | None = None) -> tuple[list[CallCost], list[str]]:
    """(call sites sorted worst first, problems such as missing paths or unparsable files)."""
    import libcst as cst

    from llmguard.lint.notebooks import NotebookError, is_python, join, load_notebook

    found = discover(paths, config, cwd or os.getcwd())
    problems = [f"{p}: no such file or directory" for p in found.missing]
    rows: list[CallCost] = []
    for source in found.files:
        if source.kind == "template":
            continue
        try:
            with open(source.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            problems.append(f"{source.display}: cannot read: {exc.strerror or exc}")
            continue
        text, error = decode(data, notebook=source.kind == "notebook")
        if text is None:
            problems.append(f"{source.display}: {error}")
            continue
        joined = None
        if source.kind == "notebook":
            try:
                nb = load_notebook(text)
            except NotebookError as exc:
                problems.append(f"{source.display}: {exc}")
                continue
            if not is_python(nb):
                continue
            joined = join(nb, text)
            text = joined.text
        if not any(literal in text for literal in sdk.SDK_LITERALS) and not config.call_targets:
            continue
        try:
            module = cst.parse_module(text)
        except Exception:  # noqa: BLE001 - reported by `llmguard lint` as LG000
            problems.append(f"{source.display}: cannot parse (see LG000 in `llmguard lint`)")
            continue
        rows.extend(_file_costs(module, text, source.display, config, joined))
    rows.sort(key=sort_key)
    return rows, problems


def _file_costs(module, text, display, config, joined):  # noqa: ANN001, ANN202
    from llmguard.lint.context import FileContext
    from llmguard.lint.positions import ranges_for
    from llmguard.pricing import default_pricer

    ctx = FileContext(module, text, display, config)
    calls = [c for c in ctx.llm_calls if c.generates and not c.is_constructor]
    ranges = ranges_for(module, [c.node for c in calls])
    pricer = default_pricer()
    for call in calls:
        line, column = ranges.get(id(call.node), (1, 0, 1, 0))[:2]
        cell = None
        if joined is not None:
            cell, line = joined.locate(line)
        provider, model = _provider_model(call.provider, call.endpoint, ctx.model_of(call))
        tokens, approximate = _prompt_tokens(ctx, call, model or config.prompt_model)
        arg = keyword(call.node, *call.max_tokens_args)
        value = number(arg.value, ctx.qualify) if arg is not None else None
        max_tokens = int(value) if value is not None and value != float("inf") else None
        worst = None
        if model is not None and max_tokens is not None:
            try:
                worst = pricer.worst_case(provider, model, tokens, max_tokens)
            except Exception:  # noqa: BLE001 - a price table problem must not break the map
                worst = None
        yield CallCost(display, cell, line, column + 1, provider, call.endpoint, model, tokens, approximate,
                       max_tokens, arg is not None, worst)


def _provider_model(provider: str, endpoint: str, model: str | None) -> tuple[str, str | None]:
    if model is None:
        return provider, None
    if endpoint == "wrapper" and "/" in model:  # litellm: "anthropic/claude-3-5-haiku-latest"
        prefix, _, rest = model.partition("/")
        if prefix in _LITELLM_PROVIDERS:
            return _LITELLM_PROVIDERS[prefix], rest
    if endpoint == "wrapper" and model.startswith("claude"):
        return "anthropic", model
    return provider, model


def _prompt_tokens(ctx, call, model: str) -> tuple[int, bool]:  # noqa: ANN001
    from llmguard.lint.prompts import prompt_parts
    from llmguard.lint.values import static_text
    from llmguard.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, count_text

    parts, messages = prompt_parts(ctx, call)
    total = REPLY_PRIMING + TOKENS_PER_MESSAGE * messages if messages else 0
    approximate = False
    for part in parts:
        text = static_text(ctx.follow(part, call.scope), ctx.qualify)
        if text is None:
            approximate = True
            continue
        count = count_text(text.text, model)
        total += count.tokens
        approximate |= count.approximate or not text.complete
    if keyword(call.node, "system") is not None:
        total += TOKENS_PER_MESSAGE
    return total, approximate


def render_json(rows: list[CallCost]) -> str:
    return json.dumps([row.to_dict() for row in rows], indent=2) + "\n"


def render_text(rows: list[CallCost], console) -> None:  # noqa: ANN001
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Static cost map: worst case per call", title_justify="left")
    for column, justify in (("location", "left"), ("provider", "left"), ("model", "left"),
                            ("prompt tokens", "right"), ("max tokens", "right"), ("worst case", "right")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        where = f"{row.file}:cell {row.cell}:{row.line}" if row.cell is not None else f"{row.file}:{row.line}"
        prompt = f"{'≥' if row.prompt_tokens_approximate else ''}{row.prompt_tokens:,}"
        if row.max_tokens is not None:
            limit = f"{row.max_tokens:,}"
        else:
            limit = "[red]none[/red]" if not row.bounded else "dynamic"
        if row.worst_case_usd is not None:
            cost = f"${row.worst_case_usd:.4f}"
        elif not row.bounded:
            cost = "[red]unbounded[/red]"
        else:
            cost = "unknown"
        table.add_row(Text(where), Text(row.provider), Text(row.model or "?"), prompt, limit, cost)
    console.print(table)
    console.print(f"{len(rows)} call site{'s' if len(rows) != 1 else ''}. Prompt tokens count the literal text only "
                  "(≥: runtime values add more); worst case = every prompt token uncached + every allowed output token.")
