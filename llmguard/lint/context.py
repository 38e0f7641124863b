"""Per-file facts the rules share: which calls are LLM calls, which clients they go through.

Clients are followed through assignments (`client = OpenAI()`, `self.client = ...`, `with
Anthropic() as c`) and `with_options()`/`copy()`; `self` in a subclass of an SDK client is that
SDK. A call with an SDK method shape (`x.chat.completions.create`) whose receiver cannot be
resolved still counts, with confidence "low" (and, for the shapes other SDKs share, only when it
passes `model=`); its SDK is then guessed from a literal model name, never assumed.
`functools.partial(client.chat.completions.create, ...)` is a call configured where the partial
is made. `**params` at a call site is looked into when it is a dict built in view (see `passes`).
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
from llmguard.lint.values import keyword, static_text, string_value

_DERIVING_METHODS = ("with_options", "copy")
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


@dataclass
class StarKwargs:
    """What the `**mapping` arguments of a call pass, as far as the file shows.

    `unknown` holds the source of each mapping that could not be read (a call's result, a
    parameter, a dict updated from elsewhere); `forwarded` is True when one is the enclosing
    function's own `**kwargs` (its callers decide what it holds).
    """

    keys: dict[str, cst.BaseExpression | None] = field(default_factory=dict)  # name -> value, if known
    choices: list[frozenset[str]] = field(default_factory=list)  # {bound: n} with bound = "a" if x else "b"
    unknown: list[str] = field(default_factory=list)
    forwarded: bool = False

    def has(self, names: tuple[str, ...]) -> bool:
        return any(n in self.keys for n in names) or any(c <= set(names) for c in self.choices)

    def maybe(self, names: tuple[str, ...]) -> bool:
        return any(c & set(names) for c in self.choices)

    def note(self) -> str:
        if not self.unknown:
            return " (a key of its **mapping is chosen at run time; it may set it)"
        shown = ", ".join(f"**{u}" for u in self.unknown[:2])
        return f" (could not see inside {shown}; it may set it)"


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
        for call, scope in self.index.calls:
            kind = sdk.CLIENTS.get(self.qualify(call.func) or "")
            if kind is not None:
                found.append(Client(call, kind, scope=scope))
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
                bounded = True if _chain_sets_timeout(client) else self.call_passes(found, *found.timeout_args)
                client.root.reached.append((found, bounded))
        return calls

    @cached_property
    def _call_scopes(self) -> dict[int, Scope]:
        return {id(call): scope for call, scope in self.index.calls}

    def scope_of(self, call: cst.Call) -> Scope:
        """The function a call sits in (None at module level)."""
        return self._call_scopes.get(id(call))

    @cached_property
    def llm_call_ids(self) -> dict[int, LLMCall]:
        return {id(c.node): c for c in self.llm_calls}

    def _classify(self, call: cst.Call, scope: Scope) -> LLMCall | None:
        qualified = self.qualify(call.func)
        if qualified in _PARTIALS:
            first = call.args[0] if call.args else None
            if first is None or first.keyword is not None or first.star:
                return None
            found = self._classify_func(call, scope, first.value)
            if found is not None:
                found.is_partial = True
            return found
        return self._classify_func(call, scope, call.func, qualified)

    def _classify_func(
        self, call: cst.Call, scope: Scope, func: cst.BaseExpression, qualified: str | None = None
    ) -> LLMCall | None:
        """`call` sends an LLM request through `func` (its callee, or the function a partial wraps)."""
        qualified = qualified if func is call.func else self.qualify(func)
        if qualified is not None:
            wrapper = sdk.WRAPPERS.get(qualified)
            if wrapper is not None:
                provider = wrapper.provider
                return LLMCall(
                    call,
                    scope,
                    "wrapper",
                    wrapper.family,
                    provider,
                    wrapper.max_tokens_args,
                    wrapper.fix_arg,
                    timeout_args=wrapper.timeout_args,
                    model_args=wrapper.model_args,
                    is_constructor=wrapper.is_constructor,
                )
        target = self._call_target(func, qualified)
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
        return self._classify_shape(call, scope, func)

    def _call_target(self, func: cst.BaseExpression, qualified: str | None) -> CallTarget | None:
        if not self.config.call_targets:
            return None
        name = dotted(func)
        last = name.rsplit(".", 1)[-1] if name else None
        for target in self.config.call_targets:
            if "." in target.name:
                if qualified == target.name or name == target.name:
                    return target
            elif last == target.name:
                return target
        return None

    def _classify_shape(self, call: cst.Call, scope: Scope, func: cst.BaseExpression) -> LLMCall | None:
        attrs: list[str] = []
        expr: cst.BaseExpression = func
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
            receiver = func
            for _ in range(length):
                receiver = receiver.value  # type: ignore[attr-defined]
            return self._with_receiver(call, scope, endpoint, receiver, shape)
        return None

    def _with_receiver(
        self, call: cst.Call, scope: Scope, endpoint: sdk.Endpoint, receiver: cst.BaseExpression, shape: tuple[str, ...]
    ) -> LLMCall | None:
        resolved = self.resolve_clients(receiver, scope)
        subclass = None if resolved else self._subclassed_sdk(receiver, scope)
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
            family, clients, confidence = endpoint.family or self._family_of_model(call, scope), [], "low"
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
        return LLMCall(
            call, scope, endpoint.name, family or "unknown", provider, max_args, fix_arg, confidence, clients
        )

    def _family_of_model(self, call: cst.Call, scope: Scope) -> str | None:
        """The SDK a literal model name belongs to ("claude-..." -> anthropic), or None."""
        arg = keyword(call, "model")
        text = string_value(self.follow(arg.value, scope)) if arg is not None else None
        if text is None:
            return None
        lowered = text.lower().rsplit("/", 1)[-1]
        return next((family for prefix, family in _MODEL_FAMILIES if lowered.startswith(prefix)), None)

    def _subclassed_sdk(self, receiver: cst.BaseExpression, scope: Scope) -> sdk.ClientKind | None:
        """`self`/`cls` in a method of a class derived from an SDK client, or an instance of one."""
        if not isinstance(receiver, cst.Name):
            return None
        if receiver.value in ("self", "cls"):
            owner = self.index.method_class.get(id(scope)) if scope is not None else None
            return self._class_kind(owner) if owner is not None else None
        values = self.bindings(receiver.value, scope)
        if len(values) == 1 and isinstance(values[0], cst.Call) and isinstance(values[0].func, cst.Name):
            owner = self.index.classes.get(values[0].func.value)
            return self._class_kind(owner) if owner is not None else None
        return None

    def _class_kind(self, owner: cst.ClassDef, depth: int = 0) -> sdk.ClientKind | None:
        for base in owner.bases:
            if base.keyword is not None:
                continue
            kind = sdk.CLIENTS.get(self.qualify(base.value) or "")
            if kind is not None:
                return kind
            if isinstance(base.value, cst.Name) and depth < 4:
                parent = self.index.classes.get(base.value.value)
                if parent is not None and parent is not owner:
                    kind = self._class_kind(parent, depth + 1)
                    if kind is not None:
                        return kind
        return None

    # -- what a call passes ------------------------------------------------------------------
    def passes(self, call: cst.Call, scope: Scope, *names: str) -> bool | None:
        """Does `call` pass one of `names`? True (a keyword, a key of a `**dict` built in view, or a
        forwarded `**kwargs`), False, or None when a `**mapping` we cannot read may hold it."""
        if keyword(call, *names) is not None:
            return True
        star = self.star_kwargs(call, scope)
        if star is None:
            return False
        if star.has(names) or star.forwarded:
            return True
        return None if star.unknown or star.maybe(names) else False

    def call_passes(self, call: LLMCall, *names: str) -> bool | None:
        """`passes` for an LLM call; a partial also counts when every call of it passes the argument."""
        found = self.passes(call.node, call.scope, *names)
        if found is not False or not call.is_partial:
            return found
        uses = self.partial_uses(call)
        if not uses:
            return False
        answers = [self.passes(use, scope, *names) for use, scope in uses]
        if all(a is True for a in answers):
            return True
        return None if all(a is not False for a in answers) else False

    def star_value(self, call: cst.Call, scope: Scope, *names: str) -> tuple[str, cst.BaseExpression] | None:
        """(name, value) of one of `names` set inside a `**dict` of `call`, when the value is in view."""
        star = self.star_kwargs(call, scope)
        if star is None:
            return None
        for name in names:
            value = star.keys.get(name)
            if value is not None:
                return name, value
        return None

    def star_note(self, call: cst.Call, scope: Scope) -> str:
        star = self.star_kwargs(call, scope)
        return star.note() if star is not None and (star.unknown or star.choices) else ""

    def star_kwargs(self, call: cst.Call, scope: Scope) -> StarKwargs | None:
        """What the `**` arguments of `call` hold; None when it has none."""
        stars = [arg.value for arg in call.args if arg.star == "**"]
        if not stars:
            return None
        found = StarKwargs()
        for expr in stars:
            self._read_mapping(expr, scope, found, 0)
        return found

    def _read_mapping(self, expr: cst.BaseExpression, scope: Scope, out: StarKwargs, depth: int) -> None:
        if depth > 4:
            out.unknown.append(_short(self.module.code_for_node(expr)))
            return
        if isinstance(expr, cst.Dict):
            for element in expr.elements:
                if isinstance(element, cst.StarredDictElement):
                    self._read_mapping(element.value, scope, out, depth + 1)
                    continue
                keys = self._key_names(element.key, scope)
                if keys is None:
                    out.unknown.append(_short(self.module.code_for_node(expr)))
                elif len(keys) == 1:
                    out.keys[next(iter(keys))] = element.value
                else:
                    out.choices.append(keys)
            return
        if (
            isinstance(expr, cst.Call)
            and isinstance(expr.func, cst.Name)
            and expr.func.value == "dict"
            and "dict" not in self.imports.aliases
        ):
            for arg in expr.args:
                if arg.keyword is not None:
                    out.keys[arg.keyword.value] = arg.value
                else:
                    self._read_mapping(arg.value, scope, out, depth + 1)
            return
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.BitOr):  # a | b
            self._read_mapping(expr.left, scope, out, depth + 1)
            self._read_mapping(expr.right, scope, out, depth + 1)
            return
        key = dotted(expr)
        if key is None:
            out.unknown.append(_short(self.module.code_for_node(expr)))
            return
        if "." not in key and isinstance(scope, cst.FunctionDef | cst.Lambda):
            star = scope.params.star_kwarg
            if isinstance(star, cst.Param) and star.name.value == key:
                out.forwarded = True
                return
        values = self.bindings(key, scope)
        if len(values) != 1:
            out.unknown.append(key)
            return
        self._read_mapping(values[0], scope, out, depth + 1)
        self._read_mutations(key, scope, out, depth)

    def _key_names(self, expr: cst.BaseExpression, scope: Scope, depth: int = 0) -> frozenset[str] | None:
        """The strings a dict key may be: a literal, a name bound once, `"a" if x else "b"`."""
        expr = self.follow(expr, scope)
        text = string_value(expr)
        if text is not None:
            return frozenset({text})
        if isinstance(expr, cst.IfExp) and depth < 4:
            body, orelse = self._key_names(expr.body, scope, depth + 1), self._key_names(expr.orelse, scope, depth + 1)
            return None if body is None or orelse is None else body | orelse
        return None

    def _read_mutations(self, key: str, scope: Scope, out: StarKwargs, depth: int) -> None:
        """`d["k"] = v`, `d.update(...)`, `d.setdefault("k", v)`, `d |= {...}` in the scope `d` is used in."""
        wanted = None if "." in key else scope
        for where, item, value in self.index.item_sets.get(key, ()):
            if where is wanted:
                if item is None:
                    out.unknown.append(key)
                else:
                    out.keys[item] = value
        for where, value in self.index.augmented.get(key, ()):
            if where is wanted:
                self._read_mapping(value, scope, out, depth + 1)
        for method, call, where in self.method_calls.get(key, ()):
            if where is not wanted and "." not in key:
                continue
            if method == "update":
                for arg in call.args:
                    if arg.keyword is not None:
                        out.keys[arg.keyword.value] = arg.value
                    else:
                        self._read_mapping(arg.value, scope, out, depth + 1)
            elif method == "setdefault" and call.args:
                name = string_value(call.args[0].value)
                if name is None:
                    out.unknown.append(key)
                else:
                    out.keys.setdefault(name, call.args[1].value if len(call.args) > 1 else None)

    @cached_property
    def method_calls(self) -> dict[str, list[tuple[str, cst.Call, Scope]]]:
        """`x.update(...)`, `x.append(...)`, ... by the dotted name `x` they are called on."""
        found: dict[str, list[tuple[str, cst.Call, Scope]]] = {}
        for call, scope in self.index.calls:
            func = call.func
            if isinstance(func, cst.Attribute) and func.attr.value in _MUTATORS:
                key = dotted(func.value)
                if key is not None:
                    found.setdefault(key, []).append((func.attr.value, call, scope))
        return found

    def partial_uses(self, call: LLMCall) -> list[tuple[cst.Call, Scope]]:
        """The calls of a name bound to this partial (`ask = partial(...)`; `ask(messages=m)`)."""
        uses = []
        for other, scope in self.index.calls:
            key = dotted(other.func)
            if key is None or other is call.node:
                continue
            values = self.bindings(key, scope)
            if len(values) == 1 and values[0] is call.node:
                uses.append((other, scope))
        return uses

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

    def constant(self, expr: cst.BaseExpression, scope: Scope) -> cst.BaseExpression:
        """A Name assigned exactly once in the whole file (and not a parameter here) -> its value.

        Parameter defaults are not followed: `max_tokens=None` as a default is the caller's choice.
        """
        for _ in range(4):
            if not isinstance(expr, cst.Name) or _parameter(scope, expr.value) is not None:
                return expr
            assigned = self.index.assignments.get(expr.value, ())
            if len(assigned) != 1 or not (assigned[0].scope is None or assigned[0].scope is scope):
                return expr
            expr = assigned[0].value
        return expr

    def alternatives(self, expr: cst.BaseExpression, scope: Scope) -> list[cst.BaseExpression]:
        """Every value a Name may hold here (all its assignments in scope, else at module level)."""
        if not isinstance(expr, cst.Name):
            return [expr]
        values = self.bindings(expr.value, scope)
        return values or [self.follow(expr, scope)]

    def bindings(self, key: str, scope: Scope, before: int | None = None) -> list[cst.BaseExpression]:
        """Values assigned to a name or attribute chain; a parameter hides module-level names."""
        shadowed = "." not in key and _parameter(scope, key) is not None
        return self.index.values_of(key, scope, before, fallback=not shadowed)

    def model_of(self, call: LLMCall) -> str | None:
        """The literal model name of a call: `model=`, a constant, or a key of a `**dict` in view."""
        arg = keyword(call.node, *call.model_args)
        if arg is not None:
            return string_value(self.follow(arg.value, call.scope))
        found = self.star_value(call.node, call.scope, *call.model_args)
        return string_value(self.follow(found[1], call.scope)) if found is not None else None

    def text_of(self, expr: cst.BaseExpression, scope: Scope) -> Any:
        return static_text(self.follow(expr, scope), self.qualify)


_MUTATORS = {"update", "setdefault", "append", "extend", "insert"}


def _short(code: str) -> str:
    code = " ".join(code.split())
    return code if len(code) <= 30 else code[:27] + "..."


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
