"""What may be sent and when: rate limits, budgets, retries, routing, prices and token counts."""
