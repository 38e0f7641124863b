"""`POST /v1/completions`, the legacy text completions endpoint (and Azure's path for it).

Prompt tokens are the prompt texts' tiktoken counts (no message overhead); choices are ordered
prompt by prompt, n per prompt, as the real API orders them; `max_tokens` defaults to 16.
"""

from __future__ import annotations

from typing import Any

from llmguard.sim.billing import BilledUsage
from llmguard.sim.completion import Completion, make_completion
from llmguard.sim.core import SimCore, json_response, parse_json, sse_response
from llmguard.sim.counting import text_tokens
from llmguard.sim.openai import chat_wire, params, wire
from llmguard.sim.openai.chat import choice_body
from llmguard.sim.openai.errors import BAD_JSON, BadRequest
from llmguard.sim.server import Request, Response


def completions(core: SimCore, request: Request, default_model: str | None) -> Response:
    body = parse_json(request)
    if body is None:
        raise BadRequest(BAD_JSON)
    model, prompts, max_tokens, n = _parse(body, default_model)
    stream = body.get("stream") is True
    kind = core.draw_fault("openai", stream, request)
    prompt = sum(n_tokens if isinstance(p, list) else text_tokens(p, model) for p, n_tokens in prompts)
    headers = core.admit_call("openai", model, core.charge(prompt, len(prompts) * n * max_tokens), kind)
    answers = [
        make_completion("completions", choice_body({**body, "prompt": p}, i), model, max_tokens, core.seed)
        for p, _ in prompts
        for i in range(n)
    ]
    out = sum(c.output_tokens for c in answers)
    reasoning = sum(c.reasoning_tokens for c in answers)
    use = chat_wire.completion_usage(prompt, out)
    usage = BilledUsage(input_tokens=prompt, output_tokens=out, reasoning_tokens=reasoning)
    no_usage = core.drops_usage(kind)
    cid, created = wire.text_completion_id(), core.now()
    delay = core.delay(max(c.output_tokens for c in answers))
    headers.append(wire.processing_ms(delay * 1000))
    if stream:
        options = body.get("stream_options")
        include = isinstance(options, dict) and options.get("include_usage") is True
        response = _stream(core, headers, (cid, created, model), answers, use, include and not no_usage)
    else:
        texts = [(c.text, _finish(c)) for c in answers]
        data = chat_wire.text_completion(cid, created, model, texts, None if no_usage else use)
        response = json_response(200, data, headers, delay_s=delay)
    return core.finish(response, kind, "openai", model, usage)


def _parse(body: dict[str, Any], default_model: str | None) -> tuple[str, list[tuple[Any, int]], int, int]:
    """(model, prompts, max_tokens, n) of a valid body, else the 400 the real API gives."""
    model = body.get("model") or default_model
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    prompts = params.legacy_prompts(body.get("prompt"))
    if prompts is None:
        raise BadRequest(
            "Invalid type for 'prompt': expected a string, an array of strings, an array of tokens, "
            "or an array of token arrays.",
            "prompt",
            "invalid_type",
        )
    if body.get("echo") is True:
        raise BadRequest("echo is not supported by llmguard.sim", "echo", "unsupported_parameter")
    if body.get("logprobs") is not None:
        raise BadRequest(params.LOGPROBS, "logprobs", "unsupported_parameter")
    max_tokens = body.get("max_tokens")
    max_tokens = params.check_integer("max_tokens", params.LEGACY_MAX_TOKENS if max_tokens is None else max_tokens, 1)
    n = params.check_integer("n", body.get("n") if body.get("n") is not None else 1, 1, params.MAX_N)
    best_of = body.get("best_of")
    if best_of is not None and best_of != n:
        raise BadRequest("best_of is not supported by llmguard.sim (except best_of == n)", "best_of")
    return model, prompts, max_tokens, n


def _stream(
    core: SimCore,
    headers: list[tuple[str, str]],
    ids: tuple[str, int, str],
    answers: list[Completion],
    use: dict[str, Any],
    include_usage: bool,
) -> Response:
    """The legacy SSE answer; `ids` is (completion id, created, model)."""
    cid, created, model = ids
    choices = [(c.pieces, _finish(c)) for c in answers]
    events, tail = chat_wire.text_completion_stream(cid, created, model, choices, use, include_usage)
    lead = max(c.reasoning_tokens for c in answers)
    # no preamble: an empty part would go out as an empty chunk, which ends a chunked body
    return sse_response(headers, [part for part in core.stream_parts(b"", events, tail, lead) if part[1]])


def _finish(answer: Completion) -> str:
    return "length" if answer.truncated else "stop"
