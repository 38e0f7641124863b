"""A stream's events reach the SDK before the meter parses them, and the meter still times them right.

The meter used to parse every event of a read before handing the read on; a provider that sends the
whole answer in one read (the simulator does, at zero latency) made the first token wait for all of
it. Events are now looked at on the next read or at the end, each stamped with when it arrived, so
the recorded time to first token is the arrival of the first content event, not when it was parsed.
"""

from __future__ import annotations

import llmguard
from tests.conftest import openai_client, rows

MSG = [{"role": "user", "content": "Tell me a short story about a lighthouse"}]


def test_time_to_first_token_is_when_the_first_content_arrived(fresh_sim, home):
    # first token after 300 ms, then one every 500 ms: a stamp taken when an event is parsed (on
    # the next read, 500 ms later) would record 800 ms or more
    fresh_sim.configure(latency_ms=300, per_token_ms=500)
    guard = llmguard.install(home=str(home), cache="off")
    try:
        client = openai_client(fresh_sim, timeout=30)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=4, stream=True)
        chunks = list(stream)
        guard.ledger.flush()
        (row,) = rows(guard)
    finally:
        llmguard.uninstall()
    assert all(chunk.usage is None for chunk in chunks)  # the usage chunk we asked for is still dropped
    assert row["output_tokens"] == 4 and row["status"] == "ok"
    assert fresh_sim.stats["models"]["gpt-4o-mini"]["output_tokens"] == 4
    assert 300 <= row["ttft_ms"] < 750, row["ttft_ms"]
    assert row["total_ms"] >= 300 + 3 * 500


def test_usage_is_read_when_the_whole_answer_comes_in_one_read(fresh_sim, home):
    guard = llmguard.install(home=str(home), cache="off")  # zero latency: one read holds every event
    try:
        client = openai_client(fresh_sim, timeout=30)
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=MSG, max_tokens=6, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        guard.ledger.flush()
        (row,) = rows(guard)
    finally:
        llmguard.uninstall()
    billed = fresh_sim.stats["models"]["gpt-4o-mini"]
    assert text and row["output_tokens"] == billed["output_tokens"] == 6
    assert row["input_tokens"] == billed["input_tokens"]
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["total_ms"]
