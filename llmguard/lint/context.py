"""Per-file facts the rules share: which calls are LLM calls, which clients they go through.

Clients are followed through assignments (`client = OpenAI()`, `self.client = ...`, `with
Anthropic() as c`) and `with_options()`/`copy()`. A call with an SDK method shape
(`x.chat.completions.create`) whose receiver cannot be resolved still counts, with confidence
"low" (and, for the shapes other SDKs share, only when it passes `model=`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.config import CallTarget, LintConfig
from llmguard.lint.index import FileIndex, Scope, build_index
from llmguard.lint.names import dotted
from llmguard.lint.values import has_star_kwargs, keyword, static_text, string_value

_DERIVING_METHODS = ("with_options", "copy")


@dataclass(eq=False)
class Client:
    node: cst.Call  # the constructor, or the with_options()/copy() call for a derived client
    kind: sdk.ClientKind
    parent: Client | None = None
    reached: list[tuple[LLMCall, bool]] = field(default_factory=list)  # (call, bounded by a timeout)

    @property
    def root(self) -> Client:
        return self if self.parent is None else self.parent.root

    def sets_timeout(self) -> bool:
        return keyword(self.node, "timeout") is not None


@dataclass(eq=False)
class LLMCall:
    node: cst.Call
    scope: Scope
    endpoint: str  # SDK endpoint ("chat.completions", "messages", ...), "wrapper" or "custom"
    family: str
    provider: str
    max_tokens_args: tuple[str, ...]
    fix_arg: str | None
    confidence: str = "high"
    clients: list[Client] = field(default_factory=list)
    timeout_args: tuple[str, ...] = ("timeout",)
    model_args: tuple[str, ...] = ("model",)
    is_constructor: bool = False  # a LangChain chat model: configured here, invoked later

    @property
    def generates(self) -> bool:
        """True for calls that produce output tokens (not embeddings)."""
        return bool(self.max_tokens_args)


class FileContext:
    """The parsed module plus the lazily computed facts the selected rules ask for."""

    def __init__(self, module: cst.Module, source: str, path: str, config: LintConfig) -> None:
        self.module = module
        self.source = source
        self.path = path
        self.config = config
        self.index: FileIndex = build_index(module, sdk.KNOWN_NAMES)
        self.imports = self.index.imports
        self._derived: dict[int, Client] = {}
        self.dependencies: set[str] = set()  # other files the findings depend on (prompt templates)

    def qualify(self, expr: cst.BaseExpression) -> str | None:
        return self.imports.qualify(expr)

    # -- clients -----------------------------------------------------------------------------
    @cached_property
    def clients(self) -> list[Client]:
        """Every SDK client constructor call in the file."""
        found = []
        for call, _scope in self.index.calls:
            kind = sdk.CLIENTS.get(self.qualify(call.func) or "")
            if kind is not None:
                found.append(Client(call, kind))
        return found

    @cached_property
    def _client_by_node(self) -> dict[int, Client]:
        return {id(c.node): c for c in self.clients}

    def resolve_clients(self, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> list[Client] | str | None:
        """The clients an expression may be: a list of clients, an SDK module name, or None."""
        if depth > 4:
            return None
        if isinstance(expr, cst.Attribute) and expr.attr.value == "beta":
            expr = expr.value
        if isinstance(expr, cst.Call):
            client = self._client_by_node.get(id(expr))
            if client is not None:
                return [client]
            func = expr.func
            if isinstance(func, cst.Attribute) and func.attr.value in _DERIVING_METHODS:
                base = self.resolve_clients(func.value, scope, depth + 1)
                if isinstance(base, list) and base:
                    derived = self._derived.get(id(expr))
                    if derived is None:
                        derived = Client(expr, base[0].kind, parent=base[0])
                        self._derived[id(expr)] = derived
                    return [derived]
                if isinstance(base, str):
                    return base
            return None
        key = dotted(expr)
        if key is None:
            return None
        qualified = self.qualify(expr)
        if qualified in sdk.SDK_MODULES:
            return qualified
        found: list[Client] = []
        for value in self.bindings(key, scope):
            resolved = self.resolve_clients(value, scope, depth + 1)
            if isinstance(resolved, list):
                found.extend(c for c in resolved if c not in found)
        return found or None

    # -- LLM calls ---------------------------------------------------------------------------
    @cached_property
    def llm_calls(self) -> list[LLMCall]:
        calls = []
        for call, scope in self.index.calls:
            found = self._classify(call, scope)
            if found is not None:
                calls.append(found)
        for found in calls:
            for client in found.clients:
                bounded = self._call_has_timeout(found) or _chain_sets_timeout(client)
                client.root.reached.append((found, bounded))
        return calls

    @cached_property
    def llm_call_ids(self) -> dict[int, LLMCall]:
        return {id(c.node): c for c in self.llm_calls}

    def _call_has_timeout(self, call: LLMCall) -> bool:
        return keyword(call.node, *call.timeout_args) is not None or has_star_kwargs(call.node)

    def _classify(self, call: cst.Call, scope: Scope) -> LLMCall | None:
        qualified = self.qualify(call.func)
        if qualified is not None:
            wrapper = sdk.WRAPPERS.get(qualified)
            if wrapper is not None:
                provider = wrapper.provider
                return LLMCall(call, scope, "wrapper", wrapper.family, provider, wrapper.max_tokens_args,
                               wrapper.fix_arg, timeout_args=wrapper.timeout_args, model_args=wrapper.model_args,
                               is_constructor=wrapper.is_constructor)
        target = self._call_target(call, qualified)
        if target is not None:
            return LLMCall(call, scope, "custom", target.provider, target.provider, target.max_tokens_args,
                           target.max_tokens_args[0] if target.max_tokens_args else None)
        return self._classify_shape(call, scope)

    def _call_target(self, call: cst.Call, qualified: str | None) -> CallTarget | None:
        if not self.config.call_targets:
            return None
        name = dotted(call.func)
        last = name.rsplit(".", 1)[-1] if name else None
        for target in self.config.call_targets:
            if "." in target.name:
                if qualified == target.name or name == target.name:
                    return target
            elif last == target.name:
                return target
        return None

    def _classify_shape(self, call: cst.Call, scope: Scope) -> LLMCall | None:
        attrs: list[str] = []
        expr: cst.BaseExpression = call.func
        while isinstance(expr, cst.Attribute) and len(attrs) < sdk.SHAPE_LENGTHS[0]:
            attrs.append(expr.attr.value)
            expr = expr.value
        if not attrs:
            return None
        attrs.reverse()
        for length in sdk.SHAPE_LENGTHS:
            if len(attrs) < length:
                continue
            shape = tuple(attrs[-length:])
            endpoint = sdk.SHAPES.get(shape)
            if endpoint is None:
                continue
            receiver = call.func
            for _ in range(length):
                receiver = receiver.value  # type: ignore[attr-defined]
            return self._with_receiver(call, scope, endpoint, receiver, shape)
        return None

    def _with_receiver(
        self, call: cst.Call, scope: Scope, endpoint: sdk.Endpoint, receiver: cst.BaseExpression, shape: tuple[str, ...]
    ) -> LLMCall | None:
        resolved = self.resolve_clients(receiver, scope)
        if isinstance(resolved, str):  # module-level client: openai.chat.completions.create(...)
            family, clients, confidence = resolved, [], "high"
        elif resolved:
            family, clients, confidence = resolved[0].kind.family, resolved, "high"
        else:
            distinctive = shape[0] in ("chat", "responses", "ChatCompletion")
            if not distinctive and keyword(call, "model") is None:
                return None
            family, clients, confidence = endpoint.family or "openai", [], "low"
        if endpoint.family is not None and endpoint.family != family and confidence == "high":
            return None  # e.g. anthropic_client.responses.create does not exist: not an LLM call shape
        max_args = endpoint.max_tokens_args
        fix_arg = endpoint.fix_arg
        if endpoint.name == "completions":
            max_args = ("max_tokens_to_sample",) if family == "anthropic" else ("max_tokens",)
            fix_arg = max_args[0]
        provider = clients[0].kind.provider if clients else family
        return LLMCall(call, scope, endpoint.name, family, provider, max_args, fix_arg, confidence, clients)

    # -- values ------------------------------------------------------------------------------
    def follow(self, expr: cst.BaseExpression, scope: Scope, before: int | None = None) -> cst.BaseExpression:
        """A Name bound once (in scope or at module level) -> its value; a parameter -> its default;
        anything else unchanged."""
        for _ in range(4):
            if not isinstance(expr, cst.Name):
                return expr
            values = self.bindings(expr.value, scope, before)
            if not values:
                param = _parameter(scope, expr.value)
                if param is None or param.default is None:
                    return expr
                values = [param.default]
            if len(values) != 1 and before is None:
                return expr
            expr = values[0]
        return expr

    def bindings(self, key: str, scope: Scope, before: int | None = None) -> list[cst.BaseExpression]:
        """Values assigned to a name or attribute chain; a parameter hides module-level names."""
        shadowed = "." not in key and _parameter(scope, key) is not None
        return self.index.values_of(key, scope, before, fallback=not shadowed)

    def model_of(self, call: LLMCall) -> str | None:
        arg = keyword(call.node, *call.model_args)
        if arg is None:
            return None
        value = self.follow(arg.value, call.scope)
        text = string_value(value)
        return text

    def text_of(self, expr: cst.BaseExpression, scope: Scope) -> Any:
        return static_text(self.follow(expr, scope), self.qualify)


def _parameter(scope: Scope, name: str) -> cst.Param | None:
    if not isinstance(scope, cst.FunctionDef | cst.Lambda):
        return None
    params = scope.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param
    return None


def _chain_sets_timeout(client: Client) -> bool:
    """A derived client (with_options(timeout=...)) between the call and its constructor."""
    current: Client | None = client
    while current is not None and current.parent is not None:
        if current.sets_timeout():
            return True
        current = current.parent
    return False
