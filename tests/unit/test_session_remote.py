"""Remote models through the session: configured remotes, NAME:MODEL, the reply use case
(history rows, continue, wrap up, cancel, errors) against the loopback OpenAI server."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.catalog import load_catalog
from ponder.config import load_settings
from ponder.errors import ExitCode, ModelNotFoundError, PonderError, UsageError
from ponder.events import Notice, ReasoningDelta
from ponder.paths import default_paths
from ponder.remote_settings import RemoteConfig
from ponder.session import ChatSettings, ModelOptions, ReplyRequest, Session
from ponder.session.remotes import match_catalog
from support.fake_openai import FakeOpenAI, Reply
from support.openai_streams import ANSWER, BY_NAME, REASONING, RECORDINGS, Recording, to_sse

KEY = "sk-remote-secret-0123456789"
MODEL = "deepseek-ai/DeepSeek-R1"


def _session(environ: dict[str, str] | None = None) -> Session:
    paths = default_paths()
    session = Session(
        settings=load_settings(paths),
        paths=paths,
        catalog=load_catalog(),
        history_path=paths.history_db,
    )
    if environ is not None:
        session.remotes._environ = environ
    return session


@pytest.fixture()
def fake() -> Iterator[FakeOpenAI]:
    body = to_sse(BY_NAME["vllm-reasoning"].chunks)
    with FakeOpenAI(kind="vllm", models=[MODEL], api_key=KEY, default=Reply(body)) as server:
        yield server


@pytest.fixture()
def session(ponder_home: Path, fake: FakeOpenAI) -> Iterator[Session]:
    s = _session({"LAB_KEY": KEY})
    s.remotes.add("lab", url=fake.url, api_key_env="LAB_KEY", timeout=10)
    yield s
    s.close()


# -- the configuration ---------------------------------------------------------------


def test_add_keeps_the_users_config_and_never_stores_the_key(
    ponder_home: Path, fake: FakeOpenAI
) -> None:
    config = default_paths().config_file
    config.parent.mkdir(parents=True)
    config.write_text("# my settings\nreasoning = 'hide'  # keep this\n", encoding="utf-8")
    s = _session({"LAB_KEY": KEY})
    s.remotes.add("lab", url=fake.url, api_key_env="LAB_KEY", model=MODEL)
    text = config.read_text(encoding="utf-8")
    assert text.startswith("# my settings\nreasoning = 'hide'  # keep this\n")
    assert "[remotes.lab]" in text and KEY not in text
    # A fresh load sees it; removing it puts the file back as it was.
    again = load_settings(default_paths())
    assert again.reasoning == "hide" and again.remotes["lab"].model == MODEL
    s.remotes.remove("lab")
    assert "remotes" not in config.read_text(encoding="utf-8")
    assert config.read_text(encoding="utf-8").startswith("# my settings\n")


@pytest.mark.parametrize(
    ("name", "fields", "words"),
    [
        ("r1", {"url": "http://127.0.0.1:1/v1"}, "model family"),
        ("qwen3", {"url": "http://127.0.0.1:1/v1"}, "model family"),
        ("hf", {"url": "http://127.0.0.1:1/v1"}, "model family"),
        ("Lab!", {"url": "http://127.0.0.1:1/v1"}, "cannot name a remote"),
        ("lab", {"url": "ftp://box/v1"}, "http:// or https://"),
        ("lab", {"url": "http://user:pw@box/v1"}, "must not carry a user"),
        ("lab", {"url": "http://box/v1", "headers": {"Authorization": "x"}}, "api_key_env"),
        ("lab", {"url": "http://box/v1", "headers": {"X-A": "a\r\nb"}}, "valid HTTP header"),
        ("lab", {"url": "http://box/v1", "api_key_env": "MY KEY"}, "api_key_env"),
        ("lab", {"url": "http://box/v1", "timeout": 0}, "timeout"),
    ],
)
def test_add_refuses_bad_names_and_values_and_writes_nothing(
    ponder_home: Path, name: str, fields: dict[str, object], words: str
) -> None:
    s = _session()
    with pytest.raises(UsageError, match=words) as caught:
        s.remotes.add(name, **fields)
    assert caught.value.exit_code == ExitCode.USAGE
    assert not default_paths().config_file.exists()


def test_plain_http_warns_only_off_loopback() -> None:
    def off(url: str) -> bool:
        return RemoteConfig(url=url).plain_http_off_loopback

    assert off("http://gpu-box:8000/v1") and off("http://10.0.0.5/v1")
    assert not off("https://gpu-box/v1")
    assert not off("http://127.0.0.1:8000/v1") and not off("http://localhost/v1")
    assert not off("http://[::1]:8000/v1")


def test_an_unknown_remote_name_says_which_there_are(session: Session) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no remote named 'labs'.*lab") as caught:
        session.open_model("labs:x")
    assert caught.value.exit_code == ExitCode.MODEL_NOT_FOUND


# -- replies -------------------------------------------------------------------------


@pytest.mark.parametrize("recording", RECORDINGS, ids=[r.name for r in RECORDINGS])
def test_every_dialect_gives_the_same_reply_and_history_rows(
    ponder_home: Path, recording: Recording
) -> None:
    body = to_sse(recording.chunks)
    model_id = MODEL if recording.start_in_reasoning else "plain-chat-model"
    with FakeOpenAI(kind=recording.kind, models=[model_id], default=Reply(body)) as server:
        s = _session()
        s.remotes.add("lab", url=server.url)
        model = s.open_model("lab:")
        reply = model.reply(ReplyRequest(prompt="What is 17*23?"))
        finished = reply.drain()
        assert (reply.reasoning, reply.answer) == recording.expected
        assert finished.finish_reason == "stop" and finished.usage.completion_tokens == 15
        chat = s.require_history().get_chat(reply.chat_id or 0)
        saved = chat.messages[-1]
        assert chat.summary.model == saved.model == f"lab:{model_id}"
        assert (saved.reasoning, saved.content, saved.status) == (*recording.expected, "complete")
        s.close()


def test_a_remote_chat_is_saved_continued_and_never_holds_the_key(
    session: Session, fake: FakeOpenAI
) -> None:
    model = session.open_model(f"lab:{MODEL}")
    assert model.name == f"lab:{MODEL}" and "vllm" in model.placement
    assert model.placement.startswith(f"{model.short_placement} at http://127.0.0.1:")
    first = model.reply(ReplyRequest(prompt="What is 17*23?"))
    first.drain()
    second = model.reply(ReplyRequest(prompt="And 17*24?", chat_id=first.chat_id))
    second.drain()
    sent = fake.completions()[-1].body
    # R1's policy, as locally: no system turn, the earlier reply without its thinking.
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"] == ANSWER and REASONING not in json.dumps(sent)
    assert sent["temperature"] == 0.6 and sent["top_p"] == 0.95
    assert sent["model"] == MODEL and sent["stream_options"] == {"include_usage": True}
    chat = session.require_history().get_chat(first.chat_id or 0)
    assert [m.role for m in chat.messages] == ["user", "assistant", "user", "assistant"]
    session.close()
    db = default_paths().history_db
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert KEY not in dump and f"lab:{MODEL}" in dump


def test_the_server_is_probed_once_and_remembered(session: Session, fake: FakeOpenAI) -> None:
    session.open_model("lab:").reply(ReplyRequest(prompt="hi", save=False)).drain()
    probes = len([r for r in fake.requests if r.method == "GET"])
    again = _session({"LAB_KEY": KEY})
    again.open_model("lab:").reply(ReplyRequest(prompt="hi", save=False)).drain()
    again.close()
    assert len([r for r in fake.requests if r.method == "GET"]) == probes  # no new probe


def test_a_model_the_memory_does_not_list_is_probed_again(
    session: Session, fake: FakeOpenAI
) -> None:
    session.open_model("lab:").close()
    fake.models.append("Qwen/QwQ-32B")  # loaded on the server since
    model = session.open_model("lab:Qwen/QwQ-32B")
    assert model.name == "lab:Qwen/QwQ-32B"
    # Prompted and sampled as the catalog's QwQ, not as the R1 the first probe listed.
    assert getattr(model, "catalog_id", None) == "qwq-32b"
    assert model.defaults.top_k == 40


def test_an_error_mid_stream_keeps_the_partial_reply(session: Session, fake: FakeOpenAI) -> None:
    chunks = BY_NAME["vllm-reasoning"].chunks
    error = {"error": {"message": "CUDA out of memory", "type": "InternalServerError"}}
    fake.queue(Reply(to_sse([*chunks[:6], error])))
    reply = session.open_model("lab:").reply(ReplyRequest(prompt="What is 17*23?"))
    with pytest.raises(PonderError, match="CUDA out of memory") as caught:
        reply.drain()
    assert caught.value.exit_code == ExitCode.ERROR
    saved = session.require_history().get_chat(reply.chat_id or 0).messages[-1]
    assert saved.status == "interrupted" and saved.reasoning.startswith("Okay, 17*23")


def test_cancel_closes_the_stream_and_keeps_what_came(session: Session, fake: FakeOpenAI) -> None:
    fake.queue(Reply(to_sse(BY_NAME["vllm-reasoning"].chunks), pieces=(200,), pause_s=0.2))
    cancel = threading.Event()
    reply = session.open_model("lab:").reply(ReplyRequest(prompt="q"), cancel=cancel)
    for event in reply:
        if isinstance(event, ReasoningDelta):
            cancel.set()
    assert reply.finished is not None and reply.finished.finish_reason == "interrupted"
    assert fake.client_gone.wait(5)  # the server saw the client go: it stops generating
    saved = session.require_history().get_chat(reply.chat_id or 0).messages[-1]
    assert saved.status == "interrupted" and saved.reasoning and not saved.content


def test_wrap_up_asks_again_with_the_thinking_closed(session: Session, fake: FakeOpenAI) -> None:
    thinking = BY_NAME["vllm-reasoning"].chunks
    fake.queue(
        Reply(to_sse(thinking), pieces=(150,), pause_s=0.2),
        Reply(to_sse(BY_NAME["no-tags"].chunks)),
    )
    wrap_up = threading.Event()
    reply = session.open_model("lab:").reply(ReplyRequest(prompt="q"), wrap_up=wrap_up)
    seen: list[str] = []
    for event in reply:
        if isinstance(event, ReasoningDelta):
            seen.append(event.text)
            wrap_up.set()
    assert reply.answer == ANSWER and reply.live.wrapped_up
    first, second = fake.completions()[-2:]
    prefill = second.body["messages"][-1]
    assert prefill["role"] == "assistant" and prefill["content"].endswith("\n</think>\n\n")
    assert prefill["content"].startswith("<think>\n" + "".join(seen).rstrip())
    assert second.body["continue_final_message"] is True  # vLLM's way to go on from it
    assert second.body["add_generation_prompt"] is False
    assert first.body["messages"] == second.body["messages"][:-1]
    assert reply.finished is not None and reply.finished.finish_reason == "stop"


def test_keep_reasoning_sends_the_earlier_thinking(session: Session, fake: FakeOpenAI) -> None:
    model = session.open_model("lab:")
    first = model.reply(ReplyRequest(prompt="q1", settings=ChatSettings(keep_reasoning=True)))
    first.drain()
    model.reply(ReplyRequest(prompt="q2", chat_id=first.chat_id)).drain()
    sent = fake.completions()[-1].body["messages"]
    assert REASONING in sent[1]["content"] and "<think>" in sent[1]["content"]


def test_a_wrong_key_names_the_variable_and_records_nothing(
    ponder_home: Path, fake: FakeOpenAI
) -> None:
    s = _session({"LAB_KEY": "sk-wrong"})
    s.remotes.add("lab", url=fake.url, api_key_env="LAB_KEY")
    with pytest.raises(PonderError, match="LAB_KEY") as caught:
        s.open_model("lab:").reply(ReplyRequest(prompt="q"))
    assert "sk-wrong" not in str(caught.value) and KEY not in str(caught.value)
    assert s.require_history().list_chats() == []
    s.close()


def test_a_template_override_is_refused_for_a_remote(session: Session) -> None:
    with pytest.raises(UsageError, match="its own chat template"):
        session.open_model("lab:", ModelOptions(chat_format="chatml"))


def test_opening_emits_the_plan_and_one_http_warning_only_off_loopback(
    session: Session,
) -> None:
    events: list[object] = []
    session.open_model("lab:", on_event=events.append)
    assert not [e for e in events if isinstance(e, Notice)]  # 127.0.0.1: no warning


# -- which catalog entry a served model is ---------------------------------------------


@pytest.mark.parametrize(
    ("served", "catalog_id"),
    [
        ("deepseek-r1:7b", "r1-distill-qwen-7b"),  # Ollama's tag
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "r1-distill-qwen-7b"),  # vLLM, SGLang
        ("bartowski/DeepSeek-R1-Distill-Qwen-7B-GGUF", "r1-distill-qwen-7b"),
        ("DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf", "r1-distill-qwen-7b"),  # llama-server
        ("Qwen/QwQ-32B", "qwq-32b"),
        ("qwq:latest", "qwq-32b"),
        ("deepseek-r1:671b", "deepseek-r1"),  # Ollama's tag of the full R1
        ("deepseek-ai/DeepSeek-R1-0528", "deepseek-r1-0528"),  # not the 0528 distill
        ("some-org/unrelated-model", None),
        ("", None),
    ],
)
def test_match_catalog(served: str, catalog_id: str | None) -> None:
    entry = match_catalog(load_catalog(), served)
    assert (entry.id if entry else None) == catalog_id


# -- the 671B models, served only -----------------------------------------------------


def test_the_671b_models_are_served_only_entries_with_a_serving_guide() -> None:
    catalog = load_catalog()
    r1 = catalog.served_entry("r1:671b")
    assert r1 is not None and r1.upstream == "deepseek-ai/DeepSeek-R1"
    assert catalog.served_entry("R1-0528:671B") is not None
    fp8 = r1.serving[0]
    assert fp8.precision.startswith("FP8") and 650 < fp8.weights_gb < 720
    assert "one 8×H200 node" in fp8.hardware and "two 8×H100 nodes" in fp8.hardware
    assert any(350 < o.weights_gb < 450 and "GGUF" in o.precision for o in r1.serving)
    # Not something to download: the catalog's downloadable models do not know the name.
    with pytest.raises(ModelNotFoundError):
        catalog.resolve("r1:671b")
    # A server's model id is matched to it, so a remote R1 is prompted as R1.
    assert match_catalog(catalog, "deepseek-ai/DeepSeek-R1") is r1
    assert match_catalog(catalog, "deepseek-ai/DeepSeek-R1-0528") is catalog.served_entry(
        "r1-0528:671b"
    )


def test_running_a_671b_model_without_a_remote_says_how_to_serve_it(ponder_home: Path) -> None:
    s = _session()
    with pytest.raises(ModelNotFoundError, match="runs on a server, not here") as caught:
        s.open_model("r1:671b")
    assert caught.value.exit_code == ExitCode.MODEL_NOT_FOUND
    assert "ponder remote add" in (caught.value.hint or "")
    assert "deepseek-ai/DeepSeek-R1" in (caught.value.hint or "")
    from ponder.session import machine

    report = machine.fit_report(s, "r1:671b")
    assert "689 GB" in report and "8×H200" in report and "ponder remote add" in report


def test_running_a_671b_model_goes_to_the_remote_that_serves_it(
    session: Session, fake: FakeOpenAI
) -> None:
    session.remotes.status("lab")  # the probe remembers it serves deepseek-ai/DeepSeek-R1
    model = session.open_model("r1:671b")
    assert model.name == f"lab:{MODEL}" and model.takes_system_prompt is False
    reply = model.reply(ReplyRequest(prompt="What is 17*23?", system="Be brief."))
    reply.drain()
    sent = fake.completions()[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user"] and sent[0]["content"].startswith("Be brief.")
    from ponder.session import machine

    assert f"served by your remote lab:{MODEL}" in machine.fit_report(session, "r1:671b")


def test_a_user_catalog_cannot_give_a_served_model_a_taken_name(ponder_home: Path) -> None:
    user = default_paths().user_catalog
    user.parent.mkdir(parents=True)
    user.write_text(
        '[[served]]\nid = "mine"\nname = "Mine"\naliases = ["r1:7b"]\n'
        'upstream = "me/mine"\n[[served.serving]]\nprecision = "BF16"\nweights_gb = 10.0\n'
        'hardware = ["one GPU"]\nengines = ["vLLM"]\n',
        encoding="utf-8",
    )
    with pytest.raises(PonderError, match="'r1:7b' is already used"):
        load_catalog(user)


def test_remote_add_warns_about_plain_http_to_another_machine(
    ponder_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ponder.cli import main
    from ponder.session.remotes import Remotes, RemoteStatus

    def unreachable(self: Remotes, name: str) -> RemoteStatus:  # no probe leaves the machine
        return RemoteStatus(name, self.get(name), error="not tried in tests")

    monkeypatch.setattr(Remotes, "status", unreachable)
    assert main(["remote", "add", "lab", "http://gpu-box:8000/v1"]) == 0
    err = capsys.readouterr().err
    assert "plain http:// to another machine" in err and "not reachable now" in err
    assert main(["remote", "add", "box", "http://127.0.0.1:8000/v1"]) == 0
    assert "plain http://" not in capsys.readouterr().err
    assert set(load_settings(default_paths()).remotes) == {"lab", "box"}
