"""Field types shared by every schema of the API and by the CLI's text inputs."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, validate

# Control characters (Unicode category Cc) except tab and newline, and lone surrogates (which
# JSON's \\udc80 escapes can carry but UTF-8 cannot): the text a person writes never holds them.
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# The same rule for the OpenAPI document (ECMA-262 syntax), so generated clients know it.
TEXT_PATTERN = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F\uD800-\uDFFF]*$"


def text_problem(text: str) -> str | None:
    """Why `text` is not valid text (a lone surrogate, a control character), or None."""
    found = FORBIDDEN.search(text)
    if found is None:
        return None
    code = ord(found.group())
    what = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    return f"contains {what} (U+{code:04X}) at position {found.start()}"


def clean_text(text: str) -> str:
    """`text` with CR and CRLF line ends as LF; ValueError when it is not valid text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


class Pattern(validate.Regexp):
    """A regular-expression check on the whole value (a bare `$` would let a trailing newline
    through); the OpenAPI document shows the pattern."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class Text(fields.String):
    """A string of valid Unicode text: newlines and tabs, no other control characters, no lone
    surrogates (CR and CRLF become LF). `max_length` and `not_blank` bound it."""

    def __init__(self, *, max_length: int | None = None, not_blank: bool = False,
                 **kwargs: Any) -> None:
        checks = list(kwargs.pop("validate", None) or [])
        if max_length is not None or not_blank:
            checks.append(validate.Length(min=1 if not_blank else None, max=max_length))
        metadata = {"pattern": TEXT_PATTERN, **kwargs.pop("metadata", {})}
        super().__init__(validate=checks, metadata=metadata, **kwargs)
        self.not_blank = not_blank

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            text = clean_text(text)
        except ValueError as error:
            raise ValidationError(str(error)) from error
        if self.not_blank and text and not text.strip():
            raise ValidationError("must not be blank")
        return text
