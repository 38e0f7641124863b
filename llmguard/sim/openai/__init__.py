"""The simulated OpenAI APIs: chat completions, legacy completions, embeddings and models under
OpenAI's and Azure OpenAI's paths (`routes.py`), and the Responses API (`responses.py`), with their
wire shapes and OpenAI's prefix prompt cache. Nothing here imports the `openai` SDK."""
