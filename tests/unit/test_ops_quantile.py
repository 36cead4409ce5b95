"""Quantiles estimated from cumulative histogram buckets, as Prometheus does."""

from __future__ import annotations

import math

import pytest

from supportflow.observability.redis_metrics import quantile


def test_empty_histogram_has_no_quantile() -> None:
    assert quantile([(1.0, 0.0), (math.inf, 0.0)], 0.5) is None
    assert quantile([], 0.5) is None


def test_quantile_interpolates_inside_the_bucket_that_holds_the_rank() -> None:
    buckets = [(0.5, 0.0), (1.0, 10.0), (2.0, 20.0), (math.inf, 20.0)]
    assert quantile(buckets, 0.5) == pytest.approx(1.0)
    assert quantile(buckets, 0.25) == pytest.approx(0.75)
    assert quantile(buckets, 0.95) == pytest.approx(1.9)


def test_ranks_in_the_infinite_bucket_answer_the_highest_finite_bound() -> None:
    assert quantile([(1.0, 1.0), (math.inf, 10.0)], 0.95) == 1.0
