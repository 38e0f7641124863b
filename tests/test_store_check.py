"""`llmguard check` names the store shared budgets use (the local store of the project's home)."""

from __future__ import annotations

import argparse
import json

from llmguard.reporting.cli import add_check_arguments, run_check


def check_json(project, capsys) -> tuple[int, dict, str]:
    """The check as JSON, and as the terminal shows it."""
    parser = argparse.ArgumentParser()
    add_check_arguments(parser)
    run_check(parser.parse_args([str(project), "--format", "json"]))
    data = json.loads(capsys.readouterr().out)
    code = run_check(parser.parse_args([str(project)]))
    return code, data, capsys.readouterr().out


def test_check_names_the_local_store_of_the_projects_home(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LLMGUARD_HOME", raising=False)
    monkeypatch.delenv("LLMGUARD_STORE", raising=False)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.llmguard]\nhome = "state"\n')
    _, data, text = check_json(project, capsys)
    label = f"local ({project / 'state'}/store.sqlite3)"
    assert data["store"] == {"kind": "local", "label": label, "namespace": "default", "reachable": True, "reason": ""}
    squeezed = "".join(text.split())  # the terminal wraps long paths
    assert "".join(f"store: {label} (reachable)".split()) in squeezed
    assert not (project / "state").exists()  # the check creates nothing
