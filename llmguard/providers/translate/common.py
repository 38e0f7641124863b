"""What every translator shares: the error it raises, the record it returns, and the log of
what was dropped on the way. No wire format knowledge lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TO_ANTHROPIC = "this OpenAI chat request for Anthropic Messages"
TO_OPENAI = "this Anthropic Messages request for OpenAI chat"
SAME_PROVIDER = "use a fallback of the same provider for such calls"


class TranslationError(ValueError):
    """A request (or answer) the other provider's format cannot express. The message says what and
    what to do; `where` is the offending field."""

    def __init__(self, what: str, fix: str, where: str | None = None) -> None:
        self.what, self.fix, self.where = what, fix, where
        super().__init__(f"llmguard: cannot translate {what}. {fix[:1].upper()}{fix[1:]}.")


@dataclass(frozen=True, slots=True)
class Translated:
    """A translated request body. `dropped` lists the fields (paths) left out because the other
    format has no place for them; `notes` say in words what was approximated or dropped and why.
    `json_tool` names the forced tool standing for OpenAI structured output (pass it on to the
    response translators)."""

    body: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    json_tool: str | None = None


class Log:
    """What a translation left out (`dropped`, field paths) and why (`notes`, each said once)."""

    __slots__ = ("dropped", "notes")

    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.notes: list[str] = []

    def drop(self, where: str, note: str | None = None) -> None:
        self.dropped.append(where)
        if note:
            self.note(note)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
