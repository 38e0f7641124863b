"""The live spend widget (ipywidgets), kept current by one throttled background thread.

One widget model per session; `%llmguard widget` displays it again (every view of a model shows
the same state). The thread exists only once the widget has been displayed, wakes a few times a
second, and only reads `guard.metrics.version` unless something changed: the guard does no work
per call for the widget. It updates the widget by setting trait values, which ipywidgets sends to
the front end from any thread; it never prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from llmguard.magics import output
from llmguard.magics import view as views

UPDATE_INTERVAL_S = 0.25  # at most four updates a second
IDLE_REFRESH_S = 2.0  # rolling RPM/TPM and queue ages change without new calls: refresh this often


class SpendWidget:
    """Spend, a budget bar and a spend sparkline; calls, tokens, cache, rates against limits, latency, refusals."""

    def __init__(self, get_guard: Callable[[], Any]) -> None:
        import ipywidgets as w  # imported only when a widget is shown

        self._get_guard = get_guard
        self.title = w.HTML("<b>llmguard</b>", layout=w.Layout(margin="0 12px 0 0"))
        self.spend = w.HTML("$0.00 spent", _dom_classes=["llmguard-spend"])
        self.bar = w.FloatProgress(
            value=0.0,
            min=0.0,
            max=1.0,
            bar_style="success",
            layout=w.Layout(width="180px", margin="2px 0 0 12px", visibility="hidden"),
            _dom_classes=["llmguard-budget-bar"],
        )
        self.spark = w.HTML("", layout=w.Layout(margin="0 0 0 12px"), _dom_classes=["llmguard-spark"])
        self.details = w.HTML("", _dom_classes=["llmguard-details"])
        self.refusal = w.HTML("", _dom_classes=["llmguard-refusal"])
        header = w.HBox([self.title, self.spend, self.bar, self.spark], layout=w.Layout(align_items="center"))
        self.box = w.VBox(
            [header, self.details, self.refusal],
            layout=w.Layout(border="1px solid rgba(128,128,128,0.35)", padding="4px 10px", width="auto"),
            _dom_classes=["llmguard-widget"],
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.updates = 0  # how many times the state was pushed (for tests and curiosity)
        self.last_error: str | None = None  # the thread never prints; a failure is kept here

    # ---- showing ---------------------------------------------------------------------------
    def display(self) -> None:
        """Show the widget in the current cell and make sure it is kept current.

        Front ends without widgets (jupyter console, nbconvert, GitHub) show the text/plain part,
        so that is the one-line summary rather than ipywidgets' `VBox(children=...)` repr.
        """
        from IPython.display import display

        guard = self._get_guard()
        view = views.collect(guard) if guard is not None else None
        if view is not None:
            self.render(view)
        bundle = dict(self.box._repr_mimebundle_() or {})
        if view is not None:
            bundle["text/plain"] = views.one_line(view)
        display(bundle, raw=True)
        self._start()

    def refresh(self) -> None:
        guard = self._get_guard()
        if guard is not None:
            self.render(views.collect(guard))

    def render(self, view: dict[str, Any]) -> None:
        """Set the widget's values from a view (any thread; only changed values are sent)."""
        with self._lock:
            spend = views.spend_text(view)
            if self.spend.value != spend:
                self.spend.value = spend
            fraction = views.budget_fraction(view)
            if fraction is None:
                self.bar.layout.visibility = "hidden"
            else:
                self.bar.layout.visibility = "visible"
                self.bar.value = fraction
                self.bar.bar_style = "danger" if fraction >= 0.95 else "warning" if fraction >= 0.8 else "success"
            spark = views.spark_html(view)
            if self.spark.value != spark:
                self.spark.value = spark
            details = views.details_html(view)
            if self.details.value != details:
                self.details.value = details
            refusal = views.refusal_html(view)
            if self.refusal.value != refusal:
                self.refusal.value = refusal
            self.updates += 1

    # ---- the update thread -----------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="llmguard-widget", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seen: tuple[Any, ...] | None = None
        last_render = time.monotonic()
        busy = False
        while not self._stop.wait(UPDATE_INTERVAL_S):
            try:
                guard = self._get_guard()
                if guard is None:
                    continue
                session = guard.budget.session
                key = (
                    id(guard),
                    guard.metrics.version,
                    guard.enabled,
                    None if session is None else (session.limit, session.spent, session.reserved),
                )
                now = time.monotonic()
                if key == seen and not (busy and now - last_render >= IDLE_REFRESH_S):
                    continue
                view = views.collect(guard)
                self.render(view)
                seen, last_render = key, now
                busy = bool(view["rpm"] or view["queue_depth"])
                if view["queue_depth"]:
                    last_render -= IDLE_REFRESH_S  # a queue moves: follow it at the full rate
            except Exception as exc:  # never print from this thread; keep the reason for %llmguard status
                self.last_error = f"{type(exc).__name__}: {exc}"

    @property
    def polling(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """Stop the thread and close the widget's models (their views disappear)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=2)
        header = self.box.children[0] if self.box.children else None
        for item in (self.box, header, self.title, self.spend, self.bar, self.spark, self.details, self.refusal):
            if item is None:
                continue
            for part in (getattr(item, "layout", None), getattr(item, "style", None), item):
                try:
                    if part is not None:
                        part.close()
                except Exception:
                    pass


def terminal_summary(guard: Any) -> None:
    """The widget's information as one line, for terminal IPython (main thread only)."""
    view = views.collect(guard)
    line = views.one_line(view)
    output.terminal_line(line, len("llmguard"), line.find("last refusal:") if view.get("last_refusal") else -1)
