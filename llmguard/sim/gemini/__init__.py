"""The simulated Gemini Developer API (`routes.py`), its request conventions (`request.py`) and wire shapes (`wire.py`)."""
