"""The CLI's text inputs go through the API's own text field (supportflow/web/fields.py): the
same refusal of lone surrogates (undecodable bytes in argv) and control characters."""

from __future__ import annotations

import argparse

from marshmallow import ValidationError

from supportflow.web.fields import Text

_FIELD = Text()


def text(value: str) -> str:
    """An argparse `type`: the value as valid text, or a usage error saying what is wrong."""
    try:
        return str(_FIELD.deserialize(value))
    except ValidationError as error:
        problems = error.messages if isinstance(error.messages, list) else [str(error.messages)]
        raise argparse.ArgumentTypeError("; ".join(str(p) for p in problems)) from error
