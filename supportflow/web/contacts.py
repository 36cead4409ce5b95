"""Erasing a contact's data on request (admin tokens only)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify
from marshmallow import Schema, fields

from supportflow.domain.access import Role
from supportflow.services.retention import ConversationsBusy

from .auth import require_role
from .deps import services
from .errors import ApiError, unavailable

bp = Blueprint("contacts", __name__, url_prefix="/v1/contacts")
# Widget contacts (no ':') and a helpdesk's ("<inbox>:<its id>"), as schemas.ID allows.
CONTACT_ID = re.compile(r"[A-Za-z0-9._:@\-]{1,128}")


class ErasureSchema(Schema):
    """What an erasure removed."""

    contact_id = fields.String(required=True)
    conversations = fields.List(fields.String(), required=True)
    contacts = fields.List(fields.String(), required=True)
    messages = fields.Integer(required=True)
    notes = fields.Integer(required=True)
    deliveries = fields.Integer(required=True)
    attributes = fields.Integer(required=True)
    threads = fields.Integer(required=True)
    handoff_announcements = fields.Integer(required=True)
    failure_records = fields.Integer(required=True)


@bp.delete("/<contact_id>")
@require_role(Role.ADMIN)
def forget(contact_id: str) -> Response:
    """Erase the contact and all its conversations; say what was erased."""
    if CONTACT_ID.fullmatch(contact_id) is None:
        raise ApiError(404, "contact_not_found", "no contact has this id")
    try:
        erasure = services().retention.forget_contact(contact_id)
    except ConversationsBusy as error:
        raise unavailable("a worker holds one of the contact's conversations; nothing was "
                          "erased: try again", code="busy") from error
    if erasure is None:
        raise ApiError(404, "contact_not_found", f"nothing is stored for contact {contact_id!r}")
    return jsonify(ErasureSchema().dump({"contact_id": contact_id, **erasure.to_dict()}))


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


CONTACT_ROUTES: dict[str, dict[str, Any]] = {
    "/v1/contacts/{contact_id}": {"delete": {
        "summary": "Erase a contact's conversations, transcripts, attributes, notes, mailboxes, "
                   "queue entries, claims, contact threads and pending deliveries",
        "description": "Widget contacts by their id; a helpdesk's as <inbox>:<its id>.",
        "security": [{"bearerAuth": []}],
        "responses": {
            "200": {"description": "What was erased",
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/Erasure"}}}},
            "404": _error("Nothing is stored for this contact"),
            "503": {**_error("A worker holds one of its conversations (busy): nothing was "
                             "erased; try again")}}}},
}
