"""The SQLite chat store, exercised on real database files."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ponder.errors import ChatNotFoundError, DiskFullError, PonderError
from ponder.history import (
    EXPORT_FORMAT,
    SCHEMA_VERSION,
    History,
    HistoryError,
    HistoryFullError,
    HistoryVersionError,
    fts_query,
)
from ponder.history.schema import _MIGRATIONS

APP_DIR = Path(__file__).resolve().parents[2] / "app"
PARAMS: dict[str, object] = {"temperature": 0.6, "top_p": 0.95}
TIMINGS: dict[str, object] = {"total_s": 1.5, "tokens_per_s": 20.0}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def history(db_path: Path) -> Iterator[History]:
    with History.open(db_path) as store:
        yield store


def _reply(
    store: History,
    chat_id: int,
    *,
    reasoning: str = "",
    answer: str = "",
    status: str = "complete",
) -> int:
    message_id = store.start_reply(chat_id, model="r1-1.5b", params=PARAMS)
    store.append_reply(message_id, reasoning=reasoning, answer=answer)
    if status != "streaming":
        store.finish_reply(
            message_id,
            status=status,  # type: ignore[arg-type]
            finish_reason="stop",
            prompt_tokens=3,
            reasoning_tokens=5,
            answer_tokens=7,
            timings=TIMINGS,
        )
    return message_id


def _chat_with_turn(
    store: History, prompt: str, reasoning: str, answer: str, status: str = "complete"
) -> int:
    chat_id = store.create_chat(title=prompt, model="r1-1.5b")
    store.add_user_message(chat_id, prompt)
    _reply(store, chat_id, reasoning=reasoning, answer=answer, status=status)
    return chat_id


# -- opening, migrations, file safety -----------------------------------------------


def test_open_creates_schema_and_sets_user_version(db_path: Path) -> None:
    History.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"chats", "messages", "messages_fts"} <= tables


def test_reopening_is_idempotent_and_keeps_data(db_path: Path) -> None:
    with History.open(db_path) as store:
        chat_id = store.create_chat(title="kept", model=None)
    for _ in range(2):
        with History.open(db_path) as store:
            assert [chat.id for chat in store.list_chats()] == [chat_id]
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused_untouched(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = db_path.read_bytes()
    with pytest.raises(HistoryVersionError, match="knows only up to") as caught:
        History.open(db_path)
    assert isinstance(caught.value, PonderError)
    assert db_path.read_bytes() == before
    assert not Path(f"{db_path}-wal").exists()


def test_garbage_file_is_a_clear_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not a database, it is a shopping list" * 100)
    with pytest.raises(PonderError, match="cannot use the chat history"):
        History.open(db_path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_file_and_folder_are_private(db_path: Path) -> None:
    with History.open(db_path) as store:
        store.create_chat(title="secret", model=None)
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{db_path}{suffix}")
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, suffix
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700


def test_wal_is_on(db_path: Path) -> None:
    History.open(db_path).close()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- writing and reading -------------------------------------------------------------


def test_streamed_reply_keeps_reasoning_and_answer_apart(history: History) -> None:
    chat_id = history.create_chat(title="  Why is the sky blue?  ", model="r1-1.5b")
    history.add_user_message(chat_id, "Why is the sky blue?")
    message_id = history.start_reply(chat_id, model="r1-1.5b", params=PARAMS)
    assert history.get_chat(chat_id).messages[-1].status == "streaming"
    for piece in ("Rayleigh ", "scattering."):
        history.append_reply(message_id, reasoning=piece)
    history.append_reply(message_id, answer="Short ")
    history.append_reply(message_id, answer="wavelengths scatter more.")
    history.finish_reply(
        message_id,
        status="complete",
        finish_reason="stop",
        prompt_tokens=12,
        reasoning_tokens=40,
        answer_tokens=9,
        timings=TIMINGS,
    )
    chat = history.get_chat(chat_id)
    assert chat.summary.title == "Why is the sky blue?"
    assert chat.summary.message_count == 2
    user, reply = chat.messages
    assert (user.role, user.content, user.reasoning) == ("user", "Why is the sky blue?", "")
    assert reply.role == "assistant"
    assert reply.reasoning == "Rayleigh scattering."
    assert reply.content == "Short wavelengths scatter more."
    assert (reply.status, reply.finish_reason, reply.model) == ("complete", "stop", "r1-1.5b")
    assert (reply.prompt_tokens, reply.reasoning_tokens, reply.answer_tokens) == (12, 40, 9)
    assert reply.params == PARAMS
    assert reply.timings == TIMINGS
    assert reply.created_at.endswith("+00:00")


def test_append_to_finished_reply_is_refused(history: History) -> None:
    chat_id = history.create_chat(title="t", model=None)
    message_id = _reply(history, chat_id, answer="done")
    with pytest.raises(PonderError, match="not streaming"):
        history.append_reply(message_id, answer="more")


def test_messages_need_an_existing_chat(history: History) -> None:
    with pytest.raises(ChatNotFoundError):
        history.add_user_message(404, "hello")
    with pytest.raises(ChatNotFoundError):
        history.start_reply(404, model="m", params={})


def test_untitled_fallback(history: History) -> None:
    chat_id = history.create_chat(title=" \n ", model=None)
    assert history.get_chat(chat_id).summary.title == "Untitled"


def test_list_orders_by_latest_activity(history: History) -> None:
    first = history.create_chat(title="first", model=None)
    second = history.create_chat(title="second", model="m")
    assert [c.id for c in history.list_chats()] == [second, first]
    assert history.last_chat_id() == second
    history.add_user_message(first, "again")
    assert [c.id for c in history.list_chats()] == [first, second]
    assert history.last_chat_id() == first
    assert [c.id for c in history.list_chats(limit=1, offset=1)] == [second]
    assert history.list_chats()[0].message_count == 1


def test_last_chat_id_of_empty_store(history: History) -> None:
    assert history.last_chat_id() is None
    assert history.list_chats() == []


def test_rename_and_delete(history: History) -> None:
    chat_id = _chat_with_turn(history, "old title", "thought", "answer")
    history.rename_chat(chat_id, "  new title ")
    assert history.get_chat(chat_id).summary.title == "new title"
    history.delete_chat(chat_id)
    with pytest.raises(ChatNotFoundError, match=f"no chat with id {chat_id}") as caught:
        history.get_chat(chat_id)
    assert caught.value.hint == "`ponder chats list` shows the ids"
    assert history.search("answer") == []
    with sqlite3.connect(history.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_missing_ids_raise_chat_not_found(history: History) -> None:
    with pytest.raises(ChatNotFoundError):
        history.delete_chat(99)
    with pytest.raises(ChatNotFoundError):
        history.rename_chat(99, "x")


# -- crash recovery ----------------------------------------------------------------

_CRASHING_WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from ponder.history import History
    store = History.open(Path(sys.argv[1]))
    chat_id = store.create_chat(title="crash", model="m")
    store.add_user_message(chat_id, "question")
    reply = store.start_reply(chat_id, model="m", params={})
    store.append_reply(reply, reasoning="half a thought", answer="half an answer")
    os._exit(0)
    """
)


def test_reply_of_a_dead_process_becomes_interrupted(db_path: Path) -> None:
    History.open(db_path).close()
    env = {**os.environ, "PYTHONPATH": str(APP_DIR)}
    subprocess.run(
        [sys.executable, "-c", _CRASHING_WRITER, str(db_path)], env=env, check=True, timeout=60
    )
    with History.open(db_path) as store:
        chat_id = store.last_chat_id()
        assert chat_id is not None
        reply = store.get_chat(chat_id).messages[-1]
        assert (reply.status, reply.finish_reason) == ("interrupted", "interrupted")
        assert (reply.reasoning, reply.content) == ("half a thought", "half an answer")
        assert store.search("half")[0].message_id == reply.id


def test_reply_of_a_live_process_is_left_streaming(db_path: Path) -> None:
    with History.open(db_path) as writer:
        chat_id = writer.create_chat(title="live", model="m")
        reply = writer.start_reply(chat_id, model="m", params={})
        writer.append_reply(reply, answer="still going")
        with History.open(db_path) as reader:
            assert reader.get_chat(chat_id).messages[-1].status == "streaming"
            assert reader.recover_interrupted() == 0
        writer.append_reply(reply, answer=" and done")
        assert writer.get_chat(chat_id).messages[-1].content == "still going and done"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_reused_pid_is_not_mistaken_for_the_writer(db_path: Path) -> None:
    with History.open(db_path) as store:
        chat_id = store.create_chat(title="reused", model="m")
        reply = store.start_reply(chat_id, model="m", params={})
    with sqlite3.connect(db_path) as conn:  # as if an earlier process had had our PID
        conn.execute("UPDATE messages SET writer_start = '0' WHERE id = ?", (reply,))
    with History.open(db_path) as store:
        assert store.get_chat(chat_id).messages[-1].status == "interrupted"


# -- search ----------------------------------------------------------------------------


def test_search_finds_answers_and_prompts_not_reasoning(history: History) -> None:
    chat_id = _chat_with_turn(
        history, "Tell me about zebras", "pondering quokkas privately", "Zebras have stripes"
    )
    hits = history.search("zebras stripe")
    assert [(h.chat_id, h.role) for h in hits] == [(chat_id, "assistant")]
    assert "**stripes**" in hits[0].snippet
    assert hits[0].chat_title == "Tell me about zebras"
    assert {h.role for h in history.search("zebras")} == {"user", "assistant"}
    assert history.search("quokkas") == []
    found = history.search("quokkas", include_reasoning=True)
    assert [h.chat_id for h in found] == [chat_id]
    assert "**quokkas**" in found[0].snippet


def test_search_prefix_order_and_limit(history: History) -> None:
    older = _chat_with_turn(history, "q1", "", "photosynthesis in plants")
    newer = _chat_with_turn(history, "q2", "", "photons and plants")
    hits = history.search("pla")
    assert [h.chat_id for h in hits] == [newer, older]
    assert [h.chat_id for h in history.search("plants pho", limit=1)] == [newer]
    assert {h.chat_id for h in history.search("plants", order="rank")} == {older, newer}
    assert history.search("photosynthesis", marks=("<", ">"))[0].snippet.count("<") == 1


def test_streaming_reply_is_indexed_once_finished(history: History) -> None:
    chat_id = history.create_chat(title="t", model=None)
    reply = _reply(history, chat_id, answer="platypus", status="streaming")
    assert history.search("platypus") == []
    history.finish_reply(
        reply,
        status="length",
        finish_reason="length",
        prompt_tokens=1,
        reasoning_tokens=0,
        answer_tokens=1,
        timings={},
    )
    assert [h.message_id for h in history.search("platypus")] == [reply]


HOSTILE = [
    '"',
    '""',
    "*",
    "AND",
    "a AND",
    "OR NOT",
    "NEAR(",
    "NEAR(a b",
    "-x",
    "",
    "   ",
    "col:umn",
    "{content}",
    "(",
    ")",
    "^start",
    "a+b",
    "'",
    "\\",
    '"unterminated',
    "\x00",
    "0\x00",
    "a\x00b",
]


@pytest.mark.parametrize("query", HOSTILE)
@pytest.mark.parametrize("include_reasoning", [False, True])
def test_search_survives_hostile_input(
    history: History, query: str, include_reasoning: bool
) -> None:
    _chat_with_turn(history, "prompt", "AND x NEAR", 'quote " star * minus -x AND')
    history.search(query, include_reasoning=include_reasoning)


def test_search_treats_operators_as_words(history: History) -> None:
    _chat_with_turn(history, "logic", "", "cats AND dogs")
    assert len(history.search("cats AND dogs")) == 1
    assert history.search("cats NOT") == []
    assert fts_query("  ") is None
    assert fts_query('say "hi"', include_reasoning=True) == '"say" """hi"""*'
    assert fts_query("a b") == 'content : "a" content : "b"*'


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.text(max_size=30))
def test_search_never_raises(history: History, query: str) -> None:
    history.search(query)
    history.search(query, include_reasoning=True)


# -- round trip and export ---------------------------------------------------------


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pieces=st.lists(st.tuples(st.text(), st.text()), max_size=5), prompt=st.text())
def test_text_round_trips_exactly(
    history: History, pieces: list[tuple[str, str]], prompt: str
) -> None:
    chat_id = history.create_chat(title=prompt, model="m")
    history.add_user_message(chat_id, prompt)
    reply = history.start_reply(chat_id, model="m", params={"note": prompt})
    for reasoning, answer in pieces:
        history.append_reply(reply, reasoning=reasoning, answer=answer)
    user, assistant = history.get_chat(chat_id).messages
    assert user.content == prompt
    assert assistant.reasoning == "".join(r for r, _ in pieces)
    assert assistant.content == "".join(a for _, a in pieces)
    assert assistant.params == {"note": prompt}


def test_markdown_export(history: History) -> None:
    chat_id = _chat_with_turn(history, "What is 2+2?", "Add two and two.", "It is 4.")
    history.add_user_message(chat_id, "And 3+3?")
    _reply(history, chat_id, reasoning="Three plus", answer="It is", status="interrupted")
    text = history.export_markdown(chat_id)
    assert text.startswith("# What is 2+2?\n")
    assert "r1-1.5b" in text and "UTC" in text
    assert text.index("<summary>Reasoning</summary>") < text.index("Add two and two.")
    assert text.index("Add two and two.") < text.index("It is 4.")
    assert "And 3+3?" in text
    assert "Interrupted" in text
    assert text.count("Interrupted") == 1


def test_json_export(history: History) -> None:
    chat_id = _chat_with_turn(history, "Ünïcode ✓?", "thinking", "answer")
    document = json.loads(history.export_json(chat_id))
    assert document["format"] == EXPORT_FORMAT == "ponder.chat"
    assert document["version"] == 1
    assert document["chat"]["id"] == chat_id
    assert document["chat"]["title"] == "Ünïcode ✓?"
    assert set(document["chat"]) == {
        "id",
        "title",
        "model",
        "system_prompt",
        "settings",
        "created_at",
        "updated_at",
    }
    user, reply = document["messages"]
    assert set(reply) == {
        "role",
        "content",
        "reasoning",
        "model",
        "status",
        "finish_reason",
        "params",
        "timings",
        "usage",
        "created_at",
    }
    assert user["role"] == "user" and user["content"] == "Ünïcode ✓?"
    assert (reply["reasoning"], reply["content"]) == ("thinking", "answer")
    assert reply["usage"] == {"prompt_tokens": 3, "reasoning_tokens": 5, "answer_tokens": 7}
    assert reply["params"] == PARAMS and reply["timings"] == TIMINGS


def test_store_is_usable_from_threads(history: History) -> None:
    chat_id = history.create_chat(title="threads", model=None)
    reply = history.start_reply(chat_id, model="m", params={})

    def write() -> None:
        for _ in range(50):
            history.append_reply(reply, answer="x")

    def read() -> None:
        for _ in range(50):
            history.list_chats()

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert history.get_chat(chat_id).messages[-1].content == "x" * 50


# -- per-chat settings and regenerate -------------------------------------------------


def test_a_schema_1_file_gains_chat_settings_and_keeps_its_chats(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    for statement in _MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO chats (title, model, created_at, updated_at) VALUES ('old', 'm', 't', 't')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with History.open(db_path) as store:
        (summary,) = store.list_chats()
        chat = store.get_chat(summary.id)
        assert summary.title == "old" and chat.settings == {}


def test_chat_settings_round_trip(history: History) -> None:
    chat_id = history.create_chat(title="t", model="m", settings={"temperature": 0.5})
    assert history.get_chat(chat_id).settings == {"temperature": 0.5}
    history.update_chat_settings(
        chat_id, system_prompt="Be brief.", settings={"temperature": 0.7, "keep_reasoning": True}
    )
    chat = history.get_chat(chat_id)
    assert chat.settings == {"temperature": 0.7, "keep_reasoning": True}
    assert chat.system_prompt == "Be brief."
    history.update_chat_settings(chat_id, system_prompt="", settings={})
    assert history.get_chat(chat_id).system_prompt is None
    with pytest.raises(ChatNotFoundError):
        history.update_chat_settings(chat_id + 1, system_prompt=None, settings={})


def test_take_last_exchange_returns_the_prompt_and_removes_it_with_its_reply(
    history: History,
) -> None:
    chat_id = _chat_with_turn(history, "first", "r1", "a1")
    history.add_user_message(chat_id, "second")
    _reply(history, chat_id, reasoning="r2", answer="a2")
    assert history.take_last_exchange(chat_id) == "second"
    assert [m.content for m in history.get_chat(chat_id).messages] == ["first", "a1"]
    assert history.search("a2") == []


def test_take_last_exchange_after_a_failed_reply_takes_the_lone_prompt(history: History) -> None:
    chat_id = _chat_with_turn(history, "first", "r1", "a1")
    history.add_user_message(chat_id, "no reply came")
    assert history.take_last_exchange(chat_id) == "no reply came"
    assert len(history.get_chat(chat_id).messages) == 2


def test_take_last_exchange_refuses_a_streaming_reply_and_an_empty_chat(
    history: History,
) -> None:
    chat_id = history.create_chat(title="t", model="m")
    with pytest.raises(HistoryError, match="no prompt"):
        history.take_last_exchange(chat_id)
    history.add_user_message(chat_id, "q")
    history.start_reply(chat_id, model="m", params={})
    with pytest.raises(HistoryError, match="still streaming"):
        history.take_last_exchange(chat_id)
    assert len(history.get_chat(chat_id).messages) == 2


# -- a full disk is not a damaged file ------------------------------------------------------


def _filled(db_path: Path) -> tuple[History, int, int]:
    """A store with one finished chat and a reply streaming into a second one, whose
    file may then grow by no more than a few pages (SQLite's own ``max_page_count``:
    the same SQLITE_FULL a full disk gives)."""
    history = History.open(db_path)
    done = history.create_chat(title="kept", model="m")
    history.add_user_message(done, "earlier")
    reply = history.start_reply(done, model="m", params=PARAMS)
    history.append_reply(reply, answer="an earlier answer")
    history.finish_reply(
        reply,
        status="complete",
        finish_reason="stop",
        prompt_tokens=1,
        reasoning_tokens=0,
        answer_tokens=3,
        timings=TIMINGS,
    )
    chat = history.create_chat(title="filling", model="m")
    streaming = history.start_reply(chat, model="m", params=PARAMS)
    history.append_reply(streaming, answer="the part that fitted")
    pages = history._conn.execute("PRAGMA page_count").fetchone()[0]
    history._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    return history, chat, streaming


def test_a_full_disk_during_a_reply_is_one_line_and_keeps_what_was_written(
    db_path: Path,
) -> None:
    history, chat, streaming = _filled(db_path)
    with pytest.raises(HistoryFullError) as info:
        for _ in range(100):
            history.append_reply(streaming, answer="x" * 20_000)
    error = info.value
    assert isinstance(error, DiskFullError) and error.exit_code == 1
    assert "the disk is full" in error.message and "\n" not in str(error)
    assert "move the file aside" not in str(error)
    history.close()
    with History.open(db_path) as reopened:  # intact: nothing lost, the partial kept
        assert reopened._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = reopened.get_chat(chat).messages[-1]
        assert kept.content.startswith("the part that fitted")
        titles = [c.title for c in reopened.list_chats()]
        assert titles == ["filling", "kept"]


def test_a_damaged_file_is_told_to_move_aside(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(HistoryError) as info:
        History.open(db_path)
    assert "damaged" in info.value.message
    assert info.value.hint == "move the file aside to start a fresh history"


@pytest.mark.parametrize(
    ("name", "room", "fragment", "aside"),
    [
        ("SQLITE_FULL", True, "no room to write", False),
        ("SQLITE_IOERR_WRITE", False, "no room to write", False),
        ("SQLITE_IOERR_SHMSIZE", False, "no room to write", False),
        ("SQLITE_IOERR_WRITE", True, "disk I/O error", False),
        ("SQLITE_CORRUPT", True, "damaged", True),
        ("SQLITE_NOTADB", True, "damaged", True),
        ("SQLITE_BUSY", True, "busy", False),
        ("SQLITE_READONLY", True, "read-only", False),
        ("SQLITE_CANTOPEN", True, "cannot open", False),
    ],
)
def test_each_failure_gets_its_own_advice(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    room: bool,
    fragment: str,
    aside: bool,
) -> None:
    from ponder.history import failures

    monkeypatch.setattr(failures, "has_room", lambda folder: room)
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    error = failures.explain(exc, tmp_path / "history.sqlite3")
    assert fragment in str(error)
    assert ("move the file aside" in str(error)) == aside
    assert isinstance(error, HistoryFullError) == (fragment == "no room to write")


def test_room_is_probed_by_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """statvfs cannot see a quota or a file-size limit: the probe writes a few KB."""
    from ponder.history import failures

    assert failures.has_room(tmp_path)
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind

    def full(*args: object, **kwargs: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(failures.os, "write", full)
    assert not failures.has_room(tmp_path)
    assert list(tmp_path.iterdir()) == []
