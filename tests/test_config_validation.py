"""Settings are validated once, in config.py: every bad value is a ConfigError that names the key, the
value, where it came from and a valid example. Readers (`llmguard report`) get the valid parts of a
broken configuration plus a warning. `llmguard lint` on a missing path prints only the error.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import llmguard
from llmguard import config
from llmguard.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project folder as the working directory, with no LLMGUARD_* variables set."""
    for name in list(os.environ):
        if name.startswith("LLMGUARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def refused(overrides, project):
    with pytest.raises(ConfigError) as excinfo:
        load_settings(overrides, start=project)
    return str(excinfo.value)


# ---- A: every bad value is refused, with key, value, source and an example ------------------------

BAD = [
    ({"limits": {"gpt-4o-mini": {"rpm": -5}}}, "limits['gpt-4o-mini']['rpm']", "-5"),
    ({"limits": {"gpt-4o-mini": {"tpm": 0}}}, "limits['gpt-4o-mini']['tpm']", "0"),
    ({"limits": {"gpt-4o-mini": {"rpm": "500"}}}, "limits['gpt-4o-mini']['rpm']", "'500'"),
    ({"limits": {"gpt-4o-mini": {"rpm": 5, "rps": 1}}}, "limits['gpt-4o-mini']", "'rps'"),
    ({"limits": {"gpt-4o-mini": {}}}, "limits['gpt-4o-mini']", "{}"),
    ({"limits": "fast"}, "limits", "'fast'"),
    ({"budget_usd": -1}, "budget_usd", "-1"),
    ({"budget_usd": float("nan")}, "budget_usd", "nan"),
    ({"timeout_s": float("inf")}, "timeout_s", "inf"),
    ({"timeout_s": float("nan")}, "timeout_s", "nan"),
    ({"timeout_s": 0}, "timeout_s", "0"),
    ({"retry_budget": -0.5}, "retry_budget", "-0.5"),
    ({"retry_budget": float("nan")}, "retry_budget", "nan"),
    ({"backoff_base_s": -1}, "backoff_base_s", "-1"),
    ({"max_wait_s": -1}, "max_wait_s", "-1"),
    ({"cache_size_mb": -1}, "cache_size_mb", "-1"),
    ({"cache_key_tags": "doc_id"}, "cache_key_tags", "'doc_id'"),
    ({"cache_key_tags": ["doc_id", 3]}, "cache_key_tags[1]", "3"),
    ({"window_s": 0}, "window_s", "0"),
    ({"quotas": {"tenant:acme": {"usd_per_day": "x"}}}, "quotas['tenant:acme']['usd_per_day']", "'x'"),
    ({"quotas": {"tenant:acme": {"usd_per_day": -1}}}, "quotas['tenant:acme']['usd_per_day']", "-1"),
    ({"quotas": {"tenant:acme": {"usd_per_week": 1}}}, "quotas['tenant:acme']", "'usd_per_week'"),
    ({"quotas": {"team:acme": {"usd_per_day": 1}}}, "quotas['team:acme']", "'team:acme'"),
    ({"quotas": {"tenant:": {"usd_per_day": 1}}}, "quotas['tenant:']", "'tenant:'"),
    ({"quotas": {"tenant:acme": 5}}, "quotas['tenant:acme']", "5"),
    (
        {"prices": {"my-model": {"input_mtok": "cheap", "output_mtok": 0.2}}},
        "prices['my-model']['input_mtok']",
        "'cheap'",
    ),
    ({"prices": {"my-model": {"input_mtok": -0.1, "output_mtok": 0.2}}}, "prices['my-model']['input_mtok']", "-0.1"),
    ({"prices": {"my-model": {"input_mtok": 0.1}}}, "prices['my-model']", "output_mtok"),
    (
        {"prices": {"my-model": {"input_mtok": 0.1, "output_mtok": 0.2, "per_call": 1}}},
        "prices['my-model']",
        "'per_call'",
    ),
    ({"fallbacks": {"gpt-4o": ["gpt-4o-mini", 3]}}, "fallbacks['gpt-4o'][1]", "3"),
    ({"fallbacks": {"gpt-4o": "gpt-4o-mini"}}, "fallbacks['gpt-4o']", "'gpt-4o-mini'"),
    ({"routes": {"when": {"feature": "x"}, "model": "m"}}, "routes", "'when'"),
    ({"routes": ["gpt-4o-mini"]}, "routes[0]", "'gpt-4o-mini'"),
    ({"routes": [{"when": {"feature": "x"}}]}, "routes[0]", "'when'"),
    ({"routes": [{"when": "x", "model": "m"}]}, "routes[0]['when']", "'x'"),
    ({"routes": [{"when": {}, "model": "m", "to": "n"}]}, "routes[0]", "'to'"),
    ({"max_attempts": True}, "max_attempts", "True"),
    ({"max_attempts": 0}, "max_attempts", "0"),
    ({"max_attempts": 2.5}, "max_attempts", "2.5"),
    ({"assumed_max_tokens": 0}, "assumed_max_tokens", "0"),
    ({"default_max_tokens": -1}, "default_max_tokens", "-1"),
    ({"enabled": 1}, "enabled", "1"),
    ({"cache": "maybe"}, "cache", "'maybe'"),
    ({"home": ""}, "home", "''"),
    ({"home": "   "}, "home", "'   '"),
    ({"home": 5}, "home", "5"),
]


@pytest.mark.parametrize(("overrides", "key", "shown"), BAD, ids=[repr(case[0])[:60] for case in BAD])
def test_bad_settings_are_refused_with_key_value_source_and_example(project, overrides, key, shown):
    message = refused(overrides, project)
    assert message.startswith("llmguard: setting ")
    assert key in message and shown in message
    assert "from code" in message
    assert ", e.g. " in message  # a valid example follows


NUMERIC = [
    f.name
    for f in dataclasses.fields(Settings)
    if isinstance(f.default, int | float)
    and not isinstance(f.default, bool)
    or f.name in ("budget_usd", "default_max_tokens")
]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), True])
def test_every_numeric_setting_refuses_nan_inf_and_bool(project, name, value):
    message = refused({name: value}, project)
    assert f"setting {name}={value!r} from code" in message


@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_setting_refuses_nan_from_the_environment(project, monkeypatch, name):
    monkeypatch.setenv(f"LLMGUARD_{name.upper()}", "nan")
    with pytest.raises(ConfigError) as excinfo:
        load_settings(start=project)
    assert f"setting {name}='nan' from the environment (LLMGUARD_{name.upper()})" in str(excinfo.value)


def test_the_example_is_written_the_way_the_source_is(project, monkeypatch):
    assert "e.g. timeout_s=60" in refused({"timeout_s": -1}, project)
    (project / "pyproject.toml").write_text('[tool.llmguard]\nlimits = "fast"\n')
    message = refused(None, project)
    assert f"setting limits='fast' from {project / 'pyproject.toml'} [tool.llmguard]" in message
    assert 'e.g. limits = { "gpt-4o-mini" = { rpm = 500, tpm = 200000 } }' in message
    tomllib.loads(message.split("e.g. ", 1)[1].split("\n")[0])  # the example itself is valid TOML
    (project / "pyproject.toml").unlink()
    monkeypatch.setenv("LLMGUARD_WINDOW_S", "0")
    assert "e.g. LLMGUARD_WINDOW_S=60" in refused(None, project)


def test_an_empty_home_is_refused_from_every_source(project, monkeypatch):
    assert "home=''" in refused({"home": ""}, project)
    monkeypatch.setenv("LLMGUARD_HOME", "")
    message = refused(None, project)
    assert "setting home='' from the environment (LLMGUARD_HOME)" in message
    monkeypatch.delenv("LLMGUARD_HOME")
    (project / "pyproject.toml").write_text('[tool.llmguard]\nhome = ""\n')
    assert "[tool.llmguard]" in refused(None, project)


def test_install_with_a_broken_pyproject_raises_config_error_and_installs_nothing(project):
    (project / "pyproject.toml").write_text('[tool.llmguard]\nlimits = "fast"\n')
    with pytest.raises(ConfigError, match="limits='fast'"):
        llmguard.install(home=str(project / ".llmguard"))
    assert llmguard.current() is None


def test_a_tool_llmguard_that_is_not_a_table_is_refused(project):
    (project / "pyproject.toml").write_text('[tool]\nllmguard = "on"\n')
    assert "[tool.llmguard]" in refused(None, project)


def test_valid_settings_are_accepted_and_normalised(project, monkeypatch):
    settings = load_settings(
        {
            "home": project / "state",  # a Path is fine
            "timeout_s": 30,
            "max_attempts": 1.0,
            "backoff_base_s": 0,
            "max_wait_s": 0,
            "budget_usd": 0,
            "retry_budget": None,
            "cache_ttl_s": None,
            "default_max_tokens": 256,
            "limits": {"gpt-4o-mini": {"rpm": 500, "tpm": None}, "gpt-4o": {"tpm": 30_000.5}},
            "quotas": {"tenant:acme": {"usd_per_day": 1, "tokens_per_run": 50_000}, "feature:chat": {"usd_per_run": 0}},
            "prices": {"my-model": {"input_mtok": 0.1, "output_mtok": 0, "cache_read_mtok": 0.01}},
            "fallbacks": {"gpt-4o": ("gpt-4o-mini",)},
            "routes": [{"when": {"feature": "classification", "tier": 2}, "model": "gpt-4.1-nano", "from": "gpt-4o"}],
            "cache_key_tags": ("doc_id",),
            "cache": False,
            "unpriced": "allow",
        },
        start=project,
    )
    assert settings.home == str(project / "state")
    assert (settings.timeout_s, settings.max_attempts) == (30.0, 1)
    assert (settings.backoff_base_s, settings.max_wait_s) == (0.0, 0.0)
    assert type(settings.max_attempts) is int and type(settings.timeout_s) is float
    assert (settings.budget_usd, settings.retry_budget, settings.cache_ttl_s) == (0.0, None, None)
    assert settings.limits == {"gpt-4o-mini": {"rpm": 500, "tpm": None}, "gpt-4o": {"tpm": 30_000.5}}
    assert settings.fallbacks == {"gpt-4o": ["gpt-4o-mini"]}
    assert settings.cache_key_tags == ["doc_id"]
    assert (settings.cache, settings.unpriced) == ("off", "allow")
    from_env = [
        ("timeout_s", "none", None),
        ("max_attempts", "4", 4),
        ("max_attempts", "4.0", 4),
        ("enabled", "off", False),
        ("retry_budget", "0.5", 0.5),
        ("home", "~/x", "~/x"),
    ]
    for name, text, expected in from_env:
        monkeypatch.setenv(f"LLMGUARD_{name.upper()}", text)
        assert getattr(load_settings(start=project), name) == expected
        monkeypatch.delenv(f"LLMGUARD_{name.upper()}")


def test_unpriced_defaults_to_refuse_and_takes_only_refuse_or_allow(project):
    assert Settings().unpriced == "refuse"
    message = refused({"unpriced": "warn"}, project)
    assert "unpriced='warn'" in message and "'refuse'" in message and "'allow'" in message


def test_every_setting_has_exactly_one_rule():
    assert set(config.RULES) == {f.name for f in dataclasses.fields(Settings)}
    defaults = Settings()
    for name in config.RULES:  # every default passes its own rule
        assert Settings().with_updates({name: getattr(defaults, name)}) == defaults


def test_the_quota_and_price_vocabulary_matches_the_policies_that_use_it():
    from llmguard.policies import budget, pricing

    assert config.QUOTA_UNITS == budget.QUOTA_UNITS and config.QUOTA_SCOPES == budget.QUOTA_SCOPES
    assert set(config.PRICE_KEYS) == pricing._FLAT_KEYS


# ---- B: readers get the valid parts and a warning ------------------------------------------------


def test_reading_a_broken_configuration_keeps_the_valid_parts_and_warns(project, monkeypatch):
    (project / "pyproject.toml").write_text(
        '[tool.llmguard]\nhome = "data"\ntimeout_s = 30\nlimits = "fast"\nbudget_usd = -1\nwindow-s = 30\n'
        '[tool.llmguard.quotas."tenant:acme"]\nusd_per_day = "x"\n'
    )
    monkeypatch.setenv("LLMGUARD_MAX_WAIT_S", "-2")
    monkeypatch.setenv("LLMGUARD_CACHE_SIZE_MB", "512")
    settings, warning = config.load_settings_for_reading(start=project)
    assert (settings.home, settings.timeout_s) == ("data", 30.0)
    assert (settings.window_s, settings.cache_size_mb) == (30.0, 512.0)
    assert (settings.limits, settings.budget_usd, settings.quotas, settings.max_wait_s) == ({}, None, {}, 10.0)
    assert warning is not None and warning.startswith("llmguard: ignoring 4 invalid settings")
    for part in (
        "limits='fast'",
        "budget_usd=-1",
        "quotas['tenant:acme']['usd_per_day']='x'",
        "max_wait_s='-2' from the environment",
    ):
        assert part in warning
    with pytest.raises(ConfigError):  # the strict loader still refuses the same files
        load_settings(start=project)


def test_reading_a_valid_or_unreadable_configuration(project):
    assert config.load_settings_for_reading(start=project) == (Settings(), None)
    (project / "pyproject.toml").write_text('[tool.llmguard]\nhome = "data"\n')
    assert config.load_settings_for_reading(start=project) == (Settings(home="data"), None)
    (project / "pyproject.toml").write_text("[tool.llmguard\nhome = 'data'\n")  # not TOML
    settings, warning = config.load_settings_for_reading(start=project)
    assert settings == Settings()
    assert warning is not None and "cannot read" in warning and str(project / "pyproject.toml") in warning


# ---- C: `llmguard lint` on a path that does not exist ---------------------------------------------


def _lint(args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMGUARD_")}
    env["LLMGUARD_HOME"] = str(cwd / ".llmguard")
    return subprocess.run(
        [sys.executable, "-m", "llmguard.cli", "lint", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_lint_of_a_missing_path_prints_only_the_error(project):
    result = _lint(["nope.py"], project)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"llmguard lint: nope.py: no such file or directory (looked for {project / 'nope.py'}); "
        "give an existing file or folder, e.g. `llmguard lint .`"
    ]
    costs = _lint(["nope.py", "--costs"], project)
    assert (costs.returncode, costs.stdout) == (2, "")


def test_lint_of_a_missing_and_a_clean_path_does_not_claim_all_passed(project):
    (project / "ok.py").write_text("x = 1\n")
    result = _lint(["ok.py", "nope.py"], project)
    assert result.returncode == 2
    assert "All checks passed" not in result.stdout + result.stderr
    assert "nope.py: no such file or directory" in result.stderr
    assert "No findings in 1 file checked; 1 path was not found (see above)." in result.stdout


# ---- D: Python 3.11 is what the package needs ----------------------------------------------------


def test_the_package_declares_python_3_11():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["requires-python"] == ">=3.11"
    assert data["tool"]["ruff"]["target-version"] == "py311"
    assert config.tomllib is tomllib  # read directly: no silent "no tomllib, no settings" path


def test_llmguard_report_reads_the_ledger_when_pyproject_settings_are_bad(tmp_path, monkeypatch):
    import subprocess
    import sys

    from llmguard.ledger.sqlite import CallEvent, Ledger

    home = tmp_path / "home"
    ledger = Ledger(home)
    ledger.record(CallEvent(provider="openai", model="gpt-4o-mini", input_tokens=10, output_tokens=5, cost_usd=0.0123))
    ledger.close()
    (tmp_path / "pyproject.toml").write_text('[tool.llmguard]\nlimits = "fast"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "llmguard.cli", "report", "--home", str(home)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    assert "gpt-4o-mini" in done.stdout and "0.0123" in done.stdout
    assert "ignoring 1 invalid setting" in done.stderr and "limits" in done.stderr


def test_a_redis_url_given_as_home_is_refused_without_its_password(tmp_path, monkeypatch):
    """home="redis://:pw@host" made a folder named after the password (redis:/:pw@host/0/ledger.sqlite3)."""
    import llmguard
    from llmguard.config import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as refused:
        llmguard.install(home="redis://:hunter2-secret@127.0.0.1:6379/0")
    assert "hunter2-secret" not in str(refused.value)
    assert "redis://***@127.0.0.1:6379/0" in str(refused.value) and "store=" in str(refused.value)
    assert list(tmp_path.iterdir()) == []
