"""JSON: a list of findings (code, name, message, file, cell, line, column, end position, confidence, fix)."""

from __future__ import annotations

import json
from collections import Counter

from llmguard.lint.findings import Finding


def finding_dict(finding: Finding) -> dict[str, object]:
    return {
        "code": finding.code,
        "name": finding.name,
        "message": finding.message,
        "file": finding.path,
        "cell": finding.cell,
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "confidence": finding.confidence,
        "fix": {"description": finding.fix, "applicability": "safe"} if finding.fix else None,
    }


def render(findings: list[Finding]) -> str:
    return json.dumps([finding_dict(f) for f in findings], indent=2) + "\n"


def render_statistics(findings: list[Finding]) -> str:
    return json.dumps(statistics(findings), indent=2) + "\n"


def statistics(findings: list[Finding]) -> list[dict[str, object]]:
    counts = Counter(f.code for f in findings)
    names = {f.code: f.name for f in findings}
    fixable = Counter(f.code for f in findings if f.fix)
    return [
        {"code": code, "name": names[code], "count": n, "fixable": fixable[code]}
        for code, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
