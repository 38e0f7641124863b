"""SARIF output validates against the official 2.1.0 schema (vendored: sarif-schema-2.1.0.json).

The schema file is the OASIS SARIF 2.1.0 JSON schema as published on SchemaStore
(sarif-2.1.0-rtm.5), taken from Microsoft's @microsoft/jest-sarif package; there is no network at
test time.
"""

from __future__ import annotations

import json

import jsonschema
from conftest import SARIF_SCHEMA, make_notebook


def _validate(log: dict) -> None:
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(log)


def test_sarif_validates_and_has_rules_with_help(cli, bad_project):
    (bad_project / "app" / "nb.ipynb").write_text(
        make_notebook([("markdown", "# nb"), ("code", "from anthropic import Anthropic\nllm = Anthropic()")])
    )
    result = cli(["lint", "app", "--format", "sarif"], cwd=bad_project)
    assert result.code == 1
    log = json.loads(result.out)
    _validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} >= {"LG000", "LG101", "LG201", "LG403"}
    assert all(r["help"]["markdown"].startswith(f"# {r['id']}") for r in rules)
    results = run["results"]
    assert len(results) == 4
    first = results[0]
    assert first["ruleId"] == rules[first["ruleIndex"]]["id"]
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "app/bad.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startColumn"] >= 1
    notebook = [
        r for r in results if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "app/nb.ipynb"
    ]
    assert notebook and notebook[0]["properties"]["cell"] == 2
    line = notebook[0]["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert "llm = Anthropic()" in (bad_project / "app" / "nb.ipynb").read_text().splitlines()[line - 1]


def test_empty_sarif_validates(cli, bad_project):
    log = json.loads(cli(["lint", "app/clean.py", "--format", "sarif"], cwd=bad_project).out)
    _validate(log)
    assert log["runs"][0]["results"] == []
