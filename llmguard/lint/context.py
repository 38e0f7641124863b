"""Per-file facts the rules share: the LLM calls, the clients they go through, what names hold.

`FileContext` is what every rule's `check` gets: the parsed module, the one-walk index of it
(lint/index.py), and facts computed on first use. Clients are followed through assignments
(`client = OpenAI()`, `self.client = ...`, `with Anthropic() as c`) and `with_options()`/`copy()`;
`self` in a subclass of an SDK client is that SDK. Which calls are LLM calls is decided in
lint/calls.py; what a `**params` argument passes, in lint/mappings.py.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TypeVar, cast

import libcst as cst

from llmguard.lint import sdk
from llmguard.lint.calls import Client, LLMCall, classify
from llmguard.lint.config import LintConfig
from llmguard.lint.index import FileIndex, Scope, build_index
from llmguard.lint.mappings import MethodCalls, StarKwargs, method_calls, star_kwargs
from llmguard.lint.names import dotted
from llmguard.lint.values import keyword, string_value

__all__ = ["Client", "FileContext", "LLMCall", "StarKwargs"]

_DERIVING_METHODS = ("with_options", "copy")
_T = TypeVar("_T")


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
        self._memo: dict[Callable[[FileContext], object], object] = {}
        self.dependencies: set[str] = set()  # other files the findings depend on (prompt templates)

    def qualify(self, expr: cst.BaseExpression) -> str | None:
        return self.imports.qualify(expr)

    def memo(self, compute: Callable[[FileContext], _T]) -> _T:
        """`compute(self)`, computed once per file: how helper modules cache their per-file facts."""
        if compute not in self._memo:
            self._memo[compute] = compute(self)
        return cast(_T, self._memo[compute])

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
            return self._call_clients(expr, scope, depth)
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

    def _call_clients(self, expr: cst.Call, scope: Scope, depth: int) -> list[Client] | str | None:
        """A constructor call, or `with_options()`/`copy()` on a client (a derived client)."""
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

    # -- LLM calls ---------------------------------------------------------------------------
    @cached_property
    def llm_calls(self) -> list[LLMCall]:
        calls = []
        for call, scope in self.index.calls:
            found = classify(self, call, scope)
            if found is not None:
                calls.append(found)
        for found in calls:
            for client in found.clients:
                bounded = True if client.chain_sets_timeout() else self.call_passes(found, *found.timeout_args)
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

    def model_of(self, call: LLMCall) -> str | None:
        """The literal model name of a call: `model=`, a constant, or a key of a `**dict` in view."""
        arg = keyword(call.node, *call.model_args)
        if arg is not None:
            return string_value(self.follow(arg.value, call.scope))
        found = self.star_value(call.node, call.scope, *call.model_args)
        return string_value(self.follow(found[1], call.scope)) if found is not None else None

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

    def star_kwargs(self, call: cst.Call, scope: Scope) -> StarKwargs | None:
        """What the `**` arguments of `call` hold; None when it has none."""
        return star_kwargs(self, call, scope)

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

    @cached_property
    def method_calls(self) -> MethodCalls:
        """`x.update(...)`, `x.append(...)`, ... by the dotted name `x` they are called on."""
        return method_calls(self.index)

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

    def bindings(self, key: str, scope: Scope, before: int | None = None) -> list[cst.BaseExpression]:
        """Values assigned to a name or attribute chain; a parameter hides module-level names."""
        shadowed = "." not in key and _parameter(scope, key) is not None
        return self.index.values_of(key, scope, before, fallback=not shadowed)


def _parameter(scope: Scope, name: str) -> cst.Param | None:
    if not isinstance(scope, cst.FunctionDef | cst.Lambda):
        return None
    params = scope.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param
    return None
