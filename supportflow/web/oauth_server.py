"""The OAuth2 authorization server on Authlib: its models over OAuthStore, the grants, the
revocation endpoint and the bearer-token validator for the actions.

- authorization code (exact redirect-URI match, single use, expires within minutes), with
  PKCE S256 when the client sends a code_challenge;
- refresh tokens that rotate: the old one is kept only to notice it coming back, which
  revokes the whole family (so does an authorization code used twice);
- client_secret_post and client_secret_basic at the token and revocation endpoints.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidRequestError,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge

from supportflow.adapters.oauth_store import CodeGrant, OAuthClient, OAuthStore, TokenRecord
from supportflow.adapters.redis_accounts import digest
from supportflow.domain.accounts import Account, Scope
from supportflow.services.accounts import AccountDesk
from supportflow.settings import Settings

CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]


class Client(ClientMixin):  # type: ignore[misc]
    """A registered client (the GPT) as Authlib sees it."""

    def __init__(self, record: OAuthClient) -> None:
        self.record = record
        self.client_id = record.client_id

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        # With several registered, the request must name one (RFC 6749 3.1.2.3).
        uris = self.record.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        if not scope:
            return " ".join(self.record.scopes)
        asked = scope.split()
        return scope if set(asked) <= set(self.record.scopes) else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(digest(client_secret), self.record.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in {"authorization_code", "refresh_token"}


class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, code: str, grant: CodeGrant) -> None:
        self.code = code
        self.grant = grant
        self.code_challenge = grant.code_challenge
        self.code_challenge_method = grant.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.grant.redirect_uri

    def get_scope(self) -> str:
        return self.grant.scope


class Token(TokenMixin):  # type: ignore[misc]
    def __init__(self, value: str, record: TokenRecord, clock: Callable[[], float]) -> None:
        self.value = value
        self.record = record
        self.clock = clock

    def check_client(self, client: Client) -> bool:
        return bool(client.get_client_id() == self.record.client_id)

    def get_scope(self) -> str:
        return self.record.scope

    def get_expires_in(self) -> int:
        return int(self.record.expires_at - self.record.issued_at)

    def is_expired(self) -> bool:
        return self.clock() >= self.record.expires_at

    def is_revoked(self) -> bool:
        return self.record.rotated

    def get_user(self) -> str:
        return self.record.account


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE when the client asks for it, and then only S256 (plain gives away the verifier)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Use code_challenge_method=S256.")
        super().validate_code_challenge(grant, redirect_uri)


class Server(AuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask server with SupportFlow's store, accounts and clock."""

    def __init__(self, store: OAuthStore, accounts: AccountDesk, settings: Settings,
                 clock: Callable[[], float]) -> None:
        super().__init__()
        self.store, self.accounts, self.settings, self.clock = store, accounts, settings, clock
        self.scopes_supported = [scope.value for scope in Scope]

    def query_client(self, client_id: str) -> Client | None:
        record = self.store.client(client_id)
        return Client(record) if record else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        refreshed = getattr(request, "refresh_token", None)
        grant_id = refreshed.record.grant_id if refreshed else "g_" + secrets.token_hex(12)
        request.sf_grant_id = grant_id
        now, account = self.clock(), request.user.name
        base = {"grant_id": grant_id, "client_id": request.client.get_client_id(),
                "account": account, "scope": token.get("scope", ""), "issued_at": now}
        records = [(token["access_token"], TokenRecord(
            kind="access", expires_at=now + float(token["expires_in"]), **base))]
        if "refresh_token" in token:
            records.append((token["refresh_token"], TokenRecord(
                kind="refresh", expires_at=now + self.settings.oauth_refresh_token_ttl_s,
                **base)))
        self.store.save_tokens(records)

    def user(self, name: str) -> Account | None:
        return self.accounts.get(name)


class CodeFlow(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH

    def save_authorization_code(self, code: str, request: Any) -> None:
        server: Server = self.server
        data = request.payload.data
        server.store.save_code(code, CodeGrant(
            client_id=request.client.get_client_id(), account=request.user.name,
            redirect_uri=request.payload.redirect_uri, scope=request.scope,
            expires_at=server.clock() + server.settings.oauth_code_ttl_s,
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method")))

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        server: Server = self.server
        grant, earlier_family = server.store.take_code(code)
        if earlier_family:  # the code came twice: what it made earlier is revoked
            server.store.revoke_grant(earlier_family)
        if grant is None or grant.client_id != client.get_client_id():
            return None
        if server.clock() >= grant.expires_at:
            return None
        return Code(code, grant)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        # The code was used up when it was read; remember what it made, in case it comes again.
        self.server.store.remember_code_use(authorization_code.code, self.request.sf_grant_id)

    def authenticate_user(self, authorization_code: Code) -> Account | None:
        server: Server = self.server
        return server.user(authorization_code.grant.account)


class RefreshFlow(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        server: Server = self.server
        record = server.store.token("refresh", refresh_token)
        if record is None:
            return None
        if record.rotated:  # used again after rotation: someone else holds the family
            server.store.revoke_grant(record.grant_id)
            return None
        token = Token(refresh_token, record, server.clock)
        return None if token.is_expired() else token

    def authenticate_user(self, refresh_token: Token) -> Account | None:
        server: Server = self.server
        return server.user(refresh_token.record.account)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        self.server.store.mark_rotated(refresh_token.value)


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: a refresh token takes its whole family with it; an access token only itself."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        server: Server = self.server
        kinds = ["refresh", "access"] if token_type_hint == "refresh_token" else ["access",
                                                                                   "refresh"]
        for kind in kinds:
            record = server.store.token(kind, token_string)
            if record is not None:
                return Token(token_string, record, server.clock)
        return None

    def revoke_token(self, token: Token, request: Any) -> None:
        server: Server = self.server
        if token.record.kind == "refresh":
            server.store.revoke_grant(token.record.grant_id)
        else:
            server.store.revoke_token("access", token.value)


class AccessTokens(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, store: OAuthStore, clock: Callable[[], float]) -> None:
        super().__init__(realm="supportflow")
        self.store, self.clock = store, clock

    def authenticate_token(self, token_string: str) -> Token | None:
        record = self.store.token("access", token_string)
        return Token(token_string, record, self.clock) if record else None


def build_server(store: OAuthStore, accounts: AccountDesk, settings: Settings,
                 clock: Callable[[], float]) -> tuple[Server, ResourceProtector]:
    """The authorization server and the actions' resource protector."""
    server = Server(store, accounts, settings, clock)
    generator = BearerTokenGenerator(
        access_token_generator=lambda **_: "sfat_" + secrets.token_urlsafe(32),
        refresh_token_generator=lambda **_: "sfrt_" + secrets.token_urlsafe(32),
        expires_generator=lambda client, grant_type: int(settings.oauth_access_token_ttl_s))

    def lower_case_bearer(**kwargs: Any) -> dict[str, Any]:
        token: dict[str, Any] = generator(**kwargs)
        token["token_type"] = "bearer"  # as ChatGPT's documentation shows it (RFC 6749: any case)
        return token

    server.register_token_generator("default", lower_case_bearer)
    server.register_grant(CodeFlow, [S256Only(required=False)])
    server.register_grant(RefreshFlow)
    server.register_endpoint(Revocation)
    protector = ResourceProtector()
    protector.register_token_validator(AccessTokens(store, clock))
    return server, protector
