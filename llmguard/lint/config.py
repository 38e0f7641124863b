"""`[tool.llmguard.lint]` from pyproject.toml: read once per run, validated with messages that say what to fix.

The nearest pyproject.toml (walking up from the linted directory) that has a `[tool.llmguard.lint]`
table wins, as ruff does for `[tool.ruff]`; its folder is the root that excludes, per-file ignores
and prompt-file globs are relative to. Keys use dashes (underscores are accepted too):

    select, ignore            rule codes or prefixes ("LG2", "ALL"); --select/--ignore override/extend
    per-file-ignores          { "tests/**" = ["LG3"] }, gitignore-style globs relative to the root
    include-tests             also run LG201/LG301 on test files (default false: tests/, test/, test_*.py,
                              *_test.py, conftest.py use stub clients and short calls on purpose)
    exclude                   gitignore-style globs (on top of .venv, build, node_modules, ...)
    respect-gitignore         read .gitignore files (default true)
    max-prompt-tokens         LG401/LG403 budget (2000)      max-output-tokens   LG303 (4096)
    max-timeout-s             LG203 (120)                    max-sdk-retries     LG104 (5)
    call-targets              your wrappers that send LLM calls: ["myapp.llm.ask"] or
                              { "myapp.llm.ask" = { max-tokens-args = ["limit"], provider = "openai" } }
    prompt-files              template globs for LG403, e.g. ["prompts/**/*.txt"]
    prompt-model              tokenizer when a call has no literal model ("gpt-4o-mini")
    max-file-bytes            larger files are reported (LG000), not parsed (1,000,000)
    fix-timeout-s, fix-max-tokens, fix-max-attempts   values --fix writes (60, 1024, 5)
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any

DEFAULTS: dict[str, Any] = {
    "select": ["ALL"],
    "ignore": [],
    "per-file-ignores": {},
    "include-tests": False,
    "exclude": [],
    "respect-gitignore": True,
    "max-prompt-tokens": 2000,
    "max-output-tokens": 4096,
    "max-timeout-s": 120.0,
    "max-sdk-retries": 5,
    "call-targets": {},
    "prompt-files": [],
    "prompt-model": "gpt-4o-mini",
    "max-file-bytes": 1_000_000,
    "fix-timeout-s": 60.0,
    "fix-max-tokens": 1024,
    "fix-max-attempts": 5,
}
DEFAULT_MAX_TOKENS_ARGS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


class LintConfigError(ValueError):
    """A config value that cannot be used; the message names the file, the key and the fix."""


@dataclass(frozen=True)
class CallTarget:
    """A user's own wrapper that sends an LLM call (`call-targets`)."""

    name: str  # qualified ("myapp.llm.ask") or bare ("ask", matches any callee with that last name)
    max_tokens_args: tuple[str, ...] = DEFAULT_MAX_TOKENS_ARGS
    provider: str = "openai"


@dataclass(frozen=True)
class LintConfig:
    root: Path = field(default_factory=Path.cwd)
    source: str | None = None  # the file the settings came from, for messages
    select: tuple[str, ...] = ("ALL",)
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    include_tests: bool = False
    exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    max_prompt_tokens: int = 2000
    max_output_tokens: int = 4096
    max_timeout_s: float = 120.0
    max_sdk_retries: int = 5
    call_targets: tuple[CallTarget, ...] = ()
    prompt_files: tuple[str, ...] = ()
    prompt_model: str = "gpt-4o-mini"
    max_file_bytes: int = 1_000_000
    fix_timeout_s: float = 60.0
    fix_max_tokens: int = 1024
    fix_max_attempts: int = 5

    def enabled_codes(self) -> frozenset[str]:
        """The rule codes this run checks: `select` minus `ignore` (prefixes allowed, `ALL`)."""
        from llmguard.lint.rules import all_codes

        codes = all_codes()
        chosen = {c for c in codes if any(_matches(c, s) for s in self.select)}
        return frozenset(c for c in chosen if not any(_matches(c, i) for i in self.ignore))

    def with_cli(self, select: list[str] | None = None, ignore: list[str] | None = None) -> LintConfig:
        """`--select` replaces the configured selection; `--ignore` adds to the configured ignores."""
        updated = self
        if select:
            updated = replace(updated, select=tuple(_check_codes(select, "--select")))
        if ignore:
            updated = replace(updated, ignore=updated.ignore + tuple(_check_codes(ignore, "--ignore")))
        return updated

    def skips_test_rules(self, path: str) -> bool:
        """True when `path` is a test file and the rules a test client makes noisy (LG201, LG301) skip it."""
        return not self.include_tests and is_test_path(path, self.root)

    def fingerprint(self) -> str:
        """Stable hash of everything that changes results (not the root or where it came from)."""
        data = asdict(self)
        data.pop("root"), data.pop("source")
        from llmguard.lint.hashing import blake2b

        return blake2b(json.dumps(data, sort_keys=True, default=str).encode(), digest_size=8).hexdigest()


_TEST_DIRS = {"tests", "test"}


def is_test_path(path: str, root: Path | None = None) -> bool:
    """A file under tests/ or test/, or named test_*.py, *_test.py or conftest.py (relative to `root`).

    The part of the path above the config root does not count: a project checked out in a folder
    named `tests` is not all tests.
    """
    if not path or path.startswith("<"):  # "<cell>", "<stdin>"
        return False
    given = PurePath(path)
    relative = given
    if root is not None:
        for absolute in (os.path.abspath, os.path.realpath):  # realpath: a root reached through a symlink
            try:
                relative = Path(absolute(path)).relative_to(root)
                break
            except ValueError:
                continue
    stem = relative.name.rsplit(".", 1)[0]
    if stem.startswith("test_") or stem.endswith("_test") or stem == "conftest":
        return True
    return any(part in _TEST_DIRS for part in relative.parts[:-1])


def _matches(code: str, selector: str) -> bool:
    return selector == "ALL" or code.startswith(selector)


def _check_codes(values: list[str], where: str) -> list[str]:
    from llmguard.lint.rules import all_codes

    codes = all_codes()
    out = []
    for raw in values:
        for value in (v.strip().upper() for v in str(raw).split(",")):
            if not value:
                continue
            if value != "ALL" and not any(c.startswith(value) for c in codes):
                hint = _close_matches(value, codes, n=1)
                extra = f" (did you mean {hint[0]}?)" if hint else ""
                raise LintConfigError(
                    f"{where}: unknown rule code {value!r}{extra}; `llmguard rule --all` lists the codes"
                )
            out.append(value)
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise LintConfigError(
                f"{path}: reading [tool.llmguard.lint] needs Python 3.11+ (tomllib) or `pip install tomli`"
            ) from None
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LintConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LintConfigError(f"{path}: the config file is not UTF-8 text") from None
    except ValueError as exc:
        raise LintConfigError(f"{path}: invalid TOML: {exc}") from None


_WARNED: set[str] = set()  # pyproject files already warned about in this process


def _warn_misplaced(path: Path, data: dict[str, Any]) -> None:
    """Say once, on stderr, when lint settings sit in [tool.llmguard] (the runtime guard's table)."""
    tool = data.get("tool")
    ours = tool.get("llmguard") if isinstance(tool, dict) else None
    if not isinstance(ours, dict):
        return
    keys = [str(k) for k in ours if str(k).replace("_", "-") in DEFAULTS and str(k) != "lint"]
    where = str(path.resolve())
    if not keys or where in _WARNED:
        return
    _WARNED.add(where)
    print(
        f"llmguard lint: {where}: [tool.llmguard] has lint settings ({', '.join(keys)}), which are ignored "
        "there: [tool.llmguard] configures the runtime guard; move them under [tool.llmguard.lint]",
        file=sys.stderr,
    )


def _lint_table(data: dict[str, Any]) -> dict[str, Any] | None:
    tool = data.get("tool")
    if not isinstance(tool, dict):
        return None
    ours = tool.get("llmguard")
    if not isinstance(ours, dict) or "lint" not in ours:
        return None
    return ours["lint"]


def find_config_file(start_dir: str | Path) -> Path | None:
    """The nearest pyproject.toml at or above `start_dir` with a [tool.llmguard.lint] table."""
    here = Path(start_dir).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        try:
            text = candidate.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "llmguard" not in text:
            continue
        data = _read_toml(candidate)
        _warn_misplaced(candidate, data)
        if _lint_table(data) is not None:
            return candidate
    return None


def load_config(start_dir: str | Path = ".", config_file: str | Path | None = None) -> LintConfig:
    """The lint settings that apply to `start_dir` (or those in `config_file`); defaults when none."""
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise LintConfigError(f"--config {config_file}: no such file")
        data = _read_toml(path)
        _warn_misplaced(path, data)
        table = _lint_table(data)
        if table is None:  # a standalone llmguard-lint.toml holds the keys at the top level
            table = data.get("lint", data) if path.name != "pyproject.toml" else {}
        return config_from_table(table, root=path.resolve().parent, source=str(path))
    found = find_config_file(start_dir)
    if found is None:
        base = Path(start_dir).resolve()
        return LintConfig(root=base.parent if base.is_file() else base)
    return config_from_table(_lint_table(_read_toml(found)) or {}, root=found.parent, source=str(found))


def config_from_table(table: Any, root: Path | None = None, source: str | None = None) -> LintConfig:
    """Validate a `[tool.llmguard.lint]` table (already parsed TOML) into a LintConfig."""
    where = f"{source} [tool.llmguard.lint]" if source else "[tool.llmguard.lint]"
    if not isinstance(table, dict):
        raise LintConfigError(f"{where}: expected a table of settings, got {type(table).__name__}")
    values = dict(DEFAULTS)
    for raw_key, value in table.items():
        key = str(raw_key).replace("_", "-")
        if key not in DEFAULTS:
            hint = _close_matches(key, DEFAULTS, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise LintConfigError(f"{where}: unknown key {raw_key!r}{extra}; known keys: {', '.join(DEFAULTS)}")
        values[key] = value
    v = _Validator(where)
    return LintConfig(
        root=(root or Path.cwd()).resolve(),
        source=source,
        select=tuple(_check_codes(v.str_list("select", values["select"]), f"{where} select")),
        ignore=tuple(_check_codes(v.str_list("ignore", values["ignore"]), f"{where} ignore")),
        per_file_ignores=v.per_file_ignores(values["per-file-ignores"]),
        include_tests=v.boolean("include-tests", values["include-tests"]),
        exclude=tuple(v.str_list("exclude", values["exclude"])),
        respect_gitignore=v.boolean("respect-gitignore", values["respect-gitignore"]),
        max_prompt_tokens=v.number("max-prompt-tokens", values["max-prompt-tokens"], integer=True),
        max_output_tokens=v.number("max-output-tokens", values["max-output-tokens"], integer=True),
        max_timeout_s=float(v.number("max-timeout-s", values["max-timeout-s"])),
        max_sdk_retries=v.number("max-sdk-retries", values["max-sdk-retries"], integer=True, minimum=0),
        call_targets=v.call_targets(values["call-targets"]),
        prompt_files=tuple(v.str_list("prompt-files", values["prompt-files"])),
        prompt_model=v.string("prompt-model", values["prompt-model"]),
        max_file_bytes=v.number("max-file-bytes", values["max-file-bytes"], integer=True),
        fix_timeout_s=float(v.number("fix-timeout-s", values["fix-timeout-s"])),
        fix_max_tokens=v.number("fix-max-tokens", values["fix-max-tokens"], integer=True),
        fix_max_attempts=v.number("fix-max-attempts", values["fix-max-attempts"], integer=True),
    )


class _Validator:
    """Type checks with one message style: where, which key, what was found, what is expected."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, expected: str, value: Any) -> LintConfigError:
        return LintConfigError(f"{self.where}: {key} must be {expected}, got {value!r}")

    def str_list(self, key: str, value: Any) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise self.fail(key, "a list of strings", value)
        return value

    def string(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, "a non-empty string", value)
        return value

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value)
        return value

    def number(self, key: str, value: Any, integer: bool = False, minimum: float = 1) -> Any:
        kind = "a whole number" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"{kind} >= {minimum:g}", value)
        if integer and isinstance(value, float):
            if not value.is_integer():
                raise self.fail(key, kind, value)
            value = int(value)
        if value < minimum or value != value or value == float("inf"):
            raise self.fail(key, f"{kind} >= {minimum:g}", value)
        return value

    def per_file_ignores(self, value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if not isinstance(value, dict):
            raise self.fail("per-file-ignores", 'a table of glob = ["LG201", ...]', value)
        out = []
        for pattern, codes in value.items():
            codes = self.str_list(f"per-file-ignores[{pattern!r}]", codes)
            out.append((pattern, tuple(_check_codes(codes, f"{self.where} per-file-ignores[{pattern!r}]"))))
        return tuple(out)

    def call_targets(self, value: Any) -> tuple[CallTarget, ...]:
        if isinstance(value, list):
            value = {name: {} for name in self.str_list("call-targets", value)}
        if not isinstance(value, dict):
            raise self.fail("call-targets", "a list of names or a table name = {max-tokens-args = [...]}", value)
        out = []
        for name, spec in value.items():
            key = f"call-targets[{name!r}]"
            if not name or not all(part.isidentifier() for part in name.split(".")):
                raise self.fail("call-targets", "dotted Python names such as 'myapp.llm.ask'", name)
            if not isinstance(spec, dict):
                raise self.fail(key, "a table", spec)
            unknown = set(spec) - {"max-tokens-args", "max_tokens_args", "provider"}
            if unknown:
                raise self.fail(key, "a table with max-tokens-args and provider only", spec)
            args = spec.get("max-tokens-args", spec.get("max_tokens_args", list(DEFAULT_MAX_TOKENS_ARGS)))
            provider = spec.get("provider", "openai")
            out.append(
                CallTarget(
                    name, tuple(self.str_list(f"{key}.max-tokens-args", args)), self.string(f"{key}.provider", provider)
                )
            )
        return tuple(out)


def _close_matches(word: str, choices: Any, n: int = 1) -> list[str]:
    import difflib  # only for error messages: not loaded on every run

    return difflib.get_close_matches(word, choices, n=n)
