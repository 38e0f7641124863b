"""The simulated OpenAI API's router: chat completions (`chat.py`), legacy completions
(`completions.py`), embeddings (`embeddings.py`) and the models list, under OpenAI's paths and Azure
OpenAI's. The Responses API has its own router (`responses.py`).

Handlers parse and validate the body, take the shared steps of `SimCore` in order, and build the
wire shapes with `wire.py` and `chat_wire.py`. Usage is counted with `counting` and billed by
`SimCore.finish`.

Conventions the real API does not publish, written down once:

* **Prompt tokens** follow `counting.message_tokens`; the request's `tools` and a `json_schema`
  response format count as the tokens of their JSON text (the real API injects both).
* **A tool call's output tokens** are the tiktoken count of the function name plus that of the
  arguments JSON text; a structured (`json_object` / `json_schema`) answer's are the count of its
  JSON text. Reasoning models add their hidden reasoning tokens as for text. Usage always equals
  what is billed.
* **n choices**: choice 0 answers like `n=1` of the same body would, choice `i` answers a body
  varied by `i`; prompt tokens are counted once and `completion_tokens` is the sum over choices;
  admission charges prompt + n × max tokens.
* **Tool choice** follows `structured.choose_tool`: `auto` calls a tool unless the last message is
  a tool result (then it answers in text); one call per choice.
* **Azure**: `/openai/deployments/{deployment}/...` needs `?api-version=` (else 404 "Resource not
  found", as Azure); the model billed is the body's `model` (the SDK sends it), else the deployment.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable

from llmguard.sim.core import Handler, SimCore, json_response, openai_ids
from llmguard.sim.openai import wire
from llmguard.sim.openai.chat import chat
from llmguard.sim.openai.completions import completions
from llmguard.sim.openai.embeddings import embeddings
from llmguard.sim.server import Request, Response

_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)")
_AZURE_MODEL = re.compile(r"/openai/models/([^/]+)")
_MODEL = re.compile(r"/v1/models/([^/]+)")

# (id, created, owned_by): what `GET /v1/models` lists.
MODELS: tuple[tuple[str, int, str], ...] = (
    ("gpt-4o-mini", 1721172741, "system"),
    ("gpt-4o", 1715367049, "system"),
    ("gpt-4.1", 1744316542, "system"),
    ("gpt-4.1-mini", 1744318173, "system"),
    ("gpt-4.1-nano", 1744321707, "system"),
    ("gpt-5", 1754425777, "system"),
    ("gpt-5-mini", 1754425928, "system"),
    ("o3-mini", 1737146383, "system"),
    ("o4-mini", 1744225351, "system"),
    ("gpt-4-turbo", 1712361441, "system"),
    ("gpt-3.5-turbo", 1677610602, "openai"),
    ("gpt-3.5-turbo-instruct", 1692901427, "system"),
    ("text-embedding-3-small", 1705948997, "system"),
    ("text-embedding-3-large", 1705953180, "system"),
    ("text-embedding-ada-002", 1671217299, "openai-internal"),
)
_MODEL_IDS = {m[0]: m for m in MODELS}

ModelHandler = Callable[[SimCore, Request, str | None], Response]
_HANDLERS: dict[str, ModelHandler] = {
    "chat/completions": chat,
    "completions": completions,
    "embeddings": embeddings,
}


class OpenAIRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): lambda request: chat(core, request, None),
            ("POST", "/v1/completions"): lambda request: completions(core, request, None),
            ("POST", "/v1/embeddings"): lambda request: embeddings(core, request, None),
            ("GET", "/v1/models"): self.models,
            ("GET", "/openai/models"): _azure(self.models),
        }

    def match(self, method: str, path: str) -> Handler | None:
        route = self._routes.get((method, path))
        if route is not None or method not in ("GET", "POST"):
            return route
        if method == "GET":
            found = _MODEL.fullmatch(path)
            if found:
                return self._model_route(found.group(1))
            found = _AZURE_MODEL.fullmatch(path)
            if found:
                return _azure(self._model_route(found.group(1)))
            return None
        found = _AZURE_DEPLOYMENT.fullmatch(path)
        if found is None:
            return None
        deployment = urllib.parse.unquote(found.group(1))
        handler = _HANDLERS[found.group(2)]
        return _azure(lambda request: handler(self.core, request, deployment))

    def reset_cache(self) -> None:
        self.core.prefix_cache.clear()

    # -- models ----------------------------------------------------------------------------------

    def models(self, request: Request) -> Response:
        """`GET /v1/models`. Faults apply (a flaky provider is flaky here too); rate limits do not:
        the call names no model and costs no tokens, and the real API limits it apart."""
        self.core.draw_fault("openai", False, request)
        data = wire.models_list([wire.model_object(*m) for m in MODELS])
        return json_response(200, data, openai_ids())

    def _model_route(self, model_id: str) -> Handler:
        return lambda request: self.model(request, model_id)

    def model(self, request: Request, model_id: str) -> Response:
        model_id = urllib.parse.unquote(model_id)
        self.core.draw_fault("openai", False, request)
        known = _MODEL_IDS.get(model_id)
        if known is None:
            message = f"The model '{model_id}' does not exist or you do not have access to it."
            body = wire.error(message, "invalid_request_error", None, "model_not_found")
            return json_response(404, body, openai_ids())
        return json_response(200, json.dumps(wire.model_object(*known)).encode(), openai_ids())


def _azure(handler: Handler) -> Handler:
    """Azure's gate: no `api-version` query, no resource."""

    def gated(request: Request) -> Response:
        if not urllib.parse.parse_qs(request.query).get("api-version"):
            return json_response(404, wire.azure_not_found(), openai_ids())
        return handler(request)

    return gated
