"""SARIF 2.1.0 for GitHub code scanning: rules with help text, 1-based columns, relative URIs.

Each rule carries its documentation (`help.text` and `help.markdown`: what `llmguard rule CODE`
prints) and a default level from its severity (formats/severity.py); each result has that level.
No rule has a page of its own anywhere (the README documents none per rule), so `helpUri` is
emitted only for a rule class that declares a real `help_uri`, never as a placeholder.

A result whose finding has a safe fix carries a SARIF `fixes` object: the replacements (deleted
region + inserted text) that make exactly that fix, computed by applying it alone to the file as
it is now. In a notebook the regions are lines and columns of the `.ipynb` JSON itself, which is
what a SARIF consumer edits.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from llmguard.lint.findings import Finding
from llmguard.lint.formats.locations import file_position
from llmguard.lint.formats.severity import level
from llmguard.lint.rules import all_rules

if TYPE_CHECKING:
    from llmguard.lint.config import LintConfig
    from llmguard.lint.fixer import FixKey
    from llmguard.lint.rules.base import Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/llmguard/"


def _rule_descriptor(rule: type[Rule]) -> dict[str, object]:
    text = rule.docs()
    descriptor: dict[str, object] = {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": " ".join(rule.what.split())},
        "help": {"text": text, "markdown": text},
        "defaultConfiguration": {"level": level(rule)},
        "properties": {"tags": ["llm", "reliability", "cost"], "precision": "high"},
    }
    help_uri = getattr(rule, "help_uri", None)
    if isinstance(help_uri, str) and help_uri.startswith("https://"):
        descriptor["helpUri"] = help_uri
    return descriptor


def _artifact(path: str) -> dict[str, object]:
    if os.path.isabs(path):
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(Path(path).as_posix()), "uriBaseId": "%SRCROOT%"}


def _location(finding: Finding) -> dict[str, object]:
    line, column, end_line, end_column = file_position(finding)
    end_column = end_column if (end_line, end_column) > (line, column) else column
    region = {"startLine": line, "startColumn": column, "endLine": max(end_line, line), "endColumn": end_column}
    return {"physicalLocation": {"artifactLocation": _artifact(finding.path), "region": region}}


def render(
    findings: list[Finding], cwd: str | None = None, version: str = "0", config: LintConfig | None = None
) -> str:
    """The SARIF log; `config` gives the fix values (`fix-timeout-s`, ...) as the lint run used them."""
    cwd = cwd or os.getcwd()
    rules = all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    levels = {rule.code: level(rule) for rule in rules}
    fixes = _fixes([f for f in findings if f.fix], config)
    results = []
    for f in findings:
        properties: dict[str, object] = {"confidence": f.confidence}
        if f.cell is not None:
            properties.update(cell=f.cell, cellLine=f.line, cellColumn=f.column)
        if f.fix:
            properties["fix"] = f.fix
        where = f" (cell {f.cell}, line {f.line})" if f.cell is not None else ""
        result: dict[str, object] = {
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": levels.get(f.code, "warning"),
            "message": {"text": f"{f.message}{where}"},
            "locations": [_location(f)],
            "properties": properties,
        }
        fix = fixes.get(id(f))
        if fix is not None:
            result["fixes"] = [fix]
        results.append(result)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "llmguard",
                        "version": version,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule_descriptor(rule) for rule in rules],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(cwd).as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _fixes(fixable: list[Finding], config: LintConfig | None) -> dict[int, dict[str, object]]:
    """SARIF fix objects by id(finding), for the findings whose fix applies to the file as it is."""
    if not fixable:
        return {}
    from llmguard.lint.engine import engine_for
    from llmguard.lint.fixer import fixes_by_finding, text_changes

    if config is None:
        config = _config_near(fixable[0].path)
    engine = engine_for(config)
    by_path: dict[str, list[Finding]] = {}
    for f in fixable:
        by_path.setdefault(f.path, []).append(f)
    out: dict[int, dict[str, object]] = {}
    for path, found in by_path.items():
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        kind = "notebook" if path.endswith(".ipynb") else "python"
        try:
            text, fixed = fixes_by_finding(engine, data, path, kind)
        except Exception:  # noqa: BLE001 - a fixer bug costs this file's fix objects, not the report
            continue
        for f in found:
            key: FixKey = (f.code, f.cell, f.line, f.column)
            new = fixed.get(key)
            if new is None:
                continue
            replacements = [
                {
                    "deletedRegion": {
                        "startLine": c.line,
                        "startColumn": c.column,
                        "endLine": c.end_line,
                        "endColumn": c.end_column,
                    },
                    "insertedContent": {"text": c.text},
                }
                for c in text_changes(text, new)
            ]
            if replacements:
                out[id(f)] = {
                    "description": {"text": f.fix},
                    "artifactChanges": [{"artifactLocation": _artifact(path), "replacements": replacements}],
                }
    return out


def _config_near(path: str) -> LintConfig:
    """The settings `llmguard lint` would use for this file (when the caller did not pass its own)."""
    from llmguard.lint.config import LintConfig, LintConfigError, load_config

    try:
        return load_config(os.path.dirname(os.path.abspath(path)))
    except LintConfigError:
        return LintConfig()
