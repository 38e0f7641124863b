"""The simulated OpenAI API: chat completions, legacy completions, embeddings, models, and the same
under Azure OpenAI's paths (each route a method of one object).

Handlers parse and validate the body, take the shared steps of `SimCore` in order, and build the
wire shapes with `openai_api`. Usage is counted with `counting` and billed by `SimCore.stats`.

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
from dataclasses import dataclass
from typing import Any

from llmguard.sim import openai_api
from llmguard.sim.billing import BilledUsage
from llmguard.sim.buckets import Admission
from llmguard.sim.caching import MIN_PREFIX, prompt_token_ids
from llmguard.sim.completion import make_completion
from llmguard.sim.core import SimCore, json_response, openai_ids, parse_json, positive_int
from llmguard.sim.counting import encoding_for, message_tokens, text_tokens
from llmguard.sim.server import Request, Response
from llmguard.sim.structured import SchemaError, ToolChoiceError, choose_tool, instance_for, json_text
from llmguard.sim.text import request_digest

Handler = Callable[[Request], Response]
_EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}
_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
MAX_N = 128
LEGACY_MAX_TOKENS = 16  # the legacy completions endpoint's default
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)")
_AZURE_MODEL = re.compile(r"/openai/models/([^/]+)")
_MODEL = re.compile(r"/v1/models/([^/]+)")
_JSON_OBJECT_SCHEMA = {  # what `response_format: json_object` answers with
    "type": "object",
    "properties": {
        "answer": {"type": "string", "minLength": 12},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
    },
    "required": ["answer", "confidence", "tags"],
    "additionalProperties": False,
}
_NO_PARAMETERS = {"type": "object", "properties": {}}
_LOGPROBS = "logprobs are not supported by llmguard.sim"

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


def bad_request(message: str, param: str | None = None, code: str | None = None) -> Response:
    return json_response(400, openai_api.error(message, "invalid_request_error", param, code), openai_ids())


def _choice_body(body: dict[str, Any], index: int) -> dict[str, Any]:
    """Choice 0 answers the body itself; choice i a body varied by i (so the answers differ)."""
    return body if index == 0 else {**body, "\x00choice": index}


def _token_pieces(tokens: list[int], model: str) -> list[str]:
    """The text of `tokens`, one piece per token (a character split over tokens goes with its last)."""
    encoding = encoding_for(model)
    pieces: list[str] = []
    pending = b""
    for token in tokens:
        pending += encoding.decode_single_token_bytes(token)
        try:
            pieces.append(pending.decode("utf-8"))
        except UnicodeDecodeError:
            continue
        pending = b""
    return pieces


def _integer_error(field: str, value: Any, low: int, high: int | None = None) -> Response | None:
    """OpenAI's 400 for an integer parameter out of range, or None when it is fine."""
    if not isinstance(value, int) or isinstance(value, bool):
        return bad_request(
            f"Invalid type for '{field}': expected an integer, but got {type(value).__name__} instead.",
            field,
            "invalid_type",
        )
    if value < low:
        return bad_request(
            f"Invalid '{field}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            field,
            "integer_below_min_value",
        )
    if high is not None and value > high:
        return bad_request(
            f"Invalid '{field}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            field,
            "integer_above_max_value",
        )
    return None


@dataclass(frozen=True, slots=True)
class _Answer:
    choice: openai_api.ChatChoice
    output_tokens: int
    reasoning_tokens: int


@dataclass(frozen=True, slots=True)
class _ChatCall:
    """A validated chat request: everything but the steps that change state."""

    model: str
    messages: list[Any]
    prompt_tokens: int
    max_tokens: int  # the bound (the sim's default when the request gives none)
    n: int
    answers: list[_Answer]
    stream: bool
    include_usage: bool


class OpenAIRoutes:
    def __init__(self, core: SimCore) -> None:
        self.core = core
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): self.chat,
            ("POST", "/v1/completions"): self.completions,
            ("POST", "/v1/embeddings"): self.embeddings,
            ("GET", "/v1/models"): self.models,
            ("GET", "/openai/models"): self._azure(self.models, None),
        }
        self._azure_routes: dict[str, Callable[[Request, str | None], Response]] = {
            "chat/completions": self._chat,
            "completions": self._completions,
            "embeddings": self._embeddings,
        }

    def match(self, method: str, path: str) -> Handler | None:
        route = self._routes.get((method, path))
        if route is not None or method not in ("GET", "POST"):
            return route
        if method == "GET":
            found = _MODEL.fullmatch(path)
            if found:
                return lambda request: self.model(request, found.group(1))
            found = _AZURE_MODEL.fullmatch(path)
            if found:
                return self._azure(lambda request: self.model(request, found.group(1)), None)
            return None
        found = _AZURE_DEPLOYMENT.fullmatch(path)
        if found is None:
            return None
        deployment = urllib.parse.unquote(found.group(1))
        handler = self._azure_routes[found.group(2)]
        return self._azure(lambda request: handler(request, deployment), deployment)

    def reset_cache(self) -> None:
        self.core.prefix_cache.clear()

    @staticmethod
    def _azure(handler: Handler, deployment: str | None) -> Handler:
        """Azure's gate: no `api-version` query, no resource."""

        def gated(request: Request) -> Response:
            if not urllib.parse.parse_qs(request.query).get("api-version"):
                return json_response(404, openai_api.azure_not_found(), openai_ids())
            return handler(request)

        return gated

    # -- chat completions ------------------------------------------------------------------------

    def chat(self, request: Request) -> Response:
        return self._chat(request, None)

    def _chat(self, request: Request, default_model: str | None) -> Response:
        core = self.core
        parsed = self._parse_chat(request, default_model)
        if isinstance(parsed, Response):
            return parsed
        call = parsed
        model = call.model
        kind = core.faults.next()
        faulted = core.fault("openai", kind, call.stream, request)
        if faulted is not None:
            return faulted

        prompt = call.prompt_tokens
        ids = openai_ids()
        adm = core.admit(model, prompt, call.n * call.max_tokens, kind)
        headers = ids + openai_api.ratelimit_headers(adm)
        if not adm.allowed:
            return core.rate_limited(adm, openai_api.rate_limit_error(model, adm), headers)

        cached = 0
        if prompt >= MIN_PREFIX:
            cached = core.prefix_cache.lookup_and_store(model, prompt_token_ids(call.messages, model), prompt)
        out = sum(a.output_tokens for a in call.answers)
        reasoning = sum(a.reasoning_tokens for a in call.answers)
        use = openai_api.usage(prompt, cached, out, reasoning)
        usage = BilledUsage(input_tokens=prompt, cached_tokens=cached, output_tokens=out, reasoning_tokens=reasoning)

        def commit() -> None:
            core.stats.bill("openai", model, usage)

        no_usage = kind == "no_usage"
        if no_usage:
            core.stats.fault(kind)
        cid, created = openai_api.completion_id(), core.now()
        delay = core.delay(max(a.output_tokens for a in call.answers))
        headers.append(("openai-processing-ms", str(int(delay * 1000) + 1)))
        choices = [a.choice for a in call.answers]
        if call.stream:
            preamble, events, tail = openai_api.chat_stream_choices(
                cid, created, model, choices, use, call.include_usage and not no_usage
            )
            lead = max(a.reasoning_tokens for a in call.answers)
            parts = core.stream_parts(preamble, events, tail, lead)
            response = Response(200, [("content-type", openai_api.EVENT_STREAM), *headers], parts=parts)
        else:
            first = choices[0]
            if len(choices) == 1 and first.tool_call is None and first.content is not None:
                data = openai_api.chat_completion(  # the fast template: the hot path of benchmarks
                    cid, created, model, first.content, first.finish, None if no_usage else use
                )
            else:
                data = openai_api.chat_completion_choices(cid, created, model, choices, None if no_usage else use)
            response = json_response(200, data, headers)
            response.delay_s = delay
        return core.finish(response, kind, commit)

    def _parse_chat(self, request: Request, default_model: str | None) -> _ChatCall | Response:
        """Validate a chat body and compute its answers (pure: no fault, limit or cache touched)."""
        core = self.core
        body = parse_json(request)
        if body is None:
            return bad_request(_BAD_JSON)
        model, messages = body.get("model") or default_model, body.get("messages")
        if not isinstance(model, str) or not model:
            return bad_request("you must provide a model parameter", "model")
        if not isinstance(messages, list) or not messages:
            return bad_request("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
        field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = body.get(field)
        if max_tokens is not None and not positive_int(max_tokens):
            return bad_request(
                f"Invalid '{field}': must be a positive integer, got {max_tokens!r}.",
                field,
                "integer_below_min_value",
            )
        if body.get("logprobs") is True or body.get("top_logprobs") is not None:
            param = "logprobs" if body.get("logprobs") is True else "top_logprobs"
            return bad_request(_LOGPROBS, param, "unsupported_parameter")
        n = body.get("n", 1) if body.get("n") is not None else 1
        bad_n = _integer_error("n", n, 1, MAX_N)
        if bad_n is not None:
            return bad_n
        tools = _chat_tools(body.get("tools"))
        if isinstance(tools, Response):
            return tools
        tool_choice = body.get("tool_choice")
        if tool_choice is not None and not tools:
            return bad_request(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                "tool_choice",
            )
        response_format = _response_format(body.get("response_format"), messages)
        if isinstance(response_format, Response):
            return response_format
        counted_tools = list(body["tools"]) if tools else []
        if response_format is not None and response_format is not _JSON_OBJECT_SCHEMA:
            counted_tools.append(body["response_format"]["json_schema"])
        prompt = message_tokens(messages, model, tools=counted_tools or None)
        bound = max_tokens or core.default_max_tokens
        last = messages[-1]
        after_tool = isinstance(last, dict) and last.get("role") in ("tool", "function")
        answers: list[_Answer] = []
        for index in range(n):
            choice_body = _choice_body(body, index)
            digest = request_digest("chat", choice_body, core.seed)
            completion = make_completion("chat", choice_body, model, bound, core.seed)
            try:
                tool = choose_tool(tools, tool_choice, digest, after_tool)
            except ToolChoiceError as exc:
                return bad_request(f"Invalid value for 'tool_choice': {exc}.", "tool_choice")
            room = max(0, bound - completion.reasoning_tokens)
            try:
                if tool is not None:
                    answers.append(_tool_answer(index, tool, digest, model, room, completion.reasoning_tokens))
                elif response_format is not None:
                    text = json_text(instance_for(response_format, digest))
                    answers.append(_json_answer(index, text, model, room, completion.reasoning_tokens))
                else:
                    finish = "length" if completion.truncated else "stop"
                    choice = openai_api.ChatChoice(index, finish, completion.text, None, completion.pieces)
                    answers.append(_Answer(choice, completion.output_tokens, completion.reasoning_tokens))
            except SchemaError as exc:  # a schema that passed the first choice failed a later one
                param = "tools" if tool is not None else "response_format"
                return bad_request(f"Invalid schema: {exc}", param)
        options = body.get("stream_options")
        include = isinstance(options, dict) and options.get("include_usage") is True
        return _ChatCall(model, messages, prompt, bound, n, answers, body.get("stream") is True, include)

    # -- legacy completions ----------------------------------------------------------------------

    def completions(self, request: Request) -> Response:
        return self._completions(request, None)

    def _completions(self, request: Request, default_model: str | None) -> Response:
        """`POST /v1/completions`: prompt tokens are the prompt texts' tiktoken counts (no message
        overhead); choices are ordered prompt by prompt, n per prompt, as the real API orders them."""
        core = self.core
        body = parse_json(request)
        if body is None:
            return bad_request(_BAD_JSON)
        model = body.get("model") or default_model
        if not isinstance(model, str) or not model:
            return bad_request("you must provide a model parameter", "model")
        prompts = _legacy_prompts(body.get("prompt"))
        if prompts is None:
            return bad_request(
                "Invalid type for 'prompt': expected a string, an array of strings, an array of tokens, "
                "or an array of token arrays.",
                "prompt",
                "invalid_type",
            )
        if body.get("echo") is True:
            return bad_request("echo is not supported by llmguard.sim", "echo", "unsupported_parameter")
        if body.get("logprobs") is not None:
            return bad_request(_LOGPROBS, "logprobs", "unsupported_parameter")
        max_tokens = body.get("max_tokens")
        max_tokens = LEGACY_MAX_TOKENS if max_tokens is None else max_tokens
        bad = _integer_error("max_tokens", max_tokens, 1)
        n = body.get("n") if body.get("n") is not None else 1
        bad = bad or _integer_error("n", n, 1, MAX_N)
        best_of = body.get("best_of")
        if bad is None and best_of is not None and best_of != n:
            bad = bad_request("best_of is not supported by llmguard.sim (except best_of == n)", "best_of")
        if bad is not None:
            return bad
        stream = body.get("stream") is True
        kind = core.faults.next()
        faulted = core.fault("openai", kind, stream, request)
        if faulted is not None:
            return faulted

        prompt = sum(n_tokens if isinstance(p, list) else text_tokens(p, model) for p, n_tokens in prompts)
        ids = openai_ids()
        adm = core.admit(model, prompt, len(prompts) * n * max_tokens, kind)
        headers = ids + openai_api.ratelimit_headers(adm)
        if not adm.allowed:
            return core.rate_limited(adm, openai_api.rate_limit_error(model, adm), headers)
        completions = [
            make_completion("completions", _choice_body({**body, "prompt": p}, i), model, max_tokens, core.seed)
            for p, _ in prompts
            for i in range(n)
        ]
        out = sum(c.output_tokens for c in completions)
        reasoning = sum(c.reasoning_tokens for c in completions)
        use = openai_api.completion_usage(prompt, out)
        usage = BilledUsage(input_tokens=prompt, output_tokens=out, reasoning_tokens=reasoning)
        no_usage = kind == "no_usage"
        if no_usage:
            core.stats.fault(kind)
        cid, created = openai_api.text_completion_id(), core.now()
        delay = core.delay(max(c.output_tokens for c in completions))
        headers.append(("openai-processing-ms", str(int(delay * 1000) + 1)))
        finishes = ["length" if c.truncated else "stop" for c in completions]
        if stream:
            options = body.get("stream_options")
            include = isinstance(options, dict) and options.get("include_usage") is True
            events, tail = openai_api.text_completion_stream(
                cid,
                created,
                model,
                [(c.pieces, f) for c, f in zip(completions, finishes, strict=True)],
                use,
                include and not no_usage,
            )
            lead = max(c.reasoning_tokens for c in completions)
            # no preamble: an empty part would go out as an empty chunk, which ends a chunked body
            parts = [part for part in core.stream_parts(b"", events, tail, lead) if part[1]]
            response = Response(200, [("content-type", openai_api.EVENT_STREAM), *headers], parts=parts)
        else:
            texts = [(c.text, f) for c, f in zip(completions, finishes, strict=True)]
            data = openai_api.text_completion(cid, created, model, texts, None if no_usage else use)
            response = json_response(200, data, headers)
            response.delay_s = delay
        return core.finish(response, kind, lambda: core.stats.bill("openai", model, usage))

    # -- embeddings ------------------------------------------------------------------------------

    def embeddings(self, request: Request) -> Response:
        return self._embeddings(request, None)

    def _embeddings(self, request: Request, default_model: str | None) -> Response:
        core = self.core
        body = parse_json(request)
        if body is None:
            return bad_request("We could not parse the JSON body of your request.")
        model, raw = body.get("model") or default_model, body.get("input")
        if not isinstance(model, str) or not model:
            return bad_request("you must provide a model parameter", "model")
        inputs = _embedding_inputs(raw)
        if inputs is None:
            return bad_request(
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                "input",
            )
        kind = core.faults.next()
        faulted = core.fault("openai", kind, False, request)
        if faulted is not None:
            return faulted
        tokens = sum(n if isinstance(item, list) else text_tokens(item, model) for item, n in inputs)
        ids = openai_ids()
        adm: Admission = core.admit_tokens(model, tokens, kind)
        headers = ids + openai_api.ratelimit_headers(adm)
        if not adm.allowed:
            return core.rate_limited(adm, openai_api.rate_limit_error(model, adm), headers)
        dims = body.get("dimensions")
        if not positive_int(dims):
            dims = _EMBEDDING_DIMENSIONS.get(model, 1536)
        vectors = [openai_api.embedding_vector(f"{model}\x00{item}", dims) for item, _ in inputs]
        fmt = "base64" if body.get("encoding_format") == "base64" else "float"
        data = openai_api.embeddings(model, vectors, tokens, fmt)
        usage = BilledUsage(input_tokens=tokens)
        headers.append(("openai-processing-ms", str(int(core.latency_ms) + 1)))
        response = json_response(200, data, headers)
        response.delay_s = core.latency_ms / 1000
        return core.finish(response, kind, lambda: core.stats.bill("openai", model, usage))

    # -- models ----------------------------------------------------------------------------------

    def models(self, request: Request) -> Response:
        """`GET /v1/models`. Faults apply (a flaky provider is flaky here too); rate limits do not:
        the call names no model and costs no tokens, and the real API limits it apart."""
        faulted = self.core.fault("openai", self.core.faults.next(), False, request)
        if faulted is not None:
            return faulted
        data = openai_api.models_list([openai_api.model_object(*m) for m in MODELS])
        return json_response(200, data, openai_ids())

    def model(self, request: Request, model_id: str) -> Response:
        model_id = urllib.parse.unquote(model_id)
        faulted = self.core.fault("openai", self.core.faults.next(), False, request)
        if faulted is not None:
            return faulted
        known = _MODEL_IDS.get(model_id)
        if known is None:
            message = f"The model '{model_id}' does not exist or you do not have access to it."
            body = openai_api.error(message, "invalid_request_error", None, "model_not_found")
            return json_response(404, body, openai_ids())
        return json_response(200, json.dumps(openai_api.model_object(*known)).encode(), openai_ids())


# -- request parts -------------------------------------------------------------------------------


def _chat_tools(raw: Any) -> list[dict[str, Any]] | Response:
    """The request's function tools as `[{"name", "parameters"}]`, each schema checked satisfiable."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        return bad_request(
            f"Invalid type for 'tools': expected an array, but got {type(raw).__name__} instead.",
            "tools",
            "invalid_type",
        )
    tools: list[dict[str, Any]] = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "custom":
            return bad_request("custom tools are not supported by llmguard.sim", f"{where}.type")
        if kind != "function":
            return bad_request(
                f"Invalid value: {kind!r}. Supported values are: 'function' and 'custom'.",
                f"{where}.type",
                "invalid_value",
            )
        function = tool.get("function")
        if not isinstance(function, dict):
            return bad_request(
                f"Missing required parameter: '{where}.function'.",
                f"{where}.function",
                "missing_required_parameter",
            )
        name = function.get("name")
        if not isinstance(name, str):
            return bad_request(
                f"Missing required parameter: '{where}.function.name'.",
                f"{where}.function.name",
                "missing_required_parameter",
            )
        if not _TOOL_NAME.fullmatch(name):
            return bad_request(
                f"Invalid '{where}.function.name': string does not match pattern. Expected a string that "
                "matches the pattern '^[a-zA-Z0-9_-]+$'.",
                f"{where}.function.name",
                "invalid_value",
            )
        parameters = function.get("parameters", _NO_PARAMETERS)
        try:
            instance_for(parameters, b"\x00" * 16)
        except SchemaError as exc:
            return bad_request(
                f"Invalid schema for function '{name}': {exc}",
                f"{where}.function.parameters",
                "invalid_function_parameters",
            )
        tools.append({"name": name, "parameters": parameters})
    return tools


def _response_format(raw: Any, messages: list[Any]) -> dict[str, Any] | None | Response:
    """The schema an answer must satisfy (None: plain text), or the 400 the real API gives."""
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        if "json" not in json.dumps(messages, default=str).lower():
            return bad_request(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
                "messages",
            )
        return _JSON_OBJECT_SCHEMA
    if kind != "json_schema":
        return bad_request(
            f"Invalid value: {kind!r}. Supported values are: 'text', 'json_object' and 'json_schema'.",
            "response_format.type",
            "invalid_value",
        )
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        return bad_request(
            "Missing required parameter: 'response_format.json_schema'.",
            "response_format.json_schema",
            "missing_required_parameter",
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        return bad_request(
            "Missing required parameter: 'response_format.json_schema.name'.",
            "response_format.json_schema.name",
            "missing_required_parameter",
        )
    schema = spec.get("schema", {"type": "object"})
    try:
        instance_for(schema, b"\x00" * 16)
    except SchemaError as exc:
        return bad_request(f"Invalid schema for response_format '{name}': {exc}", "response_format")
    return schema


def _tool_answer(index: int, tool: dict[str, Any], digest: bytes, model: str, room: int, reasoning: int) -> _Answer:
    """A tool call whose output tokens are name + arguments tokens, cut at `room` like text."""
    name = tool["name"]
    arguments = json_text(instance_for(tool["parameters"], digest))
    name_tokens = text_tokens(name, model)
    tokens = encoding_for(model).encode_ordinary(arguments)
    finish = "tool_calls"
    if name_tokens + len(tokens) > room:
        tokens, finish = tokens[: max(0, room - name_tokens)], "length"
    pieces = _token_pieces(tokens, model)
    call = openai_api.ToolCall(openai_api.tool_call_id(), name, "".join(pieces))
    out = min(room, name_tokens) + len(tokens)
    return _Answer(openai_api.ChatChoice(index, finish, None, call, pieces), out + reasoning, reasoning)


def _json_answer(index: int, text: str, model: str, room: int, reasoning: int) -> _Answer:
    """A structured answer: the JSON text's tokens, cut at `room` (finish "length") like text."""
    tokens = encoding_for(model).encode_ordinary(text)
    finish = "stop"
    if len(tokens) > room:
        tokens, finish = tokens[:room], "length"
    pieces = _token_pieces(tokens, model)
    choice = openai_api.ChatChoice(index, finish, "".join(pieces), None, pieces)
    return _Answer(choice, len(tokens) + reasoning, reasoning)


def _legacy_prompts(raw: Any) -> list[tuple[Any, int]] | None:
    """[(text or token list, token count for token lists)] of a legacy `prompt`, or None if invalid."""
    if isinstance(raw, str):
        return [(raw, 0)]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return [(raw, len(raw))]
    return _embedding_inputs(raw)


def _embedding_inputs(raw: Any) -> list[tuple[Any, int]] | None:
    """[(text or token list, token count for token lists)], or None when the input is invalid."""
    if isinstance(raw, str):
        return [(raw, 0)]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(x, int) for x in raw):
        return [(raw, len(raw))]
    out: list[tuple[Any, int]] = []
    for item in raw:
        if isinstance(item, str):
            out.append((item, 0))
        elif isinstance(item, list) and item and all(isinstance(x, int) for x in item):
            out.append((item, len(item)))
        else:
            return None
    return out
