"""The cheap import/alias pass: which local names mean `openai.OpenAI`, `tenacity.retry`, ...

libcst's QualifiedNameProvider answers this for every name in every scope, at about ten times the
cost of parsing. The rules only ask "what does this callee mean", and imports are nearly always at
the top of the module, so one table of `local name -> qualified name` built from the import
statements answers it. Shadowing a module name with a local variable is not tracked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst


def dotted(expr: cst.BaseExpression) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if not isinstance(expr, cst.Name):
        return None
    parts.append(expr.value)
    return ".".join(reversed(parts))


def module_name(node: cst.BaseExpression | None) -> str:
    if node is None:
        return ""
    return dotted(node) or ""


@dataclass
class ImportMap:
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> qualified name
    star_modules: set[str] = field(default_factory=set)
    from_imports: dict[str, list[cst.ImportFrom]] = field(default_factory=dict)  # module -> statements
    known: frozenset[str] = frozenset()  # qualified names star imports may provide

    def add(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                name = module_name(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self.aliases[alias.asname.name.value] = name
                else:
                    head = name.split(".", 1)[0]
                    self.aliases[head] = head
            return
        if node.relative:
            return
        module = module_name(node.module)
        self.from_imports.setdefault(module, []).append(node)
        if isinstance(node.names, cst.ImportStar):
            self.star_modules.add(module)
            return
        for alias in node.names:
            name = module_name(alias.name)
            local = (
                alias.asname.name.value
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name)
                else name
            )
            self.aliases[local] = f"{module}.{name}"

    def qualify(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name of a Name/Attribute chain whose head is an import, else None."""
        name = dotted(expr)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        target = self.aliases.get(head)
        if target is None:
            for module in self.star_modules:
                candidate = f"{module}.{head}"
                if candidate in self.known:
                    target = candidate
                    break
            else:
                return None
        return f"{target}.{rest}" if rest else target

    def local_for(self, qualified: str) -> str | None:
        """A local expression text that refers to `qualified`, if the module already has one."""
        for local, target in self.aliases.items():
            if target == qualified:
                return local
        module, _, name = qualified.rpartition(".")
        for local, target in self.aliases.items():
            if target == module:
                return f"{local}.{name}"
        if module in self.star_modules:
            return name
        return None
