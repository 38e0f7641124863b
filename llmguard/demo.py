"""`llmguard demo`: a realistic mixed batch through the real SDKs against the simulated provider."""

from __future__ import annotations

import importlib.util
import math
import random
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import llmguard

if TYPE_CHECKING:
    import anthropic
    import openai
    from anthropic.types import MessageParam
    from openai.types.chat import ChatCompletionMessageParam
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from llmguard.pipeline.guard import Guard

_TOPICS = [
    "the refund policy",
    "a failed payment",
    "shipping to Canada",
    "a password reset",
    "an invoice in euros",
    "a damaged parcel",
    "upgrading a plan",
    "GDPR data export",
    "a late delivery",
    "API rate limits",
]
_DOCUMENT = (
    "Quarterly operations review. Revenue grew while support volume rose faster than staffing. "
    "The team shipped the new billing flow, migrated two databases and closed most incident follow-ups. "
)


def _batch(calls: int, rng: random.Random) -> list[dict]:
    """A mix of short questions, long-document summaries and classification calls."""
    plan = []
    for i in range(calls):
        kind = rng.choices(["question", "summary", "classify"], weights=[5, 2, 3])[0]
        topic = rng.choice(_TOPICS)
        if kind == "question":
            prompt, model, max_tokens = f"Customer asks about {topic}. Answer briefly.", "gpt-4o-mini", 120
        elif kind == "summary":
            prompt = "Summarise for an executive:\n" + _DOCUMENT * rng.randint(5, 40)
            model, max_tokens = "gpt-4o", 300
        else:
            prompt, model, max_tokens = f"Classify the ticket topic: {topic}. One word.", "gpt-4.1-nano", 5
        plan.append(
            {"i": i, "kind": kind, "prompt": prompt, "model": model, "max_tokens": max_tokens, "stream": i % 4 == 1}
        )
    return plan


def run_demo(home: str | None = None, calls: int = 36) -> int:
    from rich.console import Console

    console = Console()
    if importlib.util.find_spec("openai") is None:
        console.print("llmguard demo needs the openai SDK: pip install 'llmguard[openai]'")
        return 2
    rng = random.Random(7)
    plan = _batch(max(1, calls), rng)
    _announce(console, len(plan))

    from llmguard.sim import SimProvider

    with SimProvider(latency_ms=15, per_token_ms=0.2) as sim, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        guard = llmguard.install(home=home) if home else llmguard.install()
        if guard.cache_layer is not None:  # sampled calls, recorded as a notebook's are: a re-run is free
            guard.cache_layer.replay_sampled = True
        try:
            _send(sim.base_url, plan, rng, console)
        finally:
            llmguard.uninstall()
        server_cost = sim.stats.get("cost_usd")
    return _show_result(console, guard, server_cost)


def _announce(console: Console, calls: int) -> None:
    """The first line, shown before the SDKs load (they take seconds to import)."""
    anthropic = " and 6 through the anthropic SDK" if importlib.util.find_spec("anthropic") else ""
    console.print(
        f"llmguard demo: {calls} calls through the openai SDK{anthropic} to a simulated provider on "
        "127.0.0.1 (no API key, nothing billed). Loading the SDKs...",
        highlight=False,
    )


def _progress(console: Console) -> Progress:
    """A bar with the calls done, what they cost so far and how many failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Column

    def text(template: str) -> TextColumn:
        return TextColumn(template, table_column=Column(no_wrap=True))

    return Progress(
        text("{task.description}"),
        BarColumn(bar_width=None),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        text("{task.fields[spent]}"),
        text("{task.fields[failed]}"),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        console=console,
        transient=False,
    )


def _tick(progress: Progress, task: TaskID, advance: int = 1) -> None:
    """Advance the bar and show this run's cost so far, its cache hits and failed calls (the guard's live counters)."""
    from llmguard.money import usd

    guard = llmguard.current()
    seen = guard.metrics.snapshot() if guard is not None else {}
    failed = f"{seen.get('errors', 0):,} errors"
    if seen.get("refusals"):
        failed += f", {seen['refusals']:,} refused"
    spent = f"{usd(seen.get('cost_usd', 0.0))} spent"
    if seen.get("cache_hits"):
        spent += f", {seen['cache_hits']:,} cached"
    progress.update(task, advance=advance, spent=spent, failed=failed)


def _send(base_url: str, plan: list[dict], rng: random.Random, console: Console) -> None:
    """The batch through the openai SDK, then six calls through the anthropic SDK if it is installed."""
    with_claude = importlib.util.find_spec("anthropic") is not None
    total = len(plan) + (6 if with_claude else 0)
    with _progress(console) as progress:
        task = progress.add_task("loading the SDKs", total=total, spent="", failed="")
        _tick(progress, task, advance=0)
        import openai

        # timeout= bounds each attempt (the SDK default waits up to 600 s): copy it into real code too
        client = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-demo-not-a-real-key", timeout=60)
        claude = None
        if with_claude:
            import anthropic

            claude = anthropic.Anthropic(base_url=base_url, api_key="sk-ant-demo-not-a-real-key", timeout=60)
        progress.update(task, description="calls")
        for item in plan:
            with llmguard.tag(feature=item["kind"], tenant=rng.choice(["acme", "globex"])):
                _ask_openai(client, item)
            _tick(progress, task)
        if claude is not None:
            for i in range(6):
                with llmguard.tag(feature="assistant", tenant="acme"):
                    _ask_anthropic(claude, i)
                _tick(progress, task)


def _ask_openai(client: openai.OpenAI, item: dict) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": item["prompt"]}]
    if item["stream"]:
        stream = client.chat.completions.create(
            model=item["model"], messages=messages, max_tokens=item["max_tokens"], stream=True
        )
        for _ in stream:
            pass
    else:
        client.chat.completions.create(model=item["model"], messages=messages, max_tokens=item["max_tokens"])


def _ask_anthropic(claude: anthropic.Anthropic, i: int) -> None:
    """Call `i` of the anthropic part: odd ones stream."""
    model = "claude-3-5-haiku-latest"
    messages: list[MessageParam] = [{"role": "user", "content": f"Draft reply #{i} about {_TOPICS[i]}"}]
    if i % 2:
        with claude.messages.stream(model=model, max_tokens=200, messages=messages) as stream:
            for _ in stream.text_stream:
                pass
    else:
        claude.messages.create(model=model, max_tokens=200, messages=messages)


def _show_result(console: Console, guard: Guard, server_cost: float | None) -> int:
    """This run's cost by model from the ledger, next to what the simulated provider billed."""
    from llmguard.money import usd
    from llmguard.reporting import report
    from llmguard.reporting.fit import Packed

    ledger = guard.ledger
    if ledger is None or ledger.error is not None:
        why = ledger.error if ledger is not None else "the ledger is switched off (ledger=False)"
        console.print(f"[red]llmguard: {why}[/red]")
        return 1
    rows = report.summary(ledger.path, by="model", run_id=ledger.run_id)
    console.print(report.to_table(rows, title="llmguard demo: cost by model (this run)"))
    ours = sum(r["cost_usd"] for r in rows)
    if server_cost is not None:
        same = "the same" if math.isclose(server_cost, ours, rel_tol=1e-9, abs_tol=1e-12) else "not the same"
        console.print(Packed([f"the provider billed {usd(server_cost)};", f"the ledger says {usd(ours)} ({same})"]))
    console.print(Packed([f"ledger: {Path(ledger.path).resolve()}", "(see it again: llmguard report --last-run)"]))
    return 0
