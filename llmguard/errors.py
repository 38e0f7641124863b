"""Errors llmguard itself raises. Refusals of calls reach user code as the SDK's own error types
(status 429 etc. with a message starting `llmguard:`), so existing `except openai.RateLimitError`
handlers keep working."""

from llmguard.config import ConfigError
from llmguard.context import StepTimeout

REFUSAL_PREFIX = "llmguard:"

__all__ = ["ConfigError", "StepTimeout", "REFUSAL_PREFIX"]
