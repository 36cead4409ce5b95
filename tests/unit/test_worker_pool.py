"""The worker's pool is what its command line says (the Procfile's WORKER_POOL)."""

from __future__ import annotations

from types import SimpleNamespace

import click
import pytest
from celery.bin.worker import WorkersPool, worker

from supportflow.settings import load_settings
from workers.app import create_celery


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_the_pool_named_on_the_command_line_is_the_pool_the_worker_runs(pool: str) -> None:
    app = create_celery(load_settings(environ={}))
    context = click.Context(worker, obj=SimpleNamespace(app=app))
    chosen = WorkersPool().convert(pool, None, context)
    assert chosen.__module__ == f"celery.concurrency.{'thread' if pool == 'threads' else pool}"
