"""Which calls are LLM calls: SDK clients and calls as records, and the classifier that finds them.

A call is an LLM call when its callee is a known wrapper (`litellm.completion`, a LangChain chat
model), a configured `call-targets` function, or has an SDK method shape (`x.chat.completions.create`)
on a receiver that resolves to an SDK client. A shape whose receiver cannot be resolved still
counts, with confidence "low" (and, for the shapes other SDKs share, only when it passes `model=`);
its SDK is then guessed from a literal model name, never assumed. `functools.partial(<LLM method>,
...)` is a call configured where the partial is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.config import CallTarget
from llmguard.lint.index import Scope
from llmguard.lint.names import dotted
from llmguard.lint.values import keyword, string_value

if TYPE_CHECKING:
    from llmguard.lint.context import FileContext

_PARTIALS = {"functools.partial"}
_MODEL_FAMILIES = (
    ("claude", "anthropic"),
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
    ("text-", "openai"),
    ("davinci", "openai"),
)


@dataclass(eq=False)
class Client:
    node: cst.Call  # the constructor, or the with_options()/copy() call for a derived client
    kind: sdk.ClientKind
    parent: Client | None = None
    # (call, bounded by a timeout: True, False, or None when a **mapping may hold one)
    reached: list[tuple[LLMCall, bool | None]] = field(default_factory=list)
    scope: Scope = None

    @property
    def root(self) -> Client:
        return self if self.parent is None else self.parent.root

    def sets_timeout(self) -> bool:
        return keyword(self.node, "timeout") is not None

    def chain_sets_timeout(self) -> bool:
        """A derived client (with_options(timeout=...)) between the call and its constructor."""
        current: Client | None = self
        while current is not None and current.parent is not None:
            if current.sets_timeout():
                return True
            current = current.parent
        return False


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
    is_partial: bool = False  # functools.partial(<LLM method>, ...): configured here, called later

    @property
    def generates(self) -> bool:
        """True for calls that produce output tokens (not embeddings)."""
        return bool(self.max_tokens_args)


def classify(ctx: FileContext, call: cst.Call, scope: Scope) -> LLMCall | None:
    """The LLM call `call` makes (or configures, for a partial), or None."""
    qualified = ctx.qualify(call.func)
    if qualified in _PARTIALS:
        first = call.args[0] if call.args else None
        if first is None or first.keyword is not None or first.star:
            return None
        found = _classify_func(ctx, call, scope, first.value)
        if found is not None:
            found.is_partial = True
        return found
    return _classify_func(ctx, call, scope, call.func, qualified)


def _classify_func(
    ctx: FileContext, call: cst.Call, scope: Scope, func: cst.BaseExpression, qualified: str | None = None
) -> LLMCall | None:
    """`call` sends an LLM request through `func` (its callee, or the function a partial wraps)."""
    qualified = qualified if func is call.func else ctx.qualify(func)
    if qualified is not None:
        wrapper = sdk.WRAPPERS.get(qualified)
        if wrapper is not None:
            return LLMCall(
                call,
                scope,
                "wrapper",
                wrapper.family,
                wrapper.provider,
                wrapper.max_tokens_args,
                wrapper.fix_arg,
                timeout_args=wrapper.timeout_args,
                model_args=wrapper.model_args,
                is_constructor=wrapper.is_constructor,
            )
    target = _call_target(ctx, func, qualified)
    if target is not None:
        return LLMCall(
            call,
            scope,
            "custom",
            target.provider,
            target.provider,
            target.max_tokens_args,
            target.max_tokens_args[0] if target.max_tokens_args else None,
        )
    return _classify_shape(ctx, call, scope, func)


def _call_target(ctx: FileContext, func: cst.BaseExpression, qualified: str | None) -> CallTarget | None:
    if not ctx.config.call_targets:
        return None
    name = dotted(func)
    last = name.rsplit(".", 1)[-1] if name else None
    for target in ctx.config.call_targets:
        if "." in target.name:
            if qualified == target.name or name == target.name:
                return target
        elif last == target.name:
            return target
    return None


def _classify_shape(ctx: FileContext, call: cst.Call, scope: Scope, func: cst.BaseExpression) -> LLMCall | None:
    attrs: list[str] = []
    receivers: list[cst.BaseExpression] = []  # receivers[i]: what the i+1 last attributes hang on
    expr: cst.BaseExpression = func
    while isinstance(expr, cst.Attribute) and len(attrs) < sdk.SHAPE_LENGTHS[0]:
        attrs.append(expr.attr.value)
        expr = expr.value
        receivers.append(expr)
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
        return _with_receiver(ctx, call, scope, endpoint, receivers[length - 1], shape)
    return None


def _with_receiver(
    ctx: FileContext,
    call: cst.Call,
    scope: Scope,
    endpoint: sdk.Endpoint,
    receiver: cst.BaseExpression,
    shape: tuple[str, ...],
) -> LLMCall | None:
    resolved = ctx.resolve_clients(receiver, scope)
    subclass = None if resolved else _subclassed_sdk(ctx, receiver, scope)
    family: str | None
    if isinstance(resolved, str):  # module-level client: openai.chat.completions.create(...)
        family, clients, confidence = resolved, [], "high"
    elif resolved:
        family, clients, confidence = resolved[0].kind.family, resolved, "high"
    elif subclass is not None:  # self.messages.create(...) in `class Bot(Anthropic)`
        family, clients, confidence = subclass.family, [], "high"
    else:
        distinctive = shape[0] in ("chat", "responses", "ChatCompletion")
        if not distinctive and keyword(call, "model") is None:
            return None
        family, clients, confidence = endpoint.family or _family_of_model(ctx, call, scope), [], "low"
    if endpoint.family is not None and endpoint.family != family and confidence == "high":
        return None  # e.g. anthropic_client.responses.create does not exist: not an LLM call shape
    max_args = endpoint.max_tokens_args
    fix_arg = endpoint.fix_arg
    if endpoint.name == "completions" and family is not None:
        max_args = ("max_tokens_to_sample",) if family == "anthropic" else ("max_tokens",)
        fix_arg = max_args[0]
    elif endpoint.name == "completions":  # unknown SDK: either SDK's argument bounds it
        fix_arg = None
    if clients:
        provider = clients[0].kind.provider
    elif subclass is not None:
        provider = subclass.provider
    else:
        provider = family or "openai"  # only the price lookup of the cost map uses it
    return LLMCall(call, scope, endpoint.name, family or "unknown", provider, max_args, fix_arg, confidence, clients)


def _family_of_model(ctx: FileContext, call: cst.Call, scope: Scope) -> str | None:
    """The SDK a literal model name belongs to ("claude-..." -> anthropic), or None."""
    arg = keyword(call, "model")
    text = string_value(ctx.follow(arg.value, scope)) if arg is not None else None
    if text is None:
        return None
    lowered = text.lower().rsplit("/", 1)[-1]
    return next((family for prefix, family in _MODEL_FAMILIES if lowered.startswith(prefix)), None)


def _subclassed_sdk(ctx: FileContext, receiver: cst.BaseExpression, scope: Scope) -> sdk.ClientKind | None:
    """`self`/`cls` in a method of a class derived from an SDK client, or an instance of one."""
    if not isinstance(receiver, cst.Name):
        return None
    if receiver.value in ("self", "cls"):
        owner = ctx.index.method_class.get(id(scope)) if scope is not None else None
        return _class_kind(ctx, owner) if owner is not None else None
    values = ctx.bindings(receiver.value, scope)
    if len(values) == 1 and isinstance(values[0], cst.Call) and isinstance(values[0].func, cst.Name):
        owner = ctx.index.classes.get(values[0].func.value)
        return _class_kind(ctx, owner) if owner is not None else None
    return None


def _class_kind(ctx: FileContext, owner: cst.ClassDef, depth: int = 0) -> sdk.ClientKind | None:
    for base in owner.bases:
        if base.keyword is not None:
            continue
        kind = sdk.CLIENTS.get(ctx.qualify(base.value) or "")
        if kind is not None:
            return kind
        if isinstance(base.value, cst.Name) and depth < 4:
            parent = ctx.index.classes.get(base.value.value)
            if parent is not None and parent is not owner:
                kind = _class_kind(ctx, parent, depth + 1)
                if kind is not None:
                    return kind
    return None
