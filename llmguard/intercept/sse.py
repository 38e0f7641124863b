"""Incremental server-sent-events splitting.

The guard must see each event of a stream as it passes (for usage and time to first token)
without holding bytes back from the SDK. `SSESplitter.feed` returns the complete events in a
chunk and keeps only the unfinished tail, which the SDK's own decoder could not use yet either.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")


class SSESplitter:
    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Complete raw events (each with its terminator) found so far."""
        data = self._tail + chunk if self._tail else chunk
        events: list[bytes] = []
        start = 0
        for match in _BOUNDARY.finditer(data):
            events.append(data[start : match.end()])
            start = match.end()
        self._tail = data[start:]
        return events

    @property
    def pending(self) -> bytes:
        return self._tail


def event_fields(raw: bytes) -> tuple[str | None, str]:
    """(event name, joined data) of one raw event."""
    name: str | None = None
    data: list[str] = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip(" ") if line[5:6] == " " else line[5:])
        elif line.startswith("event:"):
            name = line[6:].strip()
    return name, "\n".join(data)
