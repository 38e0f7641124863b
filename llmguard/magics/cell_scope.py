"""`%%llmguard`: run a cell's code under scoped tags, priority, cache mode and its own budget.

The tags are `llmguard.tag(...)` context tags, so they apply to the calls the cell's code makes
(threads it starts carry their own context: wrap their work in `llmguard.tag` too). `--budget`
adds a budget scope for this cell only (`llmguard.context.push_budget_scope`): the call that would
take the cell past it is refused with an `llmguard:` message, as the SDK's own error. When the
cell finishes (or fails) one line sums up what its calls did, in the format of the per-cell
footer (`cell_footer.usage_parts`), from a diff of the guard's session tally: calls of background
threads running at the same time are counted too.
"""

from __future__ import annotations

import ast
import dataclasses
import time
from typing import Any

import llmguard
from llmguard import context
from llmguard.ledger.metrics import Tally
from llmguard.magics.cell_footer import usage_parts
from llmguard.magics.output import note, usd
from llmguard.magics.parsing import UsageParser, positive_float
from llmguard.money import duration
from llmguard.policies.budget import Scope


def build_parser() -> UsageParser:
    parser = UsageParser(
        prog="%%llmguard",
        description="Run this cell's code with its own tags, priority, cache mode and budget; "
        "then show what its calls cost.",
    )
    parser.add_argument("--tenant", help="tag the cell's calls with this tenant")
    parser.add_argument("--feature", help="tag the cell's calls with this feature")
    parser.add_argument("--prompt-version", help="tag the cell's calls with this prompt version")
    parser.add_argument("--user", help="tag the cell's calls with this user")
    parser.add_argument(
        "--priority", choices=context.PRIORITIES, help="background: batch work that yields to interactive calls"
    )
    parser.add_argument(
        "--budget", type=positive_float, metavar="USD", help="refuse the call that would take this cell past USD"
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor store cached answers in this cell")
    parser.add_argument("--quiet", action="store_true", help="no summary line when the cell finishes")
    return parser


PARSER = build_parser()


def run(ext: Any, line: str, cell: str) -> Any:
    """The `%%llmguard` cell magic; returns the value of the cell's last expression (shown as Out)."""
    __tracebackhide__ = True  # tracebacks start at the cell's own code
    args = PARSER.parse_argstring(line)
    tags = {
        key: value
        for key, value in (
            ("tenant", args.tenant),
            ("feature", args.feature),
            ("prompt_version", args.prompt_version),
            ("user", args.user),
            ("priority", args.priority),
        )
        if value is not None
    }
    if args.no_cache:
        tags["cache"] = "off"
    guard = llmguard.current()
    before = guard.metrics.totals() if guard is not None else None
    started = time.perf_counter()
    scope = _cell_budget(args.budget) if args.budget else None
    token = context.push_budget_scope(scope) if scope is not None else None
    failed = True
    try:
        with llmguard.tag(**tags):
            value = _execute(ext.ip, cell)
        failed = False
        return value
    finally:
        if token is not None:
            context.pop_budget_scope(token)
        if guard is not None and before is not None and not args.quiet:
            used = guard.metrics.totals().minus(before)
            _summary(used, time.perf_counter() - started, guard.metrics.last_refusal, scope, failed)


def _cell_budget(limit: float) -> Scope:
    """This cell's budget: a refusal against it says to raise `--budget` here, not the session budget."""
    return Scope(
        f"this cell's budget (%%llmguard --budget {limit:g})",
        limit,
        "usd",
        fix="raise this cell's budget on its first line (%%llmguard --budget USD)",
    )


def _execute(ip: Any, cell: str) -> Any:
    """Run the cell's code in the user namespace like a cell: the last expression's value is returned."""
    __tracebackhide__ = True
    source = ip.transform_cell(cell)
    filename = ip.compile.cache(source, ip.execution_count)
    tree = ip.compile.ast_parse(source, filename=filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), ip.user_ns)
    if last is not None:
        return eval(compile(last, filename, "eval"), ip.user_ns)
    return None


def _summary(used: Tally, seconds: float, last_refusal: str | None, scope: Scope | None, failed: bool) -> None:
    """`llmguard · this cell: 1 call · $0.0000132 · 28 tokens · 0.4 s · cell budget $0.0000132 of $0.001`."""
    # a refused call was never sent: it is counted as refused, not as a call
    sent = dataclasses.replace(used, calls=used.calls - used.refusals)
    parts = [*usage_parts(sent), duration(seconds)]
    if scope is not None:
        parts.append(f"cell budget {usd(scope.spent)} of {usd(scope.limit)}")
    if used.refusals:
        parts.append(f"{used.refusals:,} refused: {last_refusal}")
    tone = "error" if used.refusals or failed else "ok"
    note("llmguard · this cell: " + " · ".join(parts), tone)
