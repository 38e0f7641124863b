"""`--costs`: the static cost map. Every LLM call site with its provider, model (when literal), static
prompt tokens, max tokens and worst-case cost per call (genai-prices), sorted by worst case.

Call sites are SDK/wrapper calls and, in notebooks, `%%llm` cells (llm_cells.py). Arguments
passed as `**DEFAULTS` are read from the dict literal (or `dict(...)` call) the name is bound to;
a `**kwargs` that cannot be read leaves the bound unknown ("dynamic"), not missing.

Static prompt tokens count the literal text that reaches the call (message contents, system,
prompt, input, instructions; f-string fields and runtime values count as zero) plus the chat
message overhead, the way the guard counts (llmguard.policies.tokens). A call without a literal max tokens
bound has no worst case: those sort first, because they are the unbounded ones.

The text table is a rich table on a terminal; piped or written to a file it is plain aligned
columns that never wrap or truncate (a narrow `COLUMNS` must not fold a model name or a number).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass
from decimal import Decimal

import libcst as cst

from llmguard.lint import guard, sdk
from llmguard.lint.config import LintConfig
from llmguard.lint.discover import discover
from llmguard.lint.engine import decode, usable_cells
from llmguard.lint.values import has_star_kwargs, keyword, number, string_value

_LITELLM_PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure",
    "bedrock": "aws",
    "vertex_ai": "google",
    "gemini": "google",
    "groq": "groq",
    "mistral": "mistral",
}


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
    bounded: bool  # a max tokens argument is present (literal or not), or may be (unread **kwargs)
    worst_case_usd: Decimal | None
    dry_run: bool = False  # a `%%llm --dry-run` cell: shows this cost, sends nothing

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["worst_case_usd"] = None if self.worst_case_usd is None else float(self.worst_case_usd)
        return data


def sort_key(row: CallCost) -> tuple[int, float, str, int, int]:
    if not row.bounded:
        rank, value = 0, 0.0
    elif row.worst_case_usd is not None:
        rank, value = 1, -float(row.worst_case_usd)
    else:
        rank, value = 2, 0.0
    return rank, value, row.file, row.cell or 0, row.line


def cost_map(paths: list[str], config: LintConfig, cwd: str | None = None) -> tuple[list[CallCost], list[str]]:
    """(call sites sorted worst first, problems such as missing paths or unparsable files)."""
    import libcst as cst

    from llmguard.lint.notebooks import NotebookError, is_python, join, load_notebook

    found = discover(paths, config, cwd or os.getcwd())
    problems = [f"{p}: no such file or directory" for p in found.missing]
    problems.extend(f"{folder}: cannot read folder: {why}" for folder, why in found.unreadable)
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
            rows.extend(_llm_cell_costs(nb, source.display, problems))
            joined = join(nb, text)
            text = joined.text
        if not any(literal in text for literal in sdk.SDK_LITERALS) and not config.call_targets:
            continue
        if joined is not None:  # cells that do not parse on their own are left out, as `llmguard lint` does
            text, _, _ = usable_cells(text, source.display, joined)
        problem = guard.check(text)
        if problem is not None:
            problems.append(f"{source.display}: cannot parse: {problem.message}")
            continue

        def file_costs(text: str = text, display: str = source.display, joined=joined) -> list[CallCost]:  # noqa: ANN001
            return list(_file_costs(cst.parse_module(text), text, display, config, joined))

        try:
            rows.extend(guard.deep_retry(file_costs))
        except RecursionError:
            problems.append(f"{source.display}: cannot parse: nested too deeply for the linter")
        except cst.ParserSyntaxError:
            problems.append(f"{source.display}: cannot parse (see LG000 in `llmguard lint`)")
        except Exception as exc:  # noqa: BLE001 - a linter bug costs this file, not the map
            problems.append(f"{source.display}: internal error ({type(exc).__name__}: {exc}); please report it")
    rows.sort(key=sort_key)
    return rows, problems


def _file_costs(module, text, display, config, joined):  # noqa: ANN001, ANN202
    from llmguard.lint.context import FileContext
    from llmguard.lint.positions import ranges_for
    from llmguard.policies.pricing import default_pricer

    ctx = FileContext(module, text, display, config)
    calls = [c for c in ctx.llm_calls if c.generates and not c.is_constructor]
    ranges = ranges_for(module, [c.node for c in calls])
    pricer = default_pricer()
    for call in calls:
        line, column = ranges.get(id(call.node), (1, 0, 1, 0))[:2]
        cell = None
        if joined is not None:
            cell, line = joined.locate(line)
        call = _expanded(ctx, call)
        provider, model = _provider_model(call.provider, call.endpoint, ctx.model_of(call))
        tokens, approximate = _prompt_tokens(ctx, call, model or config.prompt_model)
        arg = keyword(call.node, *call.max_tokens_args)
        value = number(ctx.follow(arg.value, call.scope), ctx.qualify) if arg is not None else None
        max_tokens = int(value) if value is not None and value != float("inf") else None
        bounded = arg is not None or has_star_kwargs(call.node)
        yield CallCost(
            display,
            cell,
            line,
            column + 1,
            provider,
            call.endpoint,
            model,
            tokens,
            approximate,
            max_tokens,
            bounded,
            _worst(pricer, provider, model, tokens, max_tokens),
        )


def _worst(pricer, provider: str, model: str | None, tokens: int, max_tokens: int | None) -> Decimal | None:  # noqa: ANN001
    if model is None or max_tokens is None:
        return None
    try:
        return pricer.worst_case(provider, model, tokens, max_tokens)
    except Exception:  # noqa: BLE001 - a price table problem must not break the map
        return None


def _llm_cell_costs(nb, display: str, problems: list[str]):  # noqa: ANN001, ANN202
    """Rows for the notebook's `%%llm` cells, counted the way the magic's `--dry-run` counts."""
    from llmguard.lint.llm_cells import llm_cells
    from llmguard.policies.pricing import default_pricer
    from llmguard.policies.tokens import count_messages

    found, trouble = llm_cells(nb.cells, nb.code_cells)
    problems.extend(f"{display}: {problem}" for problem in trouble)
    pricer = default_pricer() if found else None
    for cell in found:
        counted = count_messages([{"role": "user", "content": cell.prompt}], cell.model, system=cell.system)
        yield CallCost(
            display,
            cell.cell,
            1,
            1,
            cell.provider,
            "%%llm",
            cell.model,
            counted.tokens,
            counted.approximate or not cell.complete,
            cell.max_tokens,
            True,
            _worst(pricer, cell.provider, cell.model, counted.tokens, cell.max_tokens),
            cell.dry_run,
        )


def _expanded(ctx, call):  # noqa: ANN001, ANN202
    """The call with each readable `**name` replaced by the keywords of the dict it is bound to."""
    args: list[cst.Arg] = []
    changed = False
    for arg in call.node.args:
        if arg.star == "**":
            entries = _dict_entries(ctx, arg.value, call.scope)
            if entries is not None:
                args.extend(entries)
                changed = True
                continue
        args.append(arg)
    if not changed:
        return call
    return dataclasses.replace(call, node=call.node.with_changes(args=args))


def _dict_entries(ctx, expr, scope, depth: int = 0) -> list[cst.Arg] | None:  # noqa: ANN001
    """`{"model": ..., **BASE}` or `dict(model=..., **BASE)` as keyword Args (later keys win); None if unreadable."""
    if depth > 4:
        return None
    value = ctx.follow(expr, scope)
    entries: dict[str, cst.BaseExpression] = {}
    if isinstance(value, cst.Dict):
        for element in value.elements:
            if isinstance(element, cst.DictElement):
                key = string_value(element.key)
                if key is None or not key.isidentifier():
                    return None
                entries[key] = element.value
            else:
                inner = _dict_entries(ctx, element.value, scope, depth + 1)
                if inner is None:
                    return None
                entries.update((a.keyword.value, a.value) for a in inner if a.keyword is not None)
    elif isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == "dict":
        for arg in value.args:
            if arg.keyword is not None:
                entries[arg.keyword.value] = arg.value
            elif arg.star == "**":
                inner = _dict_entries(ctx, arg.value, scope, depth + 1)
                if inner is None:
                    return None
                entries.update((a.keyword.value, a.value) for a in inner if a.keyword is not None)
            else:
                return None
    else:
        return None
    return [cst.Arg(value=v, keyword=cst.Name(k)) for k, v in entries.items()]


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
    from llmguard.policies.tokens import REPLY_PRIMING, TOKENS_PER_MESSAGE, count_text

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


_COLUMNS = (
    ("location", "left"),
    ("provider", "left"),
    ("model", "left"),
    ("prompt tokens", "right"),
    ("max tokens", "right"),
    ("worst case", "right"),
)
_TITLE = "Static cost map: worst case per call"


def _cells(row: CallCost) -> tuple[list[str], set[int]]:
    """The row's texts by column, and the columns to show in red (the unbounded ones)."""
    where = f"{row.file}:cell {row.cell}:{row.line}" if row.cell is not None else f"{row.file}:{row.line}"
    if row.dry_run:
        where += " (dry run)"
    prompt = f"{'≥' if row.prompt_tokens_approximate else ''}{row.prompt_tokens:,}"
    red = set()
    if row.max_tokens is not None:
        limit = f"{row.max_tokens:,}"
    elif not row.bounded:
        limit = "none"
        red.add(4)
    else:
        limit = "dynamic"
    if row.worst_case_usd is not None:
        cost = _usd(row.worst_case_usd)
    elif not row.bounded:
        cost = "unbounded"
        red.add(5)
    else:
        cost = "unknown"
    return [where, row.provider, row.model or "?", prompt, limit, cost], red


def _usd(value: Decimal) -> str:
    """Dollars as llmguard.money shows them (which lint/ may not import): `$0.0000747`, `$0.02`, `$1.23`.

    Under $1, three significant digits (a call's cost is never rounded to $0.0000); from $1, cents.
    """
    if value <= 0:
        return "$0.00"
    if value.quantize(Decimal("0.01")) >= 1:
        return f"${value:,.2f}"
    first = -value.adjusted()  # 0.0000747 has its first digit at place 5
    decimals = f"{value:.{max(2, first + 2)}f}".partition(".")[2].rstrip("0").ljust(2, "0")
    return f"$0.{decimals}"


def render_text(rows: list[CallCost], console) -> None:  # noqa: ANN001
    """A rich table on a terminal; plain aligned columns otherwise (pipes, files), never wrapped."""
    from rich.text import Text

    if console.is_terminal:
        _rich_table(rows, console)
    else:
        cells = [_cells(row) for row in rows]
        header = [name for name, _ in _COLUMNS]
        widths = [max([len(header[i])] + [len(texts[i]) for texts, _ in cells]) for i in range(len(header))]
        console.print(Text(_TITLE), soft_wrap=True)
        for texts, red in [(header, set()), *cells]:
            line = Text()
            for i, (text, (_, justify)) in enumerate(zip(texts, _COLUMNS, strict=True)):
                if i:
                    line.append("  ")
                padded = text.rjust(widths[i]) if justify == "right" else text.ljust(widths[i])
                line.append(padded.rstrip() if i == len(texts) - 1 else padded, style="red" if i in red else "")
            console.print(line, soft_wrap=True)
    console.print(
        Text(
            f"{len(rows)} call site{'s' if len(rows) != 1 else ''}. Prompt tokens count the literal text "
            "only (≥: runtime values add more); worst case = every prompt token uncached + every allowed "
            "output token."
        ),
        soft_wrap=True,
    )


def _rich_table(rows: list[CallCost], console) -> None:  # noqa: ANN001
    from rich.table import Table
    from rich.text import Text

    table = Table(title=_TITLE, title_justify="left")
    for name, justify in _COLUMNS:  # only the location may fold: a model name or a number never does
        if name == "location":
            table.add_column(name, justify=justify, overflow="fold", ratio=1)  # type: ignore[arg-type]
        else:
            table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        texts, red = _cells(row)
        table.add_row(*(Text(text, style="red" if i in red else "") for i, text in enumerate(texts)))
    console.print(table)
