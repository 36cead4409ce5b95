"""The OpenAI clients against httpx.MockTransport: status mapping, retries hints, idempotency."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from supportflow.adapters.openai_assistants import OpenAIAssistantsClient
from supportflow.adapters.openai_http import clean_reply, make_openai_http, retry_after_s
from supportflow.adapters.openai_responses import OpenAIResponsesClient
from supportflow.domain.flow import Backend, BackendKind
from supportflow.services.ports import AssistantError, ErrorKind, RunRequest, RunState
from tests.contract import validate_request

Handler = Callable[[httpx.Request], httpx.Response]
RESPONSES = RunRequest(Backend(BackendKind.RESPONSES, model="gpt-x", instructions="Be kind."),
                       metadata={"sf_conversation": "c1", "sf_turn": "t1"})
ASSISTANTS = RunRequest(Backend(BackendKind.ASSISTANTS, assistant_id="asst_1"))


class Api:
    """A scripted API: routes (method, path) to handlers and records the requests."""

    def __init__(self, routes: dict[tuple[str, str], Handler]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return httpx.Response(404, json=_error("not found"))
        return handler(request)

    def bodies(self, method: str, path: str) -> list[Any]:
        return [json.loads(r.content) for r in self.requests
                if r.method == method and r.url.path == path]


def _error(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": None}}


def _http(api: Api | Handler, key: str | None = "sk-test", **extra: str) -> httpx.Client:
    return make_openai_http(base_url="https://api.test/v1", api_key=key,
                            organization=extra.get("org"), project=extra.get("project"),
                            connect_timeout_s=1, read_timeout_s=2,
                            transport=httpx.MockTransport(api))


def _reply(status: int, **kwargs: Any) -> Handler:
    return lambda request: httpx.Response(status, **kwargs)


def _responses(api: Api | Handler) -> OpenAIResponsesClient:
    return OpenAIResponsesClient(http=_http(api))


def _response_body(status: str, output: list[dict[str, Any]] | None = None,
                   **extra: Any) -> dict[str, Any]:
    return {"id": "resp_1", "object": "response", "status": status, "output": output or [],
            **extra}


def _text_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
def test_transient_statuses_are_retryable(status: int) -> None:
    client = _responses(_reply(status, json=_error("busy")))
    with pytest.raises(AssistantError) as caught:
        client.open_thread(metadata={})
    assert caught.value.retryable and caught.value.status == status


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_are_final_and_keep_the_api_message(status: int) -> None:
    client = _responses(_reply(status, json=_error("Invalid 'metadata'.")))
    with pytest.raises(AssistantError) as caught:
        client.open_thread(metadata={})
    assert not caught.value.retryable and caught.value.message == "Invalid 'metadata'."


def test_retry_after_ms_wins_over_retry_after() -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "9"}
    client = _responses(_reply(429, json=_error("slow down"), headers=headers))
    with pytest.raises(AssistantError) as caught:
        client.open_thread(metadata={})
    assert caught.value.retry_after_s == 1.5


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_s(httpx.Headers({"retry-after": "7"})) == 7.0
    later = datetime.now(UTC) + timedelta(seconds=30)
    parsed = retry_after_s(httpx.Headers({"retry-after": format_datetime(later, usegmt=True)}))
    assert parsed is not None and 25 <= parsed <= 31
    assert retry_after_s(httpx.Headers({"retry-after": "soon"})) is None
    assert retry_after_s(httpx.Headers()) is None


@pytest.mark.parametrize(("error", "kind"), [(httpx.ReadTimeout("slow"), ErrorKind.TIMEOUT),
                                             (httpx.ConnectError("refused"), ErrorKind.NETWORK)])
def test_timeouts_and_transport_errors_are_retryable(error: Exception, kind: ErrorKind) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(AssistantError) as caught:
        _responses(fail).check_run("conv_1", "resp_1")
    assert caught.value.retryable
    assert caught.value.kind is kind and caught.value.label == kind.value


def test_an_error_without_the_apis_json_names_its_status_once() -> None:
    client = _responses(_reply(502, text="Bad gateway"))
    with pytest.raises(AssistantError) as caught:
        client.open_thread(metadata={})
    assert caught.value.kind is ErrorKind.STATUS and caught.value.label == "502"
    assert caught.value.describe() == "Bad gateway (HTTP 502)"


def test_citations_are_removed_and_blanks_stripped() -> None:
    assert clean_reply("  Free returns【12:3†source】 within 30 days.【4:0†faq.md】 ") == (
        "Free returns within 30 days.")


def test_a_completed_response_replies_with_this_responses_text_only() -> None:
    body = _response_body("completed", [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        _text_message("Hello【1:0†source】"), _text_message(" there"),
    ])
    status = _responses(_reply(200, json=body)).check_run("conv_1", "resp_1")
    assert status.state is RunState.COMPLETED and status.reply == "Hello there"


def test_an_empty_reply_is_a_failure() -> None:
    body = _response_body("completed", [_text_message("【1:0†source】  ")])
    status = _responses(_reply(200, json=body)).check_run("conv_1", "resp_1")
    assert status.state is RunState.FAILED and status.reason == "empty reply"


@pytest.mark.parametrize(("body", "reason"), [
    (_response_body("failed", error={"code": "server_error", "message": "boom"}), "boom"),
    (_response_body("incomplete", incomplete_details={"reason": "max_output_tokens"}),
     "max_output_tokens"),
    (_response_body("cancelled"), "cancelled"),
])
def test_failed_responses_say_why(body: dict[str, Any], reason: str) -> None:
    status = _responses(_reply(200, json=body)).check_run("conv_1", "resp_1")
    assert status.state is RunState.FAILED and status.reason == reason


def test_pending_responses_pass_on_the_poll_hint() -> None:
    handler = _reply(200, json=_response_body("in_progress"),
                     headers={"openai-poll-after-ms": "750"})
    status = _responses(handler).check_run("conv_1", "resp_1")
    assert status.state is RunState.PENDING and status.poll_after_s == 0.75


def test_function_calls_require_action() -> None:
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1",
            "name": "handoff_to_human", "arguments": "{}", "status": "completed"}
    status = _responses(_reply(200, json=_response_body("completed", [call]))).check_run(
        "conv_1", "resp_1")
    assert status.state is RunState.REQUIRES_ACTION
    assert status.tool_calls[0].id == "call_1" and status.tool_calls[0].name == "handoff_to_human"


def _items(*texts: tuple[str, str]) -> Handler:
    data = [{"type": "message", "id": f"msg_{i}", "status": "completed", "role": role,
             "content": [{"type": "input_text" if role == "user" else "output_text",
                          "text": text, "annotations": [], "logprobs": []}]}
            for i, (role, text) in enumerate(texts)]
    return _reply(200, json={"object": "list", "data": data, "has_more": False,
                             "first_id": "", "last_id": ""})


ITEMS = ("GET", "/v1/conversations/conv_1/items")
CREATE = ("POST", "/v1/responses")


def test_responses_start_run_carries_the_turns_messages_in_one_request() -> None:
    api = Api({CREATE: _reply(200, json=_response_body("queued"))})
    assert _responses(api).start_run("conv_1", RESPONSES, turn_key="t1",
                                     texts=["a", "b"]) == "resp_1"
    (body,) = api.bodies(*CREATE)
    assert [item["content"][0]["text"] for item in body["input"]] == ["a", "b"]
    assert [r.method for r in api.requests] == ["POST"]  # nothing listed first
    validate_request("POST", "/v1/responses", body)


def test_responses_recovering_start_adopts_the_response_its_messages_went_with() -> None:
    # Newest first: the lost response's reply, then the turn's messages "a", "b".
    api = Api({ITEMS: _items(("assistant", "hi"), ("user", "b"), ("user", "a")),
               CREATE: _reply(200, json=_response_body("queued"))})
    client = _responses(api)
    run_id = client.start_run("conv_1", RESPONSES, turn_key="t1", texts=["a", "b"],
                              recovering=True)
    assert run_id == "items:msg_2" and api.bodies(*CREATE) == []
    (listing,) = [r for r in api.requests if r.method == "GET"]
    assert listing.url.params["order"] == "desc"
    # The adopted response is followed through the items after its first message.
    api.routes[ITEMS] = _items(("user", "b"), ("assistant", "We ship in 2 days."))
    status = client.check_run("conv_1", run_id)
    assert status.state is RunState.COMPLETED and status.reply == "We ship in 2 days."
    assert api.requests[-1].url.params["after"] == "msg_2"
    api.routes[ITEMS] = _items(("user", "b"))
    assert client.check_run("conv_1", run_id).state is RunState.PENDING


def test_responses_recovering_start_posts_messages_the_conversation_does_not_have() -> None:
    api = Api({ITEMS: _items(("assistant", "hi"), ("user", "a")),
               CREATE: _reply(200, json=_response_body("queued"))})
    run_id = _responses(api).start_run("conv_1", RESPONSES, turn_key="t1", texts=["a", "b"],
                                       recovering=True)
    assert run_id == "resp_1"
    (body,) = api.bodies(*CREATE)
    assert [item["content"][0]["text"] for item in body["input"]] == ["a", "b"]


def test_responses_start_run_sends_a_background_response_on_the_conversation() -> None:
    api = Api({("POST", "/v1/responses"): _reply(200, json=_response_body("queued"))})
    assert _responses(api).start_run("conv_1", RESPONSES, turn_key="t1") == "resp_1"
    (body,) = api.bodies("POST", "/v1/responses")
    assert body["conversation"] == "conv_1" and body["background"] and body["store"]
    assert body["metadata"] == {"sf_conversation": "c1", "sf_turn": "t1"}
    assert body["model"] == "gpt-x" and body["instructions"] == "Be kind."
    validate_request("POST", "/v1/responses", body)


def test_responses_tool_outputs_start_a_new_response_with_function_call_outputs() -> None:
    api = Api({("POST", "/v1/responses"): _reply(200, json=_response_body("queued"))})
    new_id = _responses(api).submit_tool_outputs("conv_1", "resp_0", [("call_1", "ok")],
                                                 RESPONSES)
    (body,) = api.bodies("POST", "/v1/responses")
    assert new_id == "resp_1" and "previous_response_id" not in body
    assert body["input"] == [{"type": "function_call_output", "call_id": "call_1",
                              "output": "ok"}]
    validate_request("POST", "/v1/responses", body)


def test_headers_authorization_and_openai_beta_only_on_assistants() -> None:
    api = Api({("POST", "/v1/conversations"): _reply(200, json={"id": "conv_1"}),
               ("POST", "/v1/threads"): _reply(200, json={"id": "thread_1"})})
    http = make_openai_http(base_url="https://api.test/v1", api_key="sk-1", organization="org_1",
                            project="proj_1", connect_timeout_s=1, read_timeout_s=2,
                            transport=httpx.MockTransport(api))
    OpenAIResponsesClient(http=http).open_thread(metadata={})
    OpenAIAssistantsClient(http=http).open_thread(metadata={})
    responses, assistants = api.requests
    for request in api.requests:
        assert request.headers["authorization"] == "Bearer sk-1"
        assert request.headers["openai-organization"] == "org_1"
        assert request.headers["openai-project"] == "proj_1"
    assert "openai-beta" not in responses.headers
    assert assistants.headers["openai-beta"] == "assistants=v2"
    assert http.timeout.connect == 1 and http.timeout.read == 2


def test_a_run_check_sends_the_headers_every_other_request_sends() -> None:
    run = {"id": "run_1", "object": "thread.run", "status": "in_progress"}
    api = Api({("POST", "/v1/threads"): _reply(200, json={"id": "thread_1"}),
               ("GET", "/v1/threads/thread_1/runs/run_1"): _reply(200, json=run)})
    client = OpenAIAssistantsClient(http=_http(api, org="org_1"))
    client.open_thread(metadata={})
    client.check_run("thread_1", "run_1")
    posted, checked = api.requests
    body_headers = {"content-type", "content-length"}
    assert {k: v for k, v in posted.headers.items() if k not in body_headers} == dict(
        checked.headers.items())
    assert str(checked.url) == "https://api.test/v1/threads/thread_1/runs/run_1"
    assert checked.extensions["timeout"] == {"connect": 1, "read": 2, "write": 2, "pool": 2}


def test_a_run_check_goes_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, seen = socket.create_server(("127.0.0.1", 0)), []
    body = json.dumps(_response_body("in_progress")).encode()

    def answer_one() -> None:
        connection, _ = proxy.accept()
        with connection:
            seen.append(connection.recv(65536).split(b"\r\n", 1)[0])
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                               b"content-length: %d\r\n\r\n%s" % (len(body), body))

    answering = threading.Thread(target=answer_one, daemon=True)
    answering.start()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    http = make_openai_http(base_url="http://api.test/v1", api_key="sk-1", organization=None,
                            project=None, connect_timeout_s=1, read_timeout_s=2)
    with proxy, http:
        status = OpenAIResponsesClient(http=http).check_run("conv_1", "resp_1")
    answering.join(timeout=5)
    assert status.state is RunState.PENDING
    assert seen == [b"GET http://api.test/v1/responses/resp_1 HTTP/1.1"]


def test_no_authorization_header_without_a_key() -> None:
    api = Api({("POST", "/v1/threads"): _reply(200, json={"id": "thread_1"})})
    OpenAIAssistantsClient(http=_http(api, key=None)).open_thread(metadata={})
    assert "authorization" not in api.requests[0].headers


def _assistants(api: Api) -> OpenAIAssistantsClient:
    return OpenAIAssistantsClient(http=_http(api))


def _list(*entries: dict[str, Any]) -> Handler:
    return _reply(200, json={"object": "list", "data": list(entries), "has_more": False,
                             "first_id": "", "last_id": ""})


def test_assistants_post_messages_once_per_turn_looking_only_when_recovering() -> None:
    path = "/v1/threads/thread_1/messages"
    api = Api({("GET", path): _list({"id": "msg_1", "metadata": {"sf_turn": "t1"}}),
               ("POST", path): _reply(200, json={"id": "msg_2"})})
    _assistants(api).post_messages("thread_1", ["a", "b"], turn_key="t1", recovering=True)
    assert api.bodies("POST", path) == []
    _assistants(api).post_messages("thread_1", ["a", "b"], turn_key="t2", recovering=True)
    _assistants(api).post_messages("thread_1", ["c"], turn_key="t3")
    first, second = api.bodies("POST", path)
    assert first == {"role": "user", "content": "a\nb", "metadata": {"sf_turn": "t2"}}
    assert second["content"] == "c"
    assert [r.method for r in api.requests] == ["GET", "GET", "POST", "POST"]
    validate_request("POST", path, first)


def test_assistants_start_run_reuses_the_run_of_the_same_turn_when_recovering() -> None:
    path = "/v1/threads/thread_1/runs"
    api = Api({("GET", path): _list({"id": "run_1", "metadata": {"sf_turn": "t1"}}),
               ("POST", path): _reply(200, json={"id": "run_2"})})
    client = _assistants(api)
    assert client.start_run("thread_1", ASSISTANTS, turn_key="t1", recovering=True) == "run_1"
    assert client.start_run("thread_1", ASSISTANTS, turn_key="t2", recovering=True) == "run_2"
    assert client.start_run("thread_1", ASSISTANTS, turn_key="t3") == "run_2"
    assert [r.method for r in api.requests] == ["GET", "GET", "POST", "POST"]
    body = api.bodies("POST", path)[0]
    assert body == {"assistant_id": "asst_1", "metadata": {"sf_turn": "t2"}}
    validate_request("POST", path, body)


def _run(status: str, **extra: Any) -> Handler:
    return _reply(200, json={"id": "run_1", "object": "thread.run", "status": status, **extra})


def _assistant_message(text: str) -> dict[str, Any]:
    return {"id": "msg_9", "role": "assistant", "run_id": "run_1",
            "content": [{"type": "text", "text": {"value": text, "annotations": []}}]}


def test_assistants_completed_run_reads_only_its_own_messages() -> None:
    api = Api({("GET", "/v1/threads/thread_1/runs/run_1"): _run("completed"),
               ("GET", "/v1/threads/thread_1/messages"): _list(
                   _assistant_message("Returns are free【3:1†source】."))})
    status = _assistants(api).check_run("thread_1", "run_1")
    assert status.state is RunState.COMPLETED and status.reply == "Returns are free."
    listing = api.requests[-1].url.params
    assert listing["run_id"] == "run_1" and listing["order"] == "asc"


def test_assistants_requires_action_lists_the_tool_calls() -> None:
    action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "save_note", "arguments": "{\"note\": \"x\"}"}}]}}
    api = Api({("GET", "/v1/threads/thread_1/runs/run_1"): _run("requires_action",
                                                                 required_action=action)})
    status = _assistants(api).check_run("thread_1", "run_1")
    assert status.state is RunState.REQUIRES_ACTION
    assert status.tool_calls[0].name == "save_note" and status.tool_calls[0].id == "call_1"


@pytest.mark.parametrize(("extra", "reason"), [
    ({"status": "failed", "last_error": {"code": "server_error", "message": "boom"}}, "boom"),
    ({"status": "incomplete", "incomplete_details": {"reason": "max_prompt_tokens"}},
     "max_prompt_tokens"),
    ({"status": "expired"}, "expired"),
])
def test_assistants_failed_runs_say_why(extra: dict[str, Any], reason: str) -> None:
    api = Api({("GET", "/v1/threads/thread_1/runs/run_1"): _reply(200, json={"id": "run_1",
                                                                              **extra})})
    status = _assistants(api).check_run("thread_1", "run_1")
    assert status.state is RunState.FAILED and status.reason == reason


def test_assistants_empty_reply_is_a_failure() -> None:
    api = Api({("GET", "/v1/threads/thread_1/runs/run_1"): _run("completed"),
               ("GET", "/v1/threads/thread_1/messages"): _list(_assistant_message("  "))})
    status = _assistants(api).check_run("thread_1", "run_1")
    assert status.state is RunState.FAILED and status.reason == "empty reply"


def test_assistants_tool_outputs_go_to_the_run() -> None:
    path = "/v1/threads/thread_1/runs/run_1/submit_tool_outputs"
    api = Api({("POST", path): _run("queued")})
    assert _assistants(api).submit_tool_outputs(
        "thread_1", "run_1", [("call_1", "done")], ASSISTANTS) == "run_1"
    (body,) = api.bodies("POST", path)
    assert body == {"tool_outputs": [{"tool_call_id": "call_1", "output": "done"}]}
    validate_request("POST", path, body)


def test_a_backend_without_assistant_id_or_model_is_a_final_error() -> None:
    api = Api({})
    bare = RunRequest(Backend(BackendKind.RESPONSES))
    with pytest.raises(AssistantError) as caught:
        _responses(api).start_run("conv_1", bare, turn_key="t1")
    assert not caught.value.retryable
    with pytest.raises(AssistantError):
        _assistants(api).start_run("thread_1", bare, turn_key="t1")
    assert api.requests == []
