"""Shared fixtures: a simulated provider on 127.0.0.1, a private LLMGUARD_HOME, installed guards."""

from __future__ import annotations

import warnings

import pytest

import llmguard
from llmguard.ledger.sqlite import read_events

FAKE_OPENAI_KEY = "sk-llmguard-test-7f3a9c1e5b"
FAKE_ANTHROPIC_KEY = "sk-ant-llmguard-test-4d2b8e6a0c"


@pytest.fixture(scope="session")
def sim():
    from llmguard.sim import SimProvider

    with SimProvider() as provider:
        yield provider


@pytest.fixture
def fresh_sim(sim):
    """The shared simulator with zeroed stats and no limits or faults."""
    sim.configure(rpm=None, tpm=None, faults=None, latency_ms=0, per_token_ms=0, limits=None)
    sim.reset_stats()
    return sim


@pytest.fixture
def home(tmp_path, monkeypatch):
    path = tmp_path / "llmguard-home"
    monkeypatch.setenv("LLMGUARD_HOME", str(path))
    return path


@pytest.fixture
def guard(home):
    g = llmguard.install(home=str(home))
    yield g
    llmguard.uninstall()


@pytest.fixture(autouse=True)
def _always_uninstall():
    yield
    if llmguard.current() is not None:
        llmguard.uninstall()
    # session tags are process-wide: one a test leaves set would tag every later test's calls
    leftover = llmguard.session_tags()
    if leftover:
        llmguard.set_session_tags(**dict.fromkeys(leftover))


def rows(guard_or_home):
    path = guard_or_home.ledger.path if hasattr(guard_or_home, "ledger") else guard_or_home / "ledger.sqlite3"
    return read_events(path)


def openai_client(sim, asynchronous: bool = False, **kwargs):
    import openai

    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=sim.base_url + "/v1", api_key=FAKE_OPENAI_KEY, **kwargs)


def anthropic_client(sim, asynchronous: bool = False, **kwargs):
    import anthropic

    cls = anthropic.AsyncAnthropic if asynchronous else anthropic.Anthropic
    return cls(base_url=sim.base_url, api_key=FAKE_ANTHROPIC_KEY, **kwargs)


warnings.filterwarnings("ignore", message="llmguard: no price is known", category=RuntimeWarning)


def sdk_shell(monkeypatch, sim):
    """IPython's test shell, reset, with both SDKs pointed at `sim` (and no notebook session)."""
    from IPython.testing.globalipapp import get_ipython

    for name in ("LLMGUARD_LLM_BASE_URL", "LLMGUARD_LLM_MODEL", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", sim.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", sim.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    shell = get_ipython()
    shell.reset()
    return shell
