"""Unit tests of the response cache (key, policy, store) and the in-flight deduplication primitives."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest

from llmguard.cache import store as cache_module
from llmguard.cache.entry import CachedResponse, decode, encode
from llmguard.cache.inflight import (
    GONE,
    HIT,
    WAITING,
    FollowerPoll,
    InflightRegistry,
    LeaderFailed,
    LockLeads,
    MarkerLeads,
    next_poll_delay,
    open_leads,
    poll_leader,
)
from llmguard.cache.key import cache_key, canonical_body, check_mode, is_cacheable, reads, writes
from llmguard.cache.lock_leads import supported as locks_supported
from llmguard.cache.maintenance import cache_clear, cache_prune, cache_stats, format_stats
from llmguard.cache.store import ResponseCache
from llmguard.providers import anthropic as anthropic_adapter
from llmguard.providers import openai as openai_adapter
from llmguard.providers.base import CallRequest

BASE = "http://127.0.0.1:8000"
REPO = Path(__file__).resolve().parents[1]
FAKE_KEY = "sk-llmguard-cachetest-9c1e5b7f3a"
SSE = (
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]}\n\n'
    b"data: [DONE]\n\n"
)


def chat(body: dict) -> CallRequest:
    call = openai_adapter.parse_request("/v1/chat/completions", json.dumps(body).encode())
    assert call is not None
    return call


def base_body(**extra) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}], "temperature": 0, **extra}


def key_of(body: dict, tags: dict | None = None, key_tags=(), base_url: str = BASE) -> str:
    return cache_key(chat(body), base_url, tags or {}, key_tags)


def response(body: bytes = b'{"id":"r1","choices":[{"message":{"content":"hi"}}]}', **fields) -> CachedResponse:
    defaults = dict(
        status=200,
        headers=[("content-type", "application/json")],
        body=body,
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=12,
        cached_input_tokens=2,
        output_tokens=5,
        reasoning_tokens=1,
        cost_usd=0.0021,
    )
    defaults.update(fields)
    return CachedResponse(**defaults)


@pytest.fixture
def store(tmp_path):
    cache = ResponseCache(tmp_path / "home" / "cache")
    yield cache
    cache.close()


def run_python(code: str, *args: str, wait: bool = True):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", textwrap.dedent(code), *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


# ---- the key ---------------------------------------------------------------------------------


def test_key_ignores_key_order_and_whitespace():
    compact = b'{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"user","content":"Say hi"}]}'
    spaced = b'{\n  "messages": [ {"content": "Say hi",   "role": "user"} ],\n  "temperature": 0,\n  "model": "gpt-4o-mini"\n}'
    first = openai_adapter.parse_request("/v1/chat/completions", compact)
    second = openai_adapter.parse_request("/v1/chat/completions", spaced)
    assert cache_key(first, BASE, {}) == cache_key(second, BASE, {})
    assert len(cache_key(first, BASE, {})) == 64


@pytest.mark.parametrize(
    "changed",
    [
        {"body": base_body(model="gpt-4o")},
        {"body": base_body(messages=[{"role": "user", "content": "Say hi!"}])},
        {"body": base_body(messages=[{"role": "user", "content": "Say  hi"}])},  # whitespace inside content
        {"body": base_body(temperature=0.2)},
        {"body": base_body(max_tokens=10)},
        {"body": base_body(seed=7)},
        {"body": base_body(n=2)},
        {"body": base_body(top_p=0.5)},
        {"body": base_body(logprobs=True)},
        {"body": base_body(parallel_tool_calls=False)},
        {"body": base_body(stream=True)},
        {"body": base_body(stream=True, stream_options={"include_usage": True})},
        {"tags": {"prompt_version": "v2"}},
        {"tags": {"tenant": "acme"}},
        {"base_url": "http://127.0.0.1:9000"},
    ],
)
def test_key_changes_with_anything_that_changes_the_answer(changed):
    reference = key_of(base_body(stream=True) if "stream_options" in changed.get("body", {}) else base_body())
    kwargs = {"body": base_body(), **changed}
    assert key_of(**kwargs) != reference


def test_key_ignores_default_valued_and_inert_fields():
    plain = key_of(base_body())
    noisy = base_body(
        n=1,
        top_p=1,
        presence_penalty=0,
        frequency_penalty=0.0,
        logprobs=False,
        stream=False,
        parallel_tool_calls=True,
        user="someone",
        metadata={"run": "42"},
        store=True,
        stream_options={"include_obfuscation": False},
        stop=None,
        seed=None,
    )
    assert key_of(noisy) == plain
    assert key_of(base_body(temperature=0.0)) == plain
    sampled = {k: v for k, v in base_body().items() if k != "temperature"}
    assert key_of({**sampled, "temperature": 1}) == key_of(sampled)


def test_key_does_not_confuse_booleans_with_numbers():
    body = base_body()
    assert canonical_body(chat({**body, "n": True})) != canonical_body(chat(body))
    assert "n" in canonical_body(chat({**body, "n": True}))


def test_key_for_anthropic_drops_its_defaults_and_metadata():
    def key(**extra):
        body = {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
            **extra,
        }
        call = anthropic_adapter.parse_request("/v1/messages", json.dumps(body).encode())
        return cache_key(call, "https://api.anthropic.com/", {})

    assert key(stream=False, metadata={"user_id": "u1"}, temperature=1) == key()
    assert key(temperature=0) != key()
    assert key(stream=True) != key()
    assert key() != key_of(base_body())  # another provider never shares a key


def test_key_tags_named_by_the_user_are_part_of_the_key():
    docs_a = {"docs": ["d1", "d2"], "feature": "search"}
    docs_b = {"docs": ["d1", "d3"], "feature": "search"}
    assert key_of(base_body(), docs_a, key_tags=["docs"]) != key_of(base_body(), docs_b, key_tags=["docs"])
    assert key_of(base_body(), docs_a) == key_of(base_body(), docs_b)  # not marked: not part of the key
    # a tag that only attributes cost is never part of the key
    assert key_of(base_body(), {"feature": "a"}) == key_of(base_body(), {"feature": "b"})


def test_tenant_and_prompt_version_always_count_and_are_compared_as_text():
    assert key_of(base_body(), {"tenant": "a"}) != key_of(base_body(), {"tenant": "b"})
    assert key_of(base_body(), {"tenant": 7}) == key_of(base_body(), {"tenant": "7"})
    assert key_of(base_body(), {"prompt_version": None}) == key_of(base_body())


def test_an_answer_cached_for_one_tenant_is_not_served_to_another(store):
    store.put(key_of(base_body(), {"tenant": "acme"}), response())
    assert store.get(key_of(base_body(), {"tenant": "acme"})) is not None
    assert store.get(key_of(base_body(), {"tenant": "globex"})) is None
    assert store.get(key_of(base_body())) is None


# ---- the policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "mode", "sampled", "expected"),
    [
        (base_body(), "on", False, True),
        ({"model": "m", "messages": []}, "on", False, False),  # temperature absent: provider default 1
        ({"model": "m", "messages": [], "temperature": 0.7}, "on", False, False),
        ({"model": "m", "messages": [], "temperature": 0.7}, "on", True, True),
        ({"model": "m", "messages": [], "temperature": 0.7, "seed": 3}, "on", False, True),
        (base_body(n=3), "on", True, False),
        (base_body(), "off", True, False),
        (base_body(), "read", False, True),
        (base_body(), "write", False, True),
        (base_body(), "refresh", False, True),
    ],
)
def test_cacheability_policy(body, mode, sampled, expected):
    assert is_cacheable(chat(body), mode, sampled) is expected


def test_embeddings_are_always_cacheable_unless_off():
    call = openai_adapter.parse_request("/v1/embeddings", b'{"model":"text-embedding-3-small","input":"x"}')
    assert is_cacheable(call, "on", cache_sampled=False)
    assert not is_cacheable(call, "off", cache_sampled=True)


def test_modes_read_and_write_as_documented():
    assert [m for m in cache_module.MODES if reads(m)] == ["on", "read"]
    assert [m for m in cache_module.MODES if writes(m)] == ["on", "write", "refresh"]
    with pytest.raises(ValueError, match="not one of on, off, read, write, refresh"):
        check_mode("sometimes")
    with pytest.raises(ValueError):
        is_cacheable(chat(base_body()), "yes", False)


# ---- the value format ------------------------------------------------------------------------


def test_unsafe_headers_never_reach_the_value():
    given = [
        ("Content-Type", "application/json"),
        ("Authorization", f"Bearer {FAKE_KEY}"),
        ("x-api-key", FAKE_KEY),
        ("Set-Cookie", f"session={FAKE_KEY}"),
        ("cookie", "a=b"),
        ("openai-organization", "org-123"),
        ("x-request-id", "req_1"),
        ("content-length", "42"),
        ("openai-model", "gpt-4o-mini-2024-07-18"),
    ]
    kept = response(headers=given).headers
    assert kept == [("content-type", "application/json"), ("openai-model", "gpt-4o-mini-2024-07-18")]
    assert FAKE_KEY.encode() not in encode("k" * 64, response(headers=given))


def test_every_truncation_of_a_value_is_rejected():
    key = "a" * 64
    value = encode(key, response())
    assert decode(key, value) is not None
    for length in range(len(value)):
        assert decode(key, value[:length]) is None, length


def test_every_single_byte_flip_is_rejected():
    key = "a" * 64
    value = encode(key, response())
    for position in range(0, len(value), 7):
        broken = bytearray(value)
        broken[position] ^= 0x20
        assert decode(key, bytes(broken)) is None, position


def test_a_value_stored_under_another_key_is_rejected():
    assert decode("b" * 64, encode("a" * 64, response())) is None


def test_old_entries_survive_a_new_field_and_unknown_fields_are_ignored():
    key = "a" * 64
    value = encode(key, response())
    header = cache_module._HEADER
    magic, meta_len, _ = header.unpack_from(value)
    meta = json.loads(value[header.size : header.size + meta_len])
    meta["field_from_the_future"] = 1
    del meta["reasoning_tokens"]  # an entry written before that field existed
    meta_bytes = json.dumps(meta).encode()
    import zlib

    rebuilt = header.pack(magic, len(meta_bytes), zlib.crc32(meta_bytes)) + meta_bytes + value[header.size + meta_len :]
    decoded = decode(key, rebuilt)
    assert decoded is not None and decoded.reasoning_tokens == 0 and decoded.body == response().body


# ---- the store -------------------------------------------------------------------------------


def test_round_trip_of_a_json_answer(store):
    original = response()
    store.put("k1", original)
    found = store.get("k1")
    assert found is not None
    assert found.body == original.body
    assert (found.status, found.model, found.provider) == (200, "gpt-4o-mini", "openai")
    assert (found.input_tokens, found.cached_input_tokens, found.output_tokens, found.reasoning_tokens) == (12, 2, 5, 1)
    assert found.cost_usd == pytest.approx(0.0021)
    assert found.created_at == original.created_at and found.checksum == original.checksum
    assert found.headers == [("content-type", "application/json")]
    assert not found.is_stream and not found.stale


def test_round_trip_of_a_stream_small_and_large(store):
    big = SSE * 2000  # several hundred KB: kept by diskcache in its own file
    store.put("small", response(body=SSE, is_stream=True, headers=[("content-type", "text/event-stream")]))
    store.put("big", response(body=big, is_stream=True))
    assert store.get("small").body == SSE and store.get("small").is_stream
    assert store.get("big").body == big


def test_threads_share_one_lazily_opened_store(store):
    opened = []
    start = threading.Barrier(16)

    def worker(i):
        start.wait()
        opened.append(store._store.open())
        for j in range(20):
            store.put(f"t{i}-{j}", response(body=b'{"t":"%d-%d"}' % (i, j)))
        for j in range(20):
            found = store.get(f"t{i}-{j}")
            assert found is not None and found.body == b'{"t":"%d-%d"}' % (i, j)
        opened.append(True)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert opened.count(True) == 16  # every worker's assertions passed
    assert len({id(cache) for cache in opened if cache is not True}) == 1
    assert store.stats()["entries"] == 16 * 20


def test_error_responses_are_never_stored(store):
    store.put("err", response(status=429, body=b'{"error":{"message":"slow down"}}'))
    store.put("err5", response(status=500))
    assert store.get("err") is None and store.get("err5") is None
    assert store.stats()["entries"] == 0


def test_ttl_expiry_and_stale_answers(tmp_path):
    with ResponseCache(tmp_path / "cache", ttl_s=3600) as store:
        store.put("old", response(created_at=time.time() - 7200))
        store.put("new", response())
        assert store.get("old") is None
        stale = store.get("old", allow_stale=True)
        assert stale is not None and stale.stale and stale.body == response().body
        fresh = store.get("new", allow_stale=True)
        assert fresh is not None and not fresh.stale
    with ResponseCache(tmp_path / "cache", ttl_s=None) as forever:
        assert forever.get("old") is not None  # no TTL: nothing expires


def test_construction_is_lazy_and_the_folder_owner_only(tmp_path):
    directory = tmp_path / "home" / "cache"
    store = ResponseCache(directory)
    assert not directory.exists()
    store.put("k", response())
    assert directory.is_dir()
    assert directory.stat().st_mode & 0o777 == 0o700
    assert directory.parent.stat().st_mode & 0o777 == 0o700
    store.close()


def test_importing_the_cache_module_does_not_import_diskcache():
    out = run_python("import sys, llmguard.cache.store, llmguard.cache.inflight; print('diskcache' in sys.modules)")
    assert out.strip() == "False"


# ---- corruption ------------------------------------------------------------------------------


def value_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.val"))


def test_a_garbled_value_is_dropped(store):
    store.put("good", response())
    store._store.open().set("bad", b"\x00garbage that is not an entry")
    store._store.open().set("pickled", {"a": 1})  # a foreign pickle in our folder
    store._store.open().set("text", "some text")
    for key in ("bad", "pickled", "text"):
        assert store.get(key) is None
        assert key not in store._store.open()  # dropped, not left to fail again
    assert store.get("good") is not None


def test_a_truncated_value_file_is_dropped(store):
    store.put("big", response(body=SSE * 2000, is_stream=True))
    (path,) = value_files(store.directory)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert store.get("big") is None
    assert "big" not in store._store.open()
    store.put("big", response(body=SSE * 2000, is_stream=True))
    assert store.get("big").body == SSE * 2000


def test_a_garbled_value_file_is_dropped(store):
    store.put("big", response(body=SSE * 2000, is_stream=True))
    (path,) = value_files(store.directory)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert store.get("big") is None
    assert "big" not in store._store.open()


def test_a_missing_value_file_is_a_miss_and_prune_drops_the_row(store):
    store.put("big", response(body=SSE * 2000, is_stream=True))
    (path,) = value_files(store.directory)
    path.unlink()
    assert store.get("big") is None
    assert store.prune() == 1
    assert "big" not in store._store.open()


@pytest.mark.parametrize("damage", ["garble_header", "truncate_partial", "truncate_empty", "garble_pages"])
def test_a_broken_database_file_is_reset_and_never_raises(tmp_path, damage):
    directory = tmp_path / "cache"
    with ResponseCache(directory) as store:
        for i in range(50):
            store.put(f"k{i}", response(body=b'{"n":%d}' % i))
        store.record_hit(0.5)
    db = directory / "cache.db"
    data = db.read_bytes()
    if damage == "garble_header":
        db.write_bytes(b"this is not an sqlite database" + data[30:])
    elif damage == "truncate_partial":
        db.write_bytes(data[:1500])
    elif damage == "truncate_empty":
        db.write_bytes(b"")
    else:
        db.write_bytes(data[:4096] + os.urandom(len(data) - 4096))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ResponseCache(directory) as store:
            found = [store.get(f"k{i}") for i in range(50)]
            # whatever survives is intact; whatever does not is a miss
            assert all(f is None or f.body == b'{"n":%d}' % i for i, f in enumerate(found))
            store.put("after", response())
            assert store.get("after") is not None
            assert store.stats()["entries"] >= 1
            store.prune()
    if damage != "truncate_empty":  # an empty file is a valid empty database, nothing to detect
        assert any("was damaged" in str(w.message) for w in caught)


def test_damage_while_open_never_raises(store):
    for i in range(30):
        store.put(f"k{i}", response(body=b'{"n":%d}' % i))
    db = store.directory / "cache.db"
    with open(db, "r+b") as handle:
        handle.write(b"\x00" * 4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [store.get(f"k{i}") for i in range(30)]
        store.put("after", response())
        assert all(r is None or r.body == b'{"n":%d}' % i for i, r in enumerate(results))
        assert store.get("after") is not None


def test_disk_errors_on_put_warn_once_and_never_raise(store, monkeypatch):
    store.put("k", response())
    underlying = store._store.open()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(underlying, "set", full)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store.put("k2", response())
        store.put("k3", response())
    assert len([w for w in caught if "cannot write the cache" in str(w.message)]) == 1
    assert store.get("k2") is None and store.get("k") is not None


def test_an_unusable_folder_disables_the_cache_without_raising(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = ResponseCache(blocker / "cache")
        store.put("k", response())
        assert store.get("k") is None
        assert store.stats()["entries"] == 0
    assert any("cannot open the cache" in str(w.message) for w in caught)


# ---- size, stats, clear, prune ---------------------------------------------------------------


def test_size_limit_evicts_the_least_recently_stored(tmp_path):
    chunk = b"x" * 40_000  # over diskcache's 32 KB threshold: one file each, counted exactly
    with ResponseCache(tmp_path / "cache", size_limit=400_000) as store:
        for i in range(40):
            store.put(f"k{i}", response(body=chunk + b"%d" % i))
        assert store.get("k0") is None  # the oldest went first
        assert store.get("k39") is not None  # the newest stayed
        stats = store.stats()
        assert stats["entries"] < 40
        assert stats["bytes"] <= 400_000 + 2 * len(chunk)


def test_batched_puts_cull_once_and_still_keep_the_size_limit(tmp_path):
    """The writer stores answers in batches; a batch culls on its last set only (culling on every
    set was half of each set's cost), for as many entries as its sets would have culled."""
    chunk = b"x" * 40_000
    with ResponseCache(tmp_path / "cache", size_limit=400_000) as store:
        for start in range(0, 40, 8):
            store.put_many([(f"k{i}", response(body=chunk + b"%d" % i)) for i in range(start, start + 8)])
        assert store.get("k0") is None and store.get("k39") is not None
        stats = store.stats()
        assert stats["entries"] < 40
        assert stats["bytes"] <= 400_000 + 2 * len(chunk)
        cache = store._store.open()
        assert cache.cull_limit == 2  # restored on the connection
        assert cache.reset("cull_limit") == 2  # and the Settings table other processes read: untouched


def test_prune_culls_to_a_smaller_size_limit(tmp_path):
    chunk = b"y" * 40_000
    with ResponseCache(tmp_path / "cache") as store:
        for i in range(20):
            store.put(f"k{i}", response(body=chunk + b"%d" % i))
    with ResponseCache(tmp_path / "cache", size_limit=200_000) as smaller:
        assert smaller.prune() > 0
        assert smaller.stats()["bytes"] <= 200_000
        assert smaller.get("k19") is not None


def test_prune_drops_expired_and_damaged_entries_only(tmp_path):
    with ResponseCache(tmp_path / "cache", ttl_s=60) as store:
        store.put("old1", response(created_at=time.time() - 600))
        store.put("old2", response(created_at=time.time() - 600))
        store.put("fresh", response())
        store._store.open().set("broken", b"LGC1 nonsense")
        assert store.stats()["expired"] == 2
        assert store.prune() == 3
        assert store.get("fresh") is not None
        assert store.get("old1", allow_stale=True) is None
        assert store.stats()["entries"] == 1


def test_stats_count_hits_misses_and_savings(store):
    store.put("a", response(created_at=1_700_000_000.0))
    store.put("b", response())
    store.record_hit(0.25)
    store.record_hit(0.125)
    store.record_hit(None)  # cost unknown
    store.record_miss()
    stats = store.stats()
    assert stats["entries"] == 2
    assert stats["bytes"] > 0
    assert stats["oldest_ts"] == 1_700_000_000.0
    assert stats["oldest_age_s"] > 0
    assert (stats["hits"], stats["misses"]) == (3, 1)
    assert stats["hit_rate"] == pytest.approx(0.75)
    assert stats["saved_usd"] == pytest.approx(0.375)
    text = format_stats(stats)
    assert "entries   2" in text and "lookups   4: 3 hits, 1 miss (75.0% hit rate)" in text
    assert "saved     $0.375\n" in text + "\n"


def test_clear_removes_entries_and_resets_counters(store):
    for i in range(5):
        store.put(f"k{i}", response())
    store.record_hit(1.0)
    assert store.clear() == 5
    stats = store.stats()
    assert (stats["entries"], stats["hits"], stats["saved_usd"], stats["hit_rate"]) == (0, 0, 0.0, None)
    assert store.get("k0") is None


def test_counters_persist_across_instances(tmp_path):
    with ResponseCache(tmp_path / "cache") as first:
        first.record_hit(0.5)
        first.record_miss()
    with ResponseCache(tmp_path / "cache") as second:
        second.record_hit(0.25)
        stats = second.stats()
    assert (stats["hits"], stats["misses"]) == (2, 1)
    assert stats["saved_usd"] == pytest.approx(0.75)


def test_counters_are_shared_by_concurrent_processes(tmp_path):
    code = """
        import sys
        from pathlib import Path
        from llmguard.cache.store import ResponseCache
        store = ResponseCache(Path(sys.argv[1]))
        for _ in range(50):
            store.record_hit(0.001)
            store.record_miss()
        store.close()
    """
    children = [run_python(code, str(tmp_path / "cache"), wait=False) for _ in range(3)]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    stats = cache_stats(tmp_path)
    assert (stats["hits"], stats["misses"]) == (150, 150)
    assert stats["saved_usd"] == pytest.approx(0.15)


def test_cli_functions(tmp_path):
    home = tmp_path / "home"
    assert cache_stats(home)["entries"] == 0
    assert not home.exists()  # stats of nothing creates nothing
    assert cache_clear(home) == 0 and cache_prune(home) == 0
    with ResponseCache(home / "cache") as store:
        store.put("old", response(created_at=time.time() - 30 * 86400))
        store.put("new", response())
        store.record_hit(0.01)
    stats = cache_stats(home)
    assert stats["entries"] == 2 and stats["expired"] == 1 and stats["hits"] == 1
    assert "llmguard cache prune" in format_stats(stats)
    assert cache_prune(home) == 1
    assert cache_stats(home)["entries"] == 1
    assert cache_clear(home) == 1
    assert cache_stats(home)["entries"] == 0
    assert "no lookups yet" in format_stats(cache_stats(home))


def test_no_api_key_is_ever_written(tmp_path):
    home = tmp_path / "home"
    inflight = open_leads(home / "inflight")
    with ResponseCache(home / "cache") as store:
        for i in range(20):
            body = base_body(messages=[{"role": "user", "content": f"question {i}"}])
            key = key_of(body, {"tenant": "acme"})
            assert inflight.try_lead(key, 60)
            headers = [
                ("content-type", "application/json"),
                ("authorization", f"Bearer {FAKE_KEY}"),
                ("x-api-key", FAKE_KEY),
                ("set-cookie", FAKE_KEY),
            ]
            payload = b'{"answer":"MARKER-%d"}' % i if i % 2 else b"MARKER " + SSE * 1000
            store.put(key, response(body=payload, headers=headers, is_stream=not i % 2))
            store.record_hit(0.001)
            inflight.release(key)
    inflight.close()
    blobs = b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file())
    assert b"MARKER" in blobs  # the answers are there, so the search below is meaningful
    assert FAKE_KEY.encode() not in blobs


# ---- in-process deduplication ----------------------------------------------------------------


def test_fifty_threads_one_leader_everyone_gets_its_answer():
    registry = InflightRegistry()
    answer = response()
    claimed = threading.Barrier(50)
    results: list = [None] * 50
    roles: list = [None] * 50

    def worker(i):
        claim = registry.claim("key")
        roles[i] = claim.is_leader
        claimed.wait()  # every claim is made before the leader finishes
        if claim.is_leader:
            claim.finish(answer)
            results[i] = answer
        else:
            outcome = claim.wait(timeout=60)
            results[i] = outcome.response

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert roles.count(True) == 1
    assert all(result is answer for result in results)
    assert len(registry) == 0


def test_fifty_asyncio_tasks_one_leader():
    registry = InflightRegistry()
    answer = response()

    async def worker():
        claim = registry.claim("key")
        if claim.is_leader:
            for _ in range(5):
                await asyncio.sleep(0)  # let every follower start waiting
            claim.finish(answer)
            return True, answer
        outcome = await claim.await_async(timeout=60)
        return False, outcome.response

    async def main():
        return await asyncio.gather(*(worker() for _ in range(50)))

    results = asyncio.run(main())
    assert [leader for leader, _ in results].count(True) == 1
    assert all(found is answer for _, found in results)


def test_threads_and_event_loops_wait_on_the_same_leader():
    registry = InflightRegistry()
    answer = response()
    leader = registry.claim("key")
    assert leader.is_leader
    followers_ready = threading.Barrier(10 + 2 + 1)  # 10 threads, 2 loops, the leader
    results: list = []
    lock = threading.Lock()

    def thread_follower():
        claim = registry.claim("key")
        followers_ready.wait()
        outcome = claim.wait(timeout=60)
        with lock:
            results.append(outcome.response)

    def loop_followers():
        async def one():
            return (await registry.claim("key").await_async(timeout=60)).response

        async def main():
            tasks = [asyncio.ensure_future(one()) for _ in range(10)]
            await asyncio.sleep(0)  # every task has claimed and registered its future
            await asyncio.to_thread(followers_ready.wait)
            return await asyncio.gather(*tasks)

        found = asyncio.run(main())
        with lock:
            results.extend(found)

    threads = [threading.Thread(target=thread_follower) for _ in range(10)]
    threads += [threading.Thread(target=loop_followers) for _ in range(2)]
    for thread in threads:
        thread.start()
    followers_ready.wait()
    assert leader.followers == 30
    leader.finish(answer)  # from this thread: resolves other threads' events and other loops' futures
    for thread in threads:
        thread.join()
    assert len(results) == 30 and all(found is answer for found in results)


def test_a_failed_leader_releases_its_followers_with_its_error():
    registry = InflightRegistry()
    leader = registry.claim("key")
    followers = [registry.claim("key") for _ in range(5)]
    boom = ConnectionError("provider down")
    outcomes: list = []
    threads = [threading.Thread(target=lambda c=c: outcomes.append(c.wait(timeout=60))) for c in followers[:4]]
    for thread in threads:
        thread.start()
    leader.finish(None, boom)
    for thread in threads:
        thread.join()
    async_outcome = asyncio.run(followers[4].await_async(timeout=60))
    for outcome in [*outcomes, async_outcome]:
        assert not outcome.ok and not outcome.timed_out and outcome.error is boom
    assert registry.claim("key").is_leader  # the next caller sends its own call


def test_a_leader_leaving_its_with_block_releases_followers():
    registry = InflightRegistry()
    follower_of_raising = None
    with pytest.raises(KeyError):
        with registry.claim("a") as leader:
            assert leader.is_leader
            follower_of_raising = registry.claim("a")
            raise KeyError("bug in the leader")
    outcome = follower_of_raising.wait(timeout=60)
    assert isinstance(outcome.error, KeyError) and not outcome.timed_out

    with registry.claim("b"):
        follower_of_silent = registry.claim("b")
    outcome = follower_of_silent.wait(timeout=60)
    assert isinstance(outcome.error, LeaderFailed) and not outcome.timed_out


def test_a_follower_wait_is_bounded_by_its_timeout():
    registry = InflightRegistry()
    registry.claim("key")  # a leader that never finishes
    follower = registry.claim("key")
    assert follower.wait(timeout=0.01).timed_out
    outcome = asyncio.run(follower.await_async(timeout=0.01))
    assert outcome.timed_out and not outcome.ok
    assert follower._flight._futures == []  # the timed-out waiter left nothing behind


def test_finishing_twice_or_late_never_ends_a_newer_flight():
    registry = InflightRegistry()
    first = registry.claim("key")
    first.finish(response())
    second = registry.claim("key")
    assert second.is_leader
    first.finish(None, RuntimeError("late"))  # a second finish of an old flight
    first.abandon()
    follower = registry.claim("key")
    assert not follower.is_leader
    second.finish(response(body=b'{"second":true}'))
    assert follower.wait(timeout=60).response.body == b'{"second":true}'


def test_roles_are_enforced():
    registry = InflightRegistry()
    leader = registry.claim("key")
    follower = registry.claim("key")
    with pytest.raises(RuntimeError):
        leader.wait(timeout=0)
    with pytest.raises(RuntimeError):
        follower.finish(response())
    registry.finish("key", response())
    assert follower.wait(timeout=60).ok


def test_a_follower_arriving_after_the_answer_gets_it_at_once():
    registry = InflightRegistry()
    leader = registry.claim("key")
    follower = registry.claim("key")
    leader.finish(response())
    assert asyncio.run(follower.await_async(timeout=None)).ok
    assert follower.wait(timeout=None).ok


# ---- cross-process deduplication -------------------------------------------------------------


# Both elections: byte-range locks (the default on Linux) and marker files (macOS, Windows, and a
# filesystem that refuses locks). A child process picks its kind by name.
KINDS = ["locks", "markers"] if locks_supported() else ["markers"]
CLASSES = {"locks": LockLeads, "markers": MarkerLeads}
kinds = pytest.mark.parametrize("kind", KINDS)

RACE = """
    import sys, time
    from pathlib import Path
    from llmguard.cache.inflight import LockLeads, MarkerLeads
    inflight = {"locks": LockLeads, "markers": MarkerLeads}[sys.argv[4]](Path(sys.argv[1]))
    inflight.is_led("warm-up")  # open the store before the race
    Path(sys.argv[2]).write_text("ready")
    go = Path(sys.argv[3])
    while not go.exists():
        time.sleep(0.001)
    print(inflight.try_lead("the-key", 60.0))
"""


@kinds
def test_three_processes_racing_to_lead_elect_exactly_one(tmp_path, kind):
    directory = tmp_path / "inflight"
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(3)]
    children = [run_python(RACE, str(directory), str(ready[i]), str(go), kind, wait=False) for i in range(3)]
    while not all(path.exists() for path in ready):
        assert all(child.poll() is None for child in children), children[0].stderr.read()
        time.sleep(0.005)
    go.write_text("go")
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(out.strip())
    assert sorted(outputs) == ["False", "False", "True"]


DIES_LEADING = """
    import os, sys
    from pathlib import Path
    from llmguard.cache.inflight import LockLeads, MarkerLeads
    leads = {"locks": LockLeads, "markers": MarkerLeads}[sys.argv[2]](Path(sys.argv[1]))
    assert leads.try_lead("the-key", 60.0)
    print("leading", flush=True)
    sys.stdin.read()  # held until the test kills us
"""


@pytest.mark.skipif(not locks_supported(), reason="byte-range OFD locks are Linux's")
def test_a_leader_killed_with_sigkill_lets_go_at_once(tmp_path):
    """A marker file blocked its key for the marker's TTL (120 s by default) after a kill -9; a lock
    ends with its holder, so the next process leads the same key right away."""
    directory = tmp_path / "inflight"
    child = run_python(DIES_LEADING, str(directory), "locks", wait=False)
    assert child.stdout.readline().strip() == "leading"
    leads = LockLeads(directory)
    assert leads.is_led("the-key")
    assert not leads.try_lead("the-key", 60.0)
    child.kill()  # SIGKILL: no handler, no release
    child.wait(timeout=30)
    assert not leads.is_led("the-key")
    assert leads.try_lead("the-key", 60.0)
    leads.close()


def test_a_dead_leaders_marker_expires(tmp_path, monkeypatch):
    directory = tmp_path / "inflight"
    run_python(
        """
        import os, sys
        from pathlib import Path
        from llmguard.cache.inflight import MarkerLeads
        assert MarkerLeads(Path(sys.argv[1])).try_lead("the-key", 60.0)
        os._exit(0)  # dies without releasing
        """,
        str(directory),
    )
    inflight = MarkerLeads(directory)
    assert inflight.is_led("the-key")
    assert not inflight.try_lead("the-key", 60.0)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)  # two minutes later
    assert not inflight.is_led("the-key")
    assert inflight.try_lead("the-key", 60.0)
    inflight.close()


@kinds
def test_only_the_leader_releases_its_lead(tmp_path, kind):
    a = CLASSES[kind](tmp_path / "inflight")
    b = CLASSES[kind](tmp_path / "inflight")  # a second guard in the same process is another holder
    assert a.try_lead("k", 60)
    assert not b.try_lead("k", 60)
    b.release("k")
    assert b.is_led("k")
    assert a.renew("k", 60) and not b.renew("k", 60)
    a.release("k")
    assert not b.is_led("k")
    assert b.try_lead("k", 60)
    assert not a.is_led("other") and a.try_lead("other", 60)  # keys are independent
    a.close()
    b.close()


@pytest.mark.skipif(not locks_supported(), reason="byte-range OFD locks are Linux's")
def test_a_forked_child_does_not_inherit_its_parents_leads(tmp_path):
    """A forked child shares its parent's open file descriptions, and with them OFD locks: it must
    open its own, or it would think it leads its parent's keys and could release them."""
    leads = LockLeads(tmp_path / "inflight")
    assert leads.try_lead("k", 60)
    pid = os.fork()
    if pid == 0:  # the child: exit status says what it saw
        status = 0 if (not leads.renew("k", 60) and leads.is_led("k") and not leads.try_lead("k", 60)) else 3
        leads.release("k")  # must not end the parent's lead
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert leads.renew("k", 60)
    other = LockLeads(tmp_path / "inflight")
    assert other.is_led("k") and not other.try_lead("k", 60)
    leads.close()
    assert other.try_lead("k", 60)  # closing the descriptor ended the lead
    other.close()


@pytest.mark.skipif(not locks_supported(), reason="byte-range OFD locks are Linux's")
def test_a_filesystem_that_refuses_locks_gets_marker_files(tmp_path, monkeypatch):
    import errno
    import fcntl

    from llmguard.cache import lock_leads

    real = fcntl.fcntl
    refused = []

    def refusing(fd, command, arg=0):
        if command == lock_leads._F_OFD_SETLK:
            refused.append(fd)
            raise OSError(errno.ENOLCK, "No locks available")
        return real(fd, command, arg)

    monkeypatch.setattr(fcntl, "fcntl", refusing)  # as some network and FUSE mounts answer
    a, b = LockLeads(tmp_path / "inflight"), LockLeads(tmp_path / "inflight")
    assert a.try_lead("k", 60) and not b.try_lead("k", 60)
    assert b.is_led("k") and a.fallback is not None
    assert any(path.name != "leads.lock" for path in (tmp_path / "inflight").iterdir())  # a marker file
    a.release("k")
    assert not b.is_led("k")
    assert len(refused) == 2  # one probe each: after a refusal, markers without asking again
    a.close()
    b.close()


@pytest.mark.skipif(not locks_supported(), reason="byte-range OFD locks are Linux's")
def test_a_process_opening_while_another_probes_still_uses_locks(tmp_path):
    """Opening probes one byte to see that the filesystem takes locks. Two processes opening at the
    same instant collide on that byte: the loser took the collision for a refusal, fell back to
    marker files and led keys the other already led (seen as a follower waiting out its 60 s)."""
    import fcntl

    from llmguard.cache import lock_leads

    directory = tmp_path / "inflight"
    directory.mkdir(mode=0o700)
    prober = os.open(directory / lock_leads.LOCK_FILENAME, os.O_RDWR | os.O_CREAT, 0o600)
    probe = lock_leads._FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, lock_leads._OFFSET_MASK, 1, 0)
    fcntl.fcntl(prober, lock_leads._F_OFD_SETLK, probe)  # another process mid-probe
    leader, follower = LockLeads(directory), LockLeads(directory)
    assert leader.try_lead("k", 60)
    assert not follower.try_lead("k", 60)
    assert leader.fallback is None and follower.fallback is None
    os.close(prober)
    leader.close()
    follower.close()


def test_a_leader_whose_marker_expired_does_not_remove_its_successors(tmp_path, monkeypatch):
    slow = MarkerLeads(tmp_path / "inflight")
    successor = MarkerLeads(tmp_path / "inflight")
    assert slow.try_lead("k", 60)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 120)  # the slow leader's marker expired
    assert successor.try_lead("k", 60)
    assert not slow.renew("k", 60)
    slow.release("k")
    assert successor.is_led("k")
    slow.close()
    successor.close()


@kinds
def test_poll_leader_states(tmp_path, kind):
    store = ResponseCache(tmp_path / "cache")
    inflight = CLASSES[kind](tmp_path / "inflight")
    other = CLASSES[kind](tmp_path / "inflight")  # the follower asks through its own election
    assert poll_leader(store, other, "k").state == GONE
    assert inflight.try_lead("k", 60)
    assert poll_leader(store, other, "k").state == WAITING
    stored = response()
    store.put("k", stored)
    polled = poll_leader(store, other, "k")
    assert polled.state == HIT and polled.response.body == stored.body
    assert poll_leader(store, other, "k", since=stored.created_at + 1).state == WAITING
    inflight.release("k")
    assert poll_leader(store, other, "k", since=stored.created_at + 1).state == GONE
    store.close()
    inflight.close()
    other.close()


FOLLOWER = """
    import sys, time
    from pathlib import Path
    from llmguard.cache.store import ResponseCache
    from llmguard.cache.inflight import LockLeads, MarkerLeads, FollowerPoll, WAITING, poll_leader
    home = Path(sys.argv[1])
    kind = {"locks": LockLeads, "markers": MarkerLeads}[sys.argv[3]]
    store, inflight = ResponseCache(home / "cache"), kind(home / "inflight")
    assert not inflight.try_lead("the-key", 60.0)
    poll = FollowerPoll(time.monotonic() + 60)
    result = poll_leader(store, inflight, "the-key")
    written = Path(sys.argv[2] + ".tmp")
    written.write_text(result.state)
    written.replace(sys.argv[2])  # atomic: the test sees the file only once it is written
    while result.state == WAITING:
        delay = poll.next_delay()
        if delay is None:
            break
        time.sleep(delay)
        result = poll_leader(store, inflight, "the-key")
    print(result.state, result.response.checksum if result.response else "-")
"""


@kinds
def test_followers_in_other_processes_get_the_leaders_answer(tmp_path, kind):
    home = tmp_path / "home"
    inflight = CLASSES[kind](home / "inflight")
    assert inflight.try_lead("the-key", 60.0)
    ready = [tmp_path / "ready0", tmp_path / "ready1"]
    children = [run_python(FOLLOWER, str(home), str(path), kind, wait=False) for path in ready]
    while not all(path.exists() for path in ready):
        assert all(child.poll() is None for child in children), children[0].stderr.read()
        time.sleep(0.005)
    assert [path.read_text() for path in ready] == [WAITING, WAITING]
    answer = response(body=SSE, is_stream=True)
    with ResponseCache(home / "cache") as store:
        store.put("the-key", answer)  # store first, then release: the protocol's order
    inflight.release("the-key")
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.split() == [HIT, answer.checksum]
    inflight.close()


def test_poll_delays_grow_are_capped_and_respect_the_deadline():
    delays = [next_poll_delay(i) for i in range(40)]
    assert delays == sorted(delays) and delays[0] > 0 and max(delays) == next_poll_delay(10_000)
    assert max(delays) < 1.0
    poll = FollowerPoll(deadline=100.0)
    assert poll.next_delay(now=99.999) <= 0.001 + 1e-12
    assert poll.next_delay(now=100.0) is None
    assert FollowerPoll(deadline=100.0).next_delay(now=50.0) == next_poll_delay(0)


@kinds
def test_an_unusable_inflight_folder_means_everyone_leads(tmp_path, kind):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inflight = CLASSES[kind](blocker / "inflight")
        assert inflight.try_lead("k", 60) and inflight.try_lead("k", 60)
        assert not inflight.is_led("k")
    assert any("not deduplicated" in str(w.message) for w in caught)
