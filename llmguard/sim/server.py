"""A small HTTP/1.1 server on 127.0.0.1 that never becomes the bottleneck of a benchmark.

Why not `http.server`: its handler writes the status line, the headers and the body in separate
sends, which stalls each keep-alive call ~40 ms on delayed ACKs, and its header parsing costs more
than the simulated API itself. Here each response goes out in ONE `sendall` (streams too, when no
latency is simulated), accepted sockets get `TCP_NODELAY`, connections are kept alive, and streams
use chunked transfer encoding so keep-alive survives them.

Responses are values (`Response`) returned by an application callable, which also lets the server do
the deliberate waits (latency, hangs) itself: every wait is on one stop event, so `stop()` returns
promptly even with hung or streaming requests in flight, and the measured server cost excludes them.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import BinaryIO

HANG_S = 3600.0  # "hang" faults wait this long, or until the server stops
_MAX_LINE = 65537
_MAX_HEADERS = 200


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


@dataclass(slots=True)
class Response:
    """What to send. `action`: "send" (normal), "drop" (close, no response), "hang" (wait until stop,
    then close), "cut" (send part of the body or stream, then close)."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # A stream instead of a body: (delay before this part in seconds, bytes). Parts without a delay
    # are coalesced into one write.
    parts: list[tuple[float, bytes]] | None = None
    delay_s: float = 0.0  # for a body: wait this long before sending it
    action: str = "send"
    commit: Callable[[], None] | None = None  # called just before the last write (billing)


App = Callable[[Request], Response]


def _reason(status: int) -> str:
    if status == 529:
        return "Site Overloaded"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(status: int, headers: list[tuple[str, str]], extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status} {_reason(status)}\r\n"]
    lines += [f"{name}: {value}\r\n" for name, value in headers]
    lines.append(extra)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _BadRequest(Exception):
    pass


class HTTPServer:
    """Threaded keep-alive server: one thread accepts, one thread per connection."""

    def __init__(
        self,
        app: App,
        port: int = 0,
        on_timing: Callable[[int], None] | None = None,
        on_error: Callable[[], None] | None = None,
        on_connection: Callable[[], None] | None = None,
    ) -> None:
        self._app = app
        self._on_timing = on_timing
        self._on_error = on_error
        self._on_connection = on_connection
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(("127.0.0.1", port))
        except OSError:
            self._listener.close()
            raise
        self._listener.listen(4096)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"llmguard-sim-{self.port}", daemon=True)
        self._started = False
        self._stopped = False

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._acceptor.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, wake every wait, join the threads. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._started:
            self._acceptor.join(timeout)
        self._listener.close()
        with self._lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()

    # -- accepting -------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r or self._stop.is_set():
                        return
                    try:
                        conn, _ = self._listener.accept()
                    except OSError:
                        continue
                    conn.setblocking(True)
                    if self._on_connection:
                        self._on_connection()
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                    with self._lock:
                        if self._stopped:
                            conn.close()
                            return
                        self._connections[conn] = thread
                    thread.start()

    # -- one connection --------------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            while not self._stop.is_set():
                line = rfile.readline(_MAX_LINE)
                if not line:
                    return
                started = time.perf_counter_ns()
                if line in (b"\r\n", b"\n"):
                    continue
                try:
                    request, keep_alive = self._read_request(line, rfile)
                except _BadRequest as exc:
                    body = f'{{"error":{{"message":"{exc}","type":"invalid_request_error","param":null,"code":null}}}}'
                    conn.sendall(
                        _head(
                            400,
                            [("content-type", "application/json")],
                            f"content-length: {len(body)}\r\nconnection: close\r\n",
                        )
                        + body.encode()
                    )
                    return
                try:
                    response = self._app(request)
                except Exception:  # a bug in the simulator must not look like a network failure
                    if self._on_error:
                        self._on_error()
                    body = '{"error":{"message":"llmguard.sim internal error","type":"server_error","param":null,"code":null}}'
                    response = Response(500, [("content-type", "application/json")], body.encode())
                waited = self._write(conn, response, keep_alive)
                if self._on_timing:
                    self._on_timing(time.perf_counter_ns() - started - waited)
                if not keep_alive or response.action != "send":
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            try:
                rfile.close()
                conn.close()
            except OSError:
                pass

    def _read_request(self, line: bytes, rfile: BinaryIO) -> tuple[Request, bool]:
        readline = rfile.readline
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            raise _BadRequest("malformed request line") from None
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            raw = readline(_MAX_LINE)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep:
                raise _BadRequest("malformed header line")
            headers[name.strip().lower()] = value.strip()
        else:
            raise _BadRequest("too many headers")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked(rfile)
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise _BadRequest("bad content-length") from None
            body = rfile.read(length) if length > 0 else b""
            if len(body) < length:
                raise OSError("client closed mid-body")
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        path, _, query = target.partition("?")
        return Request(method, path, query, headers, body), keep_alive

    @staticmethod
    def _read_chunked(rfile: BinaryIO) -> bytes:
        readline, read = rfile.readline, rfile.read
        parts: list[bytes] = []
        while True:
            size_line = readline(_MAX_LINE).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BadRequest("bad chunk size") from None
            if size == 0:
                while readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(read(size))
            readline(_MAX_LINE)

    # -- writing ---------------------------------------------------------------------------------

    def _wait(self, seconds: float) -> tuple[bool, int]:
        """(still running, ns waited)."""
        if seconds <= 0:
            return not self._stop.is_set(), 0
        t = time.perf_counter_ns()
        stopped = self._stop.wait(seconds)
        return not stopped, time.perf_counter_ns() - t

    def _write(self, conn: socket.socket, response: Response, keep_alive: bool) -> int:
        """Send a response; returns the ns spent in deliberate waits."""
        if response.action == "drop":
            _close(conn)
            return 0
        if response.action == "hang":
            _, waited = self._wait(HANG_S)
            _close(conn)
            return waited
        close = "" if keep_alive and response.action == "send" else "connection: close\r\n"
        if response.parts is None:
            running, waited = self._wait(response.delay_s)
            if not running:
                _close(conn)
                return waited
            body = response.body
            head = _head(response.status, response.headers, f"content-length: {len(body)}\r\n{close}")
            if response.action == "cut":
                conn.sendall(head + body[: len(body) // 2])
                _close(conn)
                return waited
            if response.commit:
                response.commit()
            conn.sendall(head + body)
            return waited
        return self._write_stream(conn, response, close)

    def _write_stream(self, conn: socket.socket, response: Response, close: str) -> int:
        """Chunked SSE: parts without delay go out together; one send when nothing is delayed."""
        waited_total = 0
        buffer = _head(response.status, response.headers, f"transfer-encoding: chunked\r\n{close}")
        pending: list[bytes] = []
        for delay, data in response.parts or []:
            if delay > 0:
                joined = b"".join(pending)
                if joined:  # an empty chunk would end the chunked body early
                    buffer += _chunk(joined)
                pending = []
                conn.sendall(buffer)
                buffer = b""
                running, waited = self._wait(delay)
                waited_total += waited
                if not running:
                    _close(conn)
                    return waited_total
            pending.append(data)
        joined = b"".join(pending)
        if joined:
            buffer += _chunk(joined)
        if response.action == "cut":
            conn.sendall(buffer)
            _close(conn)
            return waited_total
        if response.commit:
            response.commit()
        conn.sendall(buffer + b"0\r\n\r\n")
        return waited_total


def _close(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
