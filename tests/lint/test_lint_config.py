"""`[tool.llmguard.lint]`: found by walking up, validated with clear errors (exit code 2)."""

from __future__ import annotations

import pytest

from llmguard.lint import LintConfigError, load_config
from llmguard.lint.config import config_from_table


def test_defaults_without_pyproject(tmp_path):
    config = load_config(tmp_path)
    assert config.root == tmp_path.resolve()
    assert config.max_timeout_s == 120 and config.max_prompt_tokens == 2000
    assert "LG201" in config.enabled_codes()


def test_nearest_pyproject_with_a_lint_table_wins(project):
    root = project(
        {
            "pyproject.toml": "[tool.llmguard.lint]\nmax-timeout-s = 30\nignore = ['LG105']\n",
            "pkg/pyproject.toml": "[project]\nname = 'inner'\n",  # no lint table: keep walking up
            "pkg/sub/x.py": "",
        }
    )
    config = load_config(root / "pkg" / "sub")
    assert config.root == root.resolve()
    assert config.max_timeout_s == 30
    assert "LG105" not in config.enabled_codes()


def test_all_keys(project):
    root = project(
        {
            "pyproject.toml": """
        [tool.llmguard.lint]
        select = ["LG1", "LG201"]
        ignore = ["LG105"]
        exclude = ["generated/"]
        per-file-ignores = { "tests/**" = ["LG3"] }
        max-prompt-tokens = 500
        max-output-tokens = 1000
        max-timeout-s = 45.5
        max-sdk-retries = 3
        call-targets = { "myapp.llm.ask" = { max-tokens-args = ["limit"], provider = "anthropic" } }
        prompt-files = ["prompts/**/*.txt"]
        prompt-model = "gpt-4o"
    """
        }
    )
    config = load_config(root)
    assert config.enabled_codes() == {"LG101", "LG102", "LG103", "LG104", "LG106", "LG201"}
    assert config.per_file_ignores == (("tests/**", ("LG3",)),)
    assert config.call_targets[0].max_tokens_args == ("limit",)
    assert config.call_targets[0].provider == "anthropic"
    assert config.max_timeout_s == 45.5


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"max-timeout": 5}, "unknown key 'max-timeout' (did you mean 'max-timeout-s'?)"),
        ({"max-timeout-s": "fast"}, "max-timeout-s must be a number >= 1, got 'fast'"),
        ({"max-sdk-retries": -1}, "max-sdk-retries must be a whole number >= 0"),
        ({"max-output-tokens": 10.5}, "max-output-tokens must be a whole number"),
        ({"select": ["LG2O1"]}, "unknown rule code 'LG2O1' (did you mean LG201?)"),
        ({"select": "LG201"}, None),
        ({"ignore": [1]}, "ignore must be a list of strings"),
        ({"per-file-ignores": ["x"]}, "per-file-ignores must be a table"),
        ({"call-targets": ["not a name"]}, "call-targets must be dotted Python names"),
        ({"respect-gitignore": "yes"}, "respect-gitignore must be true or false"),
    ],
)
def test_validation_messages(table, message):
    if message is None:
        config_from_table(table)
        return
    with pytest.raises(LintConfigError) as excinfo:
        config_from_table(table, source="pyproject.toml")
    assert message in str(excinfo.value)
    assert "pyproject.toml [tool.llmguard.lint]" in str(excinfo.value)


def test_bad_config_exits_2_with_a_clear_message(cli, project):
    root = project({"pyproject.toml": "[tool.llmguard.lint]\nmax-prompt-tokens = 0\n", "a.py": "x = 1\n"})
    result = cli(["lint", "a.py"], cwd=root)
    assert result.code == 2
    assert "config error" in result.err and "max-prompt-tokens must be a whole number >= 1, got 0" in result.err
    broken = project({"pyproject.toml": "[tool.llmguard.lint\n"})
    result = cli(["lint", "a.py"], cwd=broken)
    assert result.code == 2 and "invalid TOML" in result.err


def test_explicit_config_file(cli, project):
    root = project({"lint.toml": "select = ['LG301']\n", "a.py": "import openai\nopenai.OpenAI()\n"})
    assert cli(["lint", "a.py", "--config", "lint.toml"], cwd=root).code == 0
    assert cli(["lint", "a.py", "--config", "missing.toml"], cwd=root).code == 2


def test_thresholds_change_results(cli, project):
    source = "import openai\nopenai.OpenAI(timeout=100, max_retries=4)\n"
    root = project(
        {"pyproject.toml": "[tool.llmguard.lint]\nmax-timeout-s = 60\nmax-sdk-retries = 3\n", "a.py": source}
    )
    codes = {f["code"] for f in cli(["lint", "a.py", "--format", "json"], cwd=root).json()}
    assert codes == {"LG203", "LG104"}


def test_per_file_ignores_and_excludes(cli, project):
    bad = "import openai\nopenai.OpenAI()\n"
    root = project(
        {
            "pyproject.toml": """
            [tool.llmguard.lint]
            exclude = ["generated/"]
            per-file-ignores = { "tests/**" = ["LG201"] }
        """,
            "generated/client.py": bad,
            "tests/test_x.py": bad,
            "src/app.py": bad,
        }
    )
    files = {f["file"] for f in cli(["lint", ".", "--format", "json"], cwd=root).json()}
    assert files == {"src/app.py"}
    explicit = cli(["lint", "generated/client.py", "--format", "json"], cwd=root)
    assert explicit.json() == []  # excludes apply to paths given explicitly too (pre-commit passes them)
