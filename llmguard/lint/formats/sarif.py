"""SARIF 2.1.0 for GitHub code scanning: rules with help text, 1-based columns, relative URIs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from llmguard.lint.findings import Finding
from llmguard.lint.formats.locations import file_position
from llmguard.lint.rules import all_rules

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/llmguard/"


def _rule_descriptor(rule: type) -> dict[str, object]:
    text = rule.docs()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": " ".join(rule.what.split())},
        "help": {"text": text, "markdown": text},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["llm", "reliability", "cost"], "precision": "high"},
    }


def _location(finding: Finding, cwd: str) -> dict[str, object]:
    path = finding.path
    if os.path.isabs(path):
        artifact: dict[str, object] = {"uri": Path(path).as_uri()}
    else:
        artifact = {"uri": quote(Path(path).as_posix()), "uriBaseId": "%SRCROOT%"}
    line, column, end_line, end_column = file_position(finding)
    end_column = end_column if (end_line, end_column) > (line, column) else column
    region = {"startLine": line, "startColumn": column, "endLine": max(end_line, line), "endColumn": end_column}
    return {"physicalLocation": {"artifactLocation": artifact, "region": region}}


def render(findings: list[Finding], cwd: str | None = None, version: str = "0") -> str:
    cwd = cwd or os.getcwd()
    rules = all_rules()
    index = {rule.code: i for i, rule in enumerate(rules)}
    results = []
    for f in findings:
        properties: dict[str, object] = {"confidence": f.confidence}
        if f.cell is not None:
            properties.update(cell=f.cell, cellLine=f.line, cellColumn=f.column)
        if f.fix:
            properties["fix"] = f.fix
        where = f" (cell {f.cell}, line {f.line})" if f.cell is not None else ""
        results.append({
            "ruleId": f.code,
            "ruleIndex": index[f.code],
            "level": "error",
            "message": {"text": f"{f.message}{where}"},
            "locations": [_location(f, cwd)],
            "properties": properties,
        })
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "llmguard", "version": version, "informationUri": INFORMATION_URI,
                                "rules": [_rule_descriptor(rule) for rule in rules]}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(cwd).as_uri() + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return json.dumps(log, indent=2) + "\n"
