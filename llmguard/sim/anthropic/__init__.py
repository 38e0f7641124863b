"""The simulated Anthropic Messages API (`routes.py`): request checks, answers with thinking and
tool use, explicit prompt caching and the wire shapes. Nothing here imports the `anthropic` SDK."""
