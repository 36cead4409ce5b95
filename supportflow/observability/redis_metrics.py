"""Metrics kept in Redis, so every web and worker process, on any machine, adds to one count."""

from __future__ import annotations

import atexit
import contextlib
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, cast

import redis
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from .catalog import METRICS, Kind
from .catalog import Metric as CatalogMetric

SEPARATOR = "\x1f"
# One write to a metric's hash: (key, field, amount).
Increment = tuple[str, str, float]


class RedisMetrics:
    """Counters and histograms as Redis hashes: one hash per metric, one field per series."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}:metrics:{name}"

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        self.apply(self.increments(name, amount, labels))

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation in a histogram."""
        self.apply(self.observations(name, value, labels))

    def increments(self, name: str, amount: float, labels: dict[str, str]) -> list[Increment]:
        """What adding to a counter writes: (hash key, field, amount)."""
        return [(self.key(name), _series(name, labels), amount)]

    def observations(self, name: str, value: float, labels: dict[str, str]) -> list[Increment]:
        """What one histogram observation writes: its buckets and its sum."""
        metric = METRICS[name]
        series = _series(name, labels)
        found = [(self.key(name), f"{series}{SEPARATOR}le={_le(bound)}", 1.0)
                 for bound in (*metric.buckets, math.inf) if value <= bound]
        return [*found, (self.key(name), f"{series}{SEPARATOR}sum", value)]

    def apply(self, increments: list[Increment]) -> None:
        """Write increments in one round trip (a unit of work carries them in its commit)."""
        pipe = self.redis.pipeline(transaction=False)
        for key, field, amount in increments:
            pipe.hincrbyfloat(key, field, amount)
        pipe.execute()

    def counter_values(self, name: str) -> dict[tuple[str, ...], float]:
        """A counter's value by label values (for the ops overview and tests)."""
        raw = cast(dict[bytes, bytes], self.redis.hgetall(self.key(name)))
        return {_labels_of(field.decode()): float(value) for field, value in raw.items()}

    def families(self) -> Iterator[Metric]:
        """Every declared metric as a Prometheus metric family."""
        for metric in METRICS.values():
            raw = cast(dict[bytes, bytes], self.redis.hgetall(self.key(metric.name)))
            fields = {k.decode(): float(v) for k, v in raw.items()}
            if metric.kind is Kind.COUNTER:
                family = CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
                for series, value in fields.items():
                    family.add_metric(list(_labels_of(series)), value)
                yield family
            else:
                yield _histogram(metric, fields)


class LazyMetrics:
    """The Metrics port for hot web paths: adds up in process memory and writes the sums in
    one round trip at most every `every_s` (and when the process exits), not one per call."""

    def __init__(self, metrics: RedisMetrics, every_s: float = 1.0) -> None:
        self.metrics = metrics
        self.every_s = every_s
        self._pending: dict[tuple[str, str], float] = defaultdict(float)
        self._lock = threading.Lock()
        self._written = time.monotonic()
        atexit.register(self.flush)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._add(self.metrics.increments(name, amount, labels))

    def observe(self, name: str, value: float, **labels: str) -> None:
        self._add(self.metrics.observations(name, value, labels))

    def _add(self, increments: list[Increment]) -> None:
        with self._lock:
            for key, field, amount in increments:
                self._pending[(key, field)] += amount
            due = time.monotonic() - self._written >= self.every_s
        if due:
            self.flush()

    def flush(self) -> None:
        """Write what was added since the last write."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(float)
            self._written = time.monotonic()
        # Redis away: these counts are lost, requests are not.
        with contextlib.suppress(redis.RedisError):
            self.metrics.apply([(key, field, amount) for (key, field), amount in pending.items()])


def _series(name: str, labels: dict[str, str]) -> str:
    expected = METRICS[name].labels
    if set(labels) != set(expected):
        raise ValueError(f"{name} takes labels {expected}, got {sorted(labels)}")
    return SEPARATOR.join(str(labels[label]) for label in expected)


def _labels_of(series: str) -> tuple[str, ...]:
    return tuple(series.split(SEPARATOR)) if series else ()


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


def _histogram(metric: CatalogMetric, fields: dict[str, float]) -> HistogramMetricFamily:
    grouped: dict[str, dict[str, float]] = defaultdict(dict)
    for field, value in fields.items():
        series, _, part = field.rpartition(SEPARATOR)
        grouped[series][part] = value
    family = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
    for series, parts in grouped.items():
        buckets = [(_le(bound), parts.get(f"le={_le(bound)}", 0.0))
                   for bound in (*metric.buckets, math.inf)]
        family.add_metric(list(_labels_of(series)), buckets, sum_value=parts.get("sum", 0.0))
    return family


def render(families: Any) -> bytes:
    """Prometheus text exposition of the given families."""
    from prometheus_client import CollectorRegistry, generate_latest

    class _Collector:
        def collect(self) -> Any:
            return families()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())  # type: ignore[arg-type]
    return bytes(generate_latest(registry))


def histogram_buckets(metrics: RedisMetrics, name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative bucket counts, all series summed: [(upper bound, count)]."""
    raw = cast(dict[bytes, bytes], metrics.redis.hgetall(metrics.key(name)))
    totals: dict[str, float] = defaultdict(float)
    for field, value in raw.items():
        part = field.decode().rpartition(SEPARATOR)[2]
        if part.startswith("le="):
            totals[part[3:]] += float(value)
    return [(bound, totals.get(_le(bound), 0.0)) for bound in (*METRICS[name].buckets, math.inf)]


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate a quantile from cumulative buckets (as Prometheus' histogram_quantile); None if empty."""
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank and count > below:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
