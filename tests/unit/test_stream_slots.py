"""A stream's slot is given back once, however many ways its response closes."""

from __future__ import annotations

import pytest

from supportflow.web.errors import ApiError
from supportflow.web.stream_slots import StreamSlots


def test_a_slot_given_back_twice_frees_it_once() -> None:
    slots = StreamSlots(total=2, per_client=2)
    give_back = slots.take("a")
    slots.take("b")
    give_back()
    give_back()  # the body's end and the response's close both call it
    assert slots.open_count() == 1
    slots.take("c")
    with pytest.raises(ApiError) as refused:
        slots.take("d")
    assert (refused.value.status, refused.value.code) == (503, "streams_full")
