"""Both assistant clients against the sandbox over HTTP; every exchange must match the contract."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from supportflow import defaults
from supportflow.adapters.openai_assistants import OpenAIAssistantsClient
from supportflow.adapters.openai_files import OpenAIKnowledgeFiles
from supportflow.adapters.openai_http import make_openai_http
from supportflow.adapters.openai_responses import OpenAIResponsesClient
from supportflow.domain.flow import DEFAULT_HANDOFF_MARKER, Backend, BackendKind, PromptRef
from supportflow.domain.tools import TOOLS
from supportflow.sandbox.server import SandboxHandle, start_in_thread
from supportflow.sandbox.store import AFTER_TOOLS_REPLY
from supportflow.services.ports import AssistantError, RunRequest, RunState, RunStatus
from tests.contract import RecordingTransport, validate_request, validate_response

KNOWLEDGE = defaults.KNOWLEDGE
RESPONSES = RunRequest(
    Backend(BackendKind.RESPONSES, model="sandbox-model", instructions="Be helpful."),
    metadata={"sf_conversation": "c1"},
    tools=tuple(TOOLS.values()),
)
PROMPTED = RunRequest(Backend(BackendKind.RESPONSES, prompt=PromptRef("pmpt_1", "2", {"a": "b"})))
ASSISTANTS = RunRequest(Backend(BackendKind.ASSISTANTS, assistant_id="asst_1"),
                        tools=tuple(TOOLS.values()))
# What a turn uses (listings are made on the recovery path only).
USED_OPERATIONS = {
    "responses": {"createConversation", "createResponse", "getResponse"},
    "assistants": {"createThread", "listMessages", "createMessage", "createRun", "getRun",
                   "submitToolOuputsToRun"},
}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    handle = start_in_thread("127.0.0.1", _free_port(), KNOWLEDGE, 0.05)
    yield handle
    handle.stop()


@pytest.fixture()
def control(sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url.removesuffix("/v1"), timeout=5) as client:
        client.delete("/_sandbox/settings").raise_for_status()
        yield client
        client.delete("/_sandbox/settings").raise_for_status()


@pytest.fixture()
def recorder() -> RecordingTransport:
    return RecordingTransport()


def _client(kind: str, sandbox: SandboxHandle, recorder: RecordingTransport) -> Any:
    http = make_openai_http(base_url=sandbox.url, api_key="sk-local", organization=None,
                            project=None, connect_timeout_s=2, read_timeout_s=5,
                            transport=recorder)
    return OpenAIResponsesClient(http=http) if kind == "responses" else OpenAIAssistantsClient(
        http=http)


def _request(kind: str) -> RunRequest:
    return RESPONSES if kind == "responses" else ASSISTANTS


def _wait(client: Any, thread_id: str, run_id: str) -> RunStatus:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status: RunStatus = client.check_run(thread_id, run_id)
        if status.state is not RunState.PENDING:
            return status
        time.sleep(0.02)
    raise AssertionError("the run never finished")


def _start(client: Any, thread_id: str, texts: list[str], request: RunRequest, turn: str,
           recovering: bool = False) -> str:
    """What the post_message and start_run steps do (the messages go with the run on
    responses)."""
    if client.messages_with_run:
        return str(client.start_run(thread_id, request, turn_key=turn, texts=texts,
                                    recovering=recovering))
    client.post_messages(thread_id, texts, turn_key=turn, recovering=recovering)
    return str(client.start_run(thread_id, request, turn_key=turn, recovering=recovering))


def _turn(client: Any, kind: str, texts: list[str], thread_id: str | None = None,
          turn: str = "t1") -> tuple[str, RunStatus]:
    thread_id = thread_id or client.open_thread(metadata={"sf_conversation": "c1"})
    run_id = _start(client, thread_id, texts, _request(kind), turn)
    return thread_id, _wait(client, thread_id, run_id)


def _assert_contract(recorder: RecordingTransport) -> set[str]:
    operations = set()
    for exchange in recorder.exchanges:
        op = validate_request(exchange.method, exchange.path, exchange.request_body,
                              exchange.request_headers.get("content-type"))
        validate_response(exchange.method, exchange.path, exchange.status, exchange.response_body)
        operations.add(op.operation_id)
    return operations


@pytest.mark.parametrize("kind", ["responses", "assistants"])
def test_a_full_turn_answers_from_the_knowledge_and_speaks_the_contract(
    kind: str, sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    client = _client(kind, sandbox, recorder)
    thread_id, status = _turn(client, kind, ["How long does shipping take?"])
    assert status.state is RunState.COMPLETED
    assert status.reply is not None and "business days" in status.reply
    _, second = _turn(client, kind, ["Do you take PayPal?"], thread_id, turn="t2")
    assert second.reply is not None and "PayPal" in second.reply
    assert "business days" not in second.reply
    assert _assert_contract(recorder) >= USED_OPERATIONS[kind] - {"submitToolOuputsToRun"}


@pytest.mark.parametrize("kind", ["responses", "assistants"])
def test_asking_for_a_person_or_an_unknown_topic_gives_the_handoff_text(
    kind: str, sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    client = _client(kind, sandbox, recorder)
    _, status = _turn(client, kind, ["Shipping? Actually let me talk to a human please"])
    assert status.reply == DEFAULT_HANDOFF_MARKER
    _, status = _turn(client, kind, ["Do you sell unicorns?"])
    assert status.reply == DEFAULT_HANDOFF_MARKER
    _assert_contract(recorder)


@pytest.mark.parametrize("kind", ["responses", "assistants"])
def test_several_messages_make_one_turn_and_one_run(
    kind: str, sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    client = _client(kind, sandbox, recorder)
    before = control.get("/_sandbox/stats").json()
    texts = ["Hi", "my parcel is defective", "can I get a refund?"]
    thread_id = client.open_thread(metadata={})
    first = _start(client, thread_id, texts, _request(kind), "t1")
    # The same step again, as after a crash before its commit: found, not done twice.
    run_id = _start(client, thread_id, texts, _request(kind), "t1", recovering=True)
    status = _wait(client, thread_id, run_id)
    assert _wait(client, thread_id, first).reply == status.reply
    assert status.reply is not None
    parts = status.reply.split("\n\n")
    assert parts[0].startswith("Hello!")
    assert any("warranty" in part for part in parts) and any("Refunds" in p for p in parts)
    stats = control.get("/_sandbox/stats").json()
    assert stats["runs_by_thread"][thread_id] == 1
    # Once each: three items (responses), or one message of the three texts (assistants).
    posted = len(texts) if kind == "responses" else 1
    assert stats["user_messages_total"] - before["user_messages_total"] == posted
    _assert_contract(recorder)


def test_assistants_start_run_is_idempotent_per_turn(
    sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    client = _client("assistants", sandbox, recorder)
    thread_id = client.open_thread(metadata={})
    client.post_messages(thread_id, ["hello"], turn_key="t1")
    first = client.start_run(thread_id, ASSISTANTS, turn_key="t1")
    assert client.start_run(thread_id, ASSISTANTS, turn_key="t1", recovering=True) == first
    _assert_contract(recorder)


def test_a_prompt_backend_runs_and_the_poll_hint_is_passed_on(
    sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    control.put("/_sandbox/settings", json={"never_finish": True, "poll_after_ms": 1500})
    client = _client("responses", sandbox, recorder)
    thread_id = client.open_thread(metadata={})
    run_id = client.start_run(thread_id, PROMPTED, turn_key="t1", texts=["warranty?"])
    status = client.check_run(thread_id, run_id)
    assert status.state is RunState.PENDING and status.poll_after_s == 1.5
    _assert_contract(recorder)


@pytest.mark.parametrize("kind", ["responses", "assistants"])
def test_tool_calls_are_answered_and_the_run_finishes(
    kind: str, sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    control.put("/_sandbox/settings", json={"tool_calls": True}).raise_for_status()
    client = _client(kind, sandbox, recorder)
    thread_id = client.open_thread(metadata={})
    run_id = _start(client, thread_id, ["I need a real person"], _request(kind), "t1")
    status = _wait(client, thread_id, run_id)
    assert status.state is RunState.REQUIRES_ACTION
    assert [call.name for call in status.tool_calls] == ["handoff_to_human"]
    outputs = [(call.id, "queued for an agent") for call in status.tool_calls]
    next_id = client.submit_tool_outputs(thread_id, run_id, outputs, _request(kind))
    final = _wait(client, thread_id, next_id)
    assert final.reply == AFTER_TOOLS_REPLY
    assert _assert_contract(recorder) >= USED_OPERATIONS[kind]


def test_unknown_ids_and_messages_during_an_active_run_get_api_errors(
    sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    control.put("/_sandbox/settings", json={"never_finish": True}).raise_for_status()
    client = _client("assistants", sandbox, recorder)
    with pytest.raises(AssistantError) as missing:
        client.check_run("thread_nope", "run_nope")
    assert missing.value.status == 404 and not missing.value.retryable
    thread_id, _ = client.open_thread(metadata={}), None
    client.post_messages(thread_id, ["hello"], turn_key="t1")
    client.start_run(thread_id, ASSISTANTS, turn_key="t1")
    with pytest.raises(AssistantError) as busy:
        client.post_messages(thread_id, ["again"], turn_key="t2")
    assert busy.value.status == 400 and "while a run" in busy.value.message
    _assert_contract(recorder)


def test_the_sandbox_rejects_requests_missing_required_fields(sandbox: SandboxHandle) -> None:
    with httpx.Client(base_url=sandbox.url, timeout=5) as http:
        thread = http.post("/threads", json={}).json()
        for path, body in [(f"/threads/{thread['id']}/runs", {}),
                           (f"/threads/{thread['id']}/messages", {"role": "user"}),
                           ("/responses", {"model": "m"}), ("/conversations/x/items", {})]:
            response = http.post(path, json=body)
            assert response.status_code in {400, 404}, path
            validate_response("POST", path, response.status_code, response.json())


@pytest.mark.parametrize("bad", [{"latency_s": -1}, {"never_finish": "yes"},
                                 {"poll_after_ms": 1.5}, {"colour": "red"},
                                 {"latency_range_s": [3, 1]}, {"latency_range_s": 2}])
def test_control_endpoints_validate_their_input(control: httpx.Client, bad: dict[str, Any]) -> None:
    response = control.put("/_sandbox/settings", json=bad)
    assert response.status_code == 400 and "error" in response.json()


def test_stats_count_threads_messages_and_runs(
    sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    before = control.get("/_sandbox/stats").json()
    client = _client("responses", sandbox, recorder)
    thread_id, _ = _turn(client, "responses", ["refund", "hours"])
    after = control.get("/_sandbox/stats").json()
    assert after["conversations_total"] == before["conversations_total"] + 1
    assert after["user_messages_total"] == before["user_messages_total"] + 2
    assert after["runs_total"] == before["runs_total"] + 1
    assert after["runs_by_thread"][thread_id] == 1 and after["checks_by_thread"][thread_id] >= 1


def test_the_contract_check_rejects_malformed_objects() -> None:
    from tests.contract import ContractError

    with pytest.raises(ContractError):
        validate_response("GET", "/v1/threads/thread_1/runs/run_1", 200,
                          {"id": "run_1", "object": "thread.run", "status": "done"})
    with pytest.raises(ContractError):
        validate_response("GET", "/v1/responses/resp_1", 200, {"id": "resp_1"})
    with pytest.raises(ContractError):
        validate_request("POST", "/v1/responses", {"background": "yes"})


GIFT_ARTICLE = ("# Gift wrapping\nTags: gifts\n\nYes: we gift-wrap any order for $3.50. Choose "
                "Gift wrapping at checkout.\n")


def test_article_files_in_a_vector_store_answer_through_file_search(
    sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    http = make_openai_http(base_url=sandbox.url, api_key="sk-local", organization=None,
                            project=None, connect_timeout_s=2, read_timeout_s=5,
                            transport=recorder)
    store = http.post("vector_stores", json={"name": "knowledge"}).json()["id"]
    files = OpenAIKnowledgeFiles(http=http)
    file_id = files.upload("sf-article-kb_1-r1.md", GIFT_ARTICLE)
    files.attach(store, file_id, {"sf_article": "kb_1"})
    client = OpenAIResponsesClient(http=http)
    request = RunRequest(Backend(BackendKind.RESPONSES, model="sandbox-model",
                                 vector_store_id=store))
    thread_id = client.open_thread(metadata={})

    def ask(text: str, turn: str) -> RunStatus:
        return _wait(client, thread_id, _start(client, thread_id, [text], request, turn))

    assert ask("Do you offer gift wrapping?", "t1").reply == (
        "Yes: we gift-wrap any order for $3.50. Choose Gift wrapping at checkout.")
    shipping = ask("How long does shipping take?", "t2").reply
    assert shipping is not None and "business days" in shipping and "gift" not in shipping
    files.detach(store, file_id)
    files.delete(file_id)
    assert ask("Do you offer gift wrapping?", "t3").reply == DEFAULT_HANDOFF_MARKER
    files.detach(store, file_id)  # already gone: nothing to do, no error
    files.delete(file_id)
    assert _assert_contract(recorder) >= {"createVectorStore", "createFile",
                                          "createVectorStoreFile", "deleteVectorStoreFile",
                                          "deleteFile", "createResponse", "getResponse"}
    bodies = [e.request_body for e in recorder.exchanges if e.path.endswith("/responses")]
    assert {"type": "file_search", "vector_store_ids": [store]} in bodies[0]["tools"]


def test_a_response_naming_an_unknown_vector_store_is_refused(
    sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    client = _client("responses", sandbox, recorder)
    thread_id = client.open_thread(metadata={})
    client.post_messages(thread_id, ["hello"], turn_key="t1")
    request = RunRequest(Backend(BackendKind.RESPONSES, model="m", vector_store_id="vs_nope"))
    with pytest.raises(AssistantError) as refused:
        client.start_run(thread_id, request, turn_key="t1")
    assert refused.value.status == 404 and not refused.value.retryable
    _assert_contract(recorder)


def test_run_records_give_each_runs_conversation_turn_moments_checks_and_calls(
    sandbox: SandboxHandle, control: httpx.Client, recorder: RecordingTransport
) -> None:
    control.put("/_sandbox/settings", json={"latency_range_s": [0.05, 0.15]}).raise_for_status()
    since = time.time()
    client = _client("responses", sandbox, recorder)
    thread_id = client.open_thread(metadata={"sf_conversation": "c-rec"})
    request = RunRequest(RESPONSES.backend, metadata={"sf_conversation": "c-rec",
                                                      "sf_turn": "c-rec:1"})
    run_id = client.start_run(thread_id, request, turn_key="c-rec:1", texts=["hours?"])
    _wait(client, thread_id, run_id)
    seen_done = time.time()
    records = control.get("/_sandbox/runs", params={"since": since}).json()
    rows = [dict(zip(records["fields"], row, strict=True)) for row in records["runs"]]
    (row,) = [r for r in rows if r["conversation"] == "c-rec"]
    assert row["turn"] == "c-rec:1" and row["response"] == run_id
    # Finished no sooner than its latency, and no later than we saw it finished (a busy
    # machine may run the sandbox's timer late: no upper bound in seconds).
    assert row["created"] + 0.05 <= row["completed"] <= seen_done
    assert row["checks"] and row["checks"] == sorted(row["checks"])
    assert records["calls"]["c-rec"] == 2 + len(row["checks"])  # open, start, the checks
    later = control.get("/_sandbox/runs", params={"since": time.time()}).json()
    assert later["runs"] == []
