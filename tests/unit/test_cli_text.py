"""The CLI's text inputs: refused like the API's (control characters, lone surrogates), and
names checked as whole values (a trailing newline is not a name)."""

from __future__ import annotations

import pytest
import redis

from supportflow.adapters.inbox_store import InboxError, InboxStore
from supportflow.adapters.tokens import TokenError, TokenStore
from supportflow.cli import main
from supportflow.domain.access import Role
from supportflow.domain.accounts import AccountError, check_new_account
from supportflow.domain.inbox import Inbox, InboxKind


@pytest.mark.parametrize("argv", [
    ["tokens", "create", "--name", "bob\x1b[31m", "--role", "agent"],
    ["tokens", "revoke", "bob\udcff"],  # undecodable argv bytes arrive as lone surrogates
    ["inboxes", "create", "acme", "--callback-url", "https://x.example/\x00"],
    ["vault", "set", "acme", "--organization", "org\x7f"],
])
def test_bad_text_on_the_command_line_is_a_usage_error(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "U+" in capsys.readouterr().err


def test_a_trailing_newline_is_not_part_of_a_name() -> None:
    with pytest.raises(TokenError):
        TokenStore(redis.Redis(), prefix="sf").create("bob\n", Role.AGENT)  # no Redis reached
    with pytest.raises(AccountError):
        check_new_account("dana\n", "dana@example.test", "a long enough password")
    with pytest.raises(InboxError):
        InboxStore(redis.Redis(), prefix="sf", vault=None).create(  # type: ignore[arg-type]
            Inbox(name="acme\n", kind=InboxKind.WEBHOOK))
