"""Adapters: Redis, assistant APIs, Celery: the outside world behind the ports."""
