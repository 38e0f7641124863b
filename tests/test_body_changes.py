"""Request rewrites splice new members in front of the SDK's bytes instead of re-encoding the prompt."""

from __future__ import annotations

import json

from llmguard.providers.base import body_with_changes


def test_new_members_are_spliced_and_the_prompt_bytes_are_kept_verbatim():
    raw = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"héllo \\u2028 x"}],"stream":true}'.encode()
    original = json.loads(raw)
    out = body_with_changes(raw, original, {"stream_options": {"include_usage": True}})
    assert out == (
        b'{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","messages":[{"role":"user",'
        b'"content":"h\\u00e9llo \\u2028 x"}],"stream":true}'.replace(b"h\\u00e9llo", "héllo".encode())
    )
    assert json.loads(out) == {**original, "stream_options": {"include_usage": True}}


def test_a_changed_existing_member_is_encoded_afresh_not_duplicated():
    raw = b'{"model":"gpt-4o","stream_options":{"include_usage":false},"stream":true}'
    original = json.loads(raw)
    out = body_with_changes(raw, original, {"model": "gpt-4o-mini", "stream_options": {"include_usage": True}})
    assert out == b'{"model":"gpt-4o-mini","stream_options":{"include_usage":true},"stream":true}'


def test_a_body_not_starting_with_a_brace_is_encoded_afresh():
    raw = b' \n{"model":"m","stream":true}'
    out = body_with_changes(raw, json.loads(raw), {"max_tokens": 5})
    assert out == b'{"model":"m","stream":true,"max_tokens":5}'
