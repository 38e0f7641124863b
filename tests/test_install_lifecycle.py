"""install() / uninstall() take and give back: no atexit callback, thread or guard outlives them."""

from __future__ import annotations

import atexit
import gc
import threading
import weakref

import llmguard
from tests.conftest import openai_client

MSG = [{"role": "user", "content": "hi"}]


def test_repeated_installs_leak_no_atexit_callback_thread_or_guard(fresh_sim, home):
    def one_round() -> weakref.ref:
        guard = llmguard.install(home=str(home))
        # a deterministic call: the cache layer starts its writer and stores the answer
        openai_client(fresh_sim).chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=5, temperature=0)
        return weakref.ref(guard)

    one_round()
    llmguard.uninstall()
    gc.collect()
    callbacks, threads = atexit._ncallbacks(), threading.active_count()
    refs = [one_round() for _ in range(10)]
    llmguard.uninstall()
    gc.collect()
    assert atexit._ncallbacks() == callbacks
    assert threading.active_count() <= threads
    assert [r for r in refs if r() is not None] == []  # every replaced guard was let go
