"""`llmguard check` and `%llmguard status` say which store shared budgets use and whether it answers,
and never show a Redis password."""

from __future__ import annotations

import json

import pytest

from tests.conftest import sdk_shell
from tests.test_magics import run, shown
from tests.test_store_check import check_json
from tests.test_store_redis import PASSWORD, redis_server  # noqa: F401 - the fixture

pytest.importorskip("redis")


def test_status_names_the_store_and_whether_it_answers(home, fresh_sim, monkeypatch, redis_server):  # noqa: F811
    monkeypatch.setenv("LLMGUARD_STORE", redis_server.url)
    monkeypatch.setenv("LLMGUARD_NAMESPACE", "team-a")
    ip = sdk_shell(monkeypatch, fresh_sim)
    run(ip, "%load_ext llmguard")
    try:
        _, up = run(ip, "%llmguard status")
        assert f"store: {redis_server.label} · namespace team-a · reachable" in shown(up)
        redis_server.stop()
        _, down = run(ip, "%llmguard status")
        text = shown(down)
        assert f"store: {redis_server.label} · namespace team-a · unreachable (" in text
        assert PASSWORD not in shown(up) + text
    finally:
        run(ip, "%unload_ext llmguard")
        ip.reset()


def test_check_reports_the_store_and_fails_quotas_it_cannot_reach(tmp_path, capsys, redis_server):  # noqa: F811
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        f'[tool.llmguard]\nstore = "{redis_server.url}"\n[tool.llmguard.quotas]\n"tenant:acme" = {{usd_per_day = 5.0}}\n'
    )
    (project / "app.py").write_text("import llmguard\nllmguard.install()\n")
    code, data, text = check_json(project, capsys)
    assert data["store"] == {
        "kind": "redis", "label": redis_server.label, "namespace": "default", "reachable": True, "reason": ""
    }  # fmt: skip
    quota = {i["number"]: i for i in data["items"]}[3]
    assert quota["status"] == "pass" and quota["reason"].endswith(f"shared through {redis_server.label}")
    redis_server.stop()
    code, data, text = check_json(project, capsys)
    assert data["store"]["reachable"] is False and "cannot be reached" in data["store"]["reason"]
    quota = {i["number"]: i for i in data["items"]}[3]
    assert quota["status"] == "fail" and "which cannot be reached" in quota["reason"]
    assert PASSWORD not in json.dumps(data) + text
