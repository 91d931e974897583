"""Subscriptions: broker topics feeding functions (and rules publishing their results back)."""
