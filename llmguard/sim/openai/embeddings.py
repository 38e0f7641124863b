"""`POST /v1/embeddings` (and Azure's path for it): deterministic unit vectors, billed as input tokens.

An input is a text (counted with tiktoken) or a token list (its length); vectors have the model's
dimensions (3072 for text-embedding-3-large, else 1536) unless the request asks for fewer.
"""

from __future__ import annotations

from llmguard.sim.billing import BilledUsage
from llmguard.sim.core import SimCore, json_response, parse_json, positive_int
from llmguard.sim.counting import text_tokens
from llmguard.sim.openai import params, wire
from llmguard.sim.openai.errors import BadRequest
from llmguard.sim.server import Request, Response

_DIMENSIONS = {"text-embedding-3-large": 3072}


def embeddings(core: SimCore, request: Request, default_model: str | None) -> Response:
    body = parse_json(request)
    if body is None:
        raise BadRequest("We could not parse the JSON body of your request.")
    model, raw = body.get("model") or default_model, body.get("input")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", "model")
    inputs = params.embedding_inputs(raw)
    if inputs is None:
        raise BadRequest(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            "input",
        )
    kind = core.draw_fault("openai", False, request)
    tokens = sum(n if isinstance(item, list) else text_tokens(item, model) for item, n in inputs)
    headers = core.admit_call("openai", model, tokens, kind)
    wanted = body.get("dimensions")
    dims = wanted if positive_int(wanted) else _DIMENSIONS.get(model, 1536)
    vectors = [wire.embedding_vector(f"{model}\x00{item}", dims) for item, _ in inputs]
    fmt = "base64" if body.get("encoding_format") == "base64" else "float"
    data = wire.embeddings(model, vectors, tokens, fmt)
    headers.append(wire.processing_ms(core.latency_ms))
    response = json_response(200, data, headers, delay_s=core.latency_ms / 1000)
    return core.finish(response, kind, "openai", model, BilledUsage(input_tokens=tokens))
