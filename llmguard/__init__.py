"""llmguard: keep LLM API calls fast, bounded and cheap."""

__version__ = "0.1.0"
