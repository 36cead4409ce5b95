"""Browser sessions kept in Redis: the cookie holds a random id, Redis its data (id hashed).

Signing in replaces the id (no session fixation); signing out deletes the data, so a copied
cookie stops working at once. The cookie is HttpOnly, SameSite=Lax, and Secure when the service
is reached over HTTPS (SUPPORTFLOW_PUBLIC_URL).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from supportflow.adapters.redis_accounts import RedisWebSessions

from .errors import become_unavailable, is_transient

COOKIE = "sf_session"
log = logging.getLogger("supportflow.web")


class RedisSession(CallbackDict[str, Any], SessionMixin):
    """The session's data; `renew()` gives it a new id when its holder changes."""

    def __init__(self, data: dict[str, Any] | None, session_id: str | None) -> None:
        def changed(_: Any) -> None:
            self.modified = True

        super().__init__(data or {}, changed)
        self.session_id = session_id
        self.previous_id: str | None = None
        self.modified = False

    def renew(self) -> None:
        """Drop the old id (its data is deleted on save) and start a new one."""
        self.previous_id = self.previous_id or self.session_id
        self.session_id = None
        self.modified = True


class RedisSessionInterface(SessionInterface):
    """Flask's session on RedisWebSessions."""

    def __init__(self, sessions: RedisWebSessions, *, secure: bool) -> None:
        self.sessions = sessions
        self.secure = secure

    def open_session(self, app: Flask, request: Request) -> RedisSession:
        session_id = request.cookies.get(COOKIE)
        data = self.sessions.load(session_id) if session_id and len(session_id) < 100 else None
        if data is None:
            return RedisSession(None, None)
        return RedisSession(data, session_id)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        try:
            self._save(session, response)
        except Exception as error:
            if not is_transient(error):
                raise
            # The answer needs a session Redis cannot keep now: it becomes a 503.
            log.warning("session not saved: %s", error)
            become_unavailable(response)

    def _save(self, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, RedisSession)
        if session.previous_id:
            self.sessions.delete(session.previous_id)
        if not session.modified:
            return
        if not session:
            if session.session_id:
                self.sessions.delete(session.session_id)
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax",
                                   secure=self.secure)
            return
        session_id = session.session_id or self.sessions.new_id()
        self.sessions.save(session_id, dict(session))
        response.set_cookie(COOKIE, session_id, httponly=True, samesite="Lax", secure=self.secure,
                            path="/", max_age=int(self.sessions.ttl_ms / 1000))
        response.vary.add("Cookie")
