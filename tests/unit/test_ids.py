"""Message ids: each source has its own namespace, whatever id a client sends."""

from __future__ import annotations

import itertools

import pytest

from supportflow.domain.ids import WELCOME_ID, Source, message_id, service_id

HOSTILE = ["1:reply", "sf:1:reply", "welcome", "sf:welcome", "agent-x", "a:sam:x", "c:m-1",
           "cw:5", "w:5", "m-0", ":", "sf:m-00"]


def owner(transcript_id: str) -> str:
    """The namespace an id lives in: the text before its first ':'."""
    return transcript_id.partition(":")[0]


@pytest.mark.parametrize("client_id", HOSTILE)
def test_an_id_stays_in_its_sources_namespace_whatever_the_client_sends(client_id: str) -> None:
    clients = [source for source in Source if source is not Source.SERVICE]
    made = {source: message_id(source, client_id, agent="sam") for source in clients}
    for source, transcript_id in made.items():
        assert owner(transcript_id) == source.value
    assert len(set(made.values())) == len(made)
    assert service_id(1, "reply") not in made.values() and WELCOME_ID not in made.values()


def test_the_same_client_id_gives_the_same_id_and_none_a_fresh_service_id() -> None:
    assert message_id(Source.CUSTOMER, "m-1") == message_id(Source.CUSTOMER, "m-1") == "c:m-1"
    fresh = {message_id(Source.CUSTOMER, None) for _ in range(3)}
    assert len(fresh) == 3 and all(owner(i) == "sf" for i in fresh)


def test_agents_ids_never_collide_with_each_others() -> None:
    names, client_ids = ["sam", "sam:x", "sam%3Ax", "x"], ["x", "x:y", "y", "3Ax:y"]
    made = [message_id(Source.AGENT, c, agent=n) for n, c in itertools.product(names, client_ids)]
    assert len(set(made)) == len(made)
