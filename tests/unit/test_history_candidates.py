"""A voted reply's candidates in the chat store (schema 3), on real SQLite files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.history import (
    SCHEMA_VERSION,
    Candidate,
    History,
    HistoryError,
    HistoryFullError,
    Message,
    votes_summary,
)
from ponder.history.schema import _MIGRATIONS

APP_DIR = Path(__file__).resolve().parents[2] / "app"
PARAMS: dict[str, object] = {"temperature": 0.6, "top_p": 0.95}
TIMINGS: dict[str, object] = {"total_s": 2.5, "tokens_per_s": 18.0}
VOTES: dict[str, object] = {
    "n": 5,
    "winner": "391",
    "winner_index": 1,
    "tally": {"391": 4, "401": 1},
}
# (reasoning, answer, extracted, finish_reason) of the five candidates of a voted reply
FIVE = [
    ("17 times 20 is 340, plus 51", "17 × 23 = 391", "391", "stop"),
    ("20 times 17, then 3 times 17", "The answer is 391.", "391", "stop"),
    ("23 times 17 is 23 times 10 plus", "It is 401.", "401", "stop"),
    ("seventeen twenty-threes", "\\boxed{391}", "391", "stop"),
    ("let me count again, 17, 34", "391, I think", "391", "length"),
]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def history(db_path: Path) -> Iterator[History]:
    with History.open(db_path) as store:
        yield store


def _voted_reply(store: History, chat_id: int, candidates: list[tuple[str, str, str, str]]) -> int:
    """A reply voted on as the session will write it: the candidates stream, finish, and
    the winner's text becomes the reply."""
    reply = store.start_reply(chat_id, model="r1-1.5b", params=PARAMS)
    ids = [store.start_candidate(reply, index) for index in range(len(candidates))]
    for candidate_id, (reasoning, answer, _, _) in zip(ids, candidates, strict=True):
        store.append_candidate(candidate_id, reasoning=reasoning)
        store.append_candidate(candidate_id, answer=answer)
    for candidate_id, (_, _, extracted, reason) in zip(ids, candidates, strict=True):
        store.finish_candidate(
            candidate_id,
            status="complete" if reason == "stop" else "length",
            finish_reason=reason,
            reasoning_tokens=10,
            answer_tokens=4,
            extracted=extracted,
            timings=TIMINGS,
        )
    winner = 1  # VOTES["winner_index"]
    store.append_reply(reply, reasoning=candidates[winner][0], answer=candidates[winner][1])
    store.set_votes(reply, VOTES)
    store.finish_reply(
        reply,
        status="complete",
        finish_reason="stop",
        prompt_tokens=9,
        reasoning_tokens=10,
        answer_tokens=4,
        timings=TIMINGS,
    )
    return reply


def _voted_chat(store: History) -> tuple[int, int]:
    chat_id = store.create_chat(title="What is 17*23?", model="r1-1.5b")
    store.add_user_message(chat_id, "What is 17*23?")
    return chat_id, _voted_reply(store, chat_id, FIVE)


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


# -- the schema -------------------------------------------------------------------------


def test_a_schema_2_file_gains_candidates_and_keeps_its_chats(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    for statement in (*_MIGRATIONS[0], *_MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO chats (title, model, created_at, updated_at, settings)"
        " VALUES ('old', 'm', 't', 't', '{\"temperature\": 0.5}')"
    )
    conn.execute(
        "INSERT INTO messages (chat_id, role, content, status, created_at)"
        " VALUES (1, 'user', 'an old prompt', 'complete', 't')"
    )
    conn.execute(
        "INSERT INTO messages (chat_id, role, content, reasoning, status, params, created_at)"
        " VALUES (1, 'assistant', 'an old wombat answer', 'hm', 'complete', '{\"seed\": 1}', 't')"
    )
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with History.open(db_path) as store:
        (summary,) = store.list_chats()
        chat = store.get_chat(summary.id)
        assert (summary.title, chat.settings) == ("old", {"temperature": 0.5})
        assert [m.content for m in chat.messages] == ["an old prompt", "an old wombat answer"]
        assert chat.messages[1].params == {"seed": 1}
        assert all(m.candidates == () for m in chat.messages)
        assert [h.message_id for h in store.search("wombat")] == [chat.messages[1].id]
        store.start_candidate(chat.messages[1].id, 0)  # the new table takes rows
    assert SCHEMA_VERSION == 3
    assert _count(db_path, "PRAGMA user_version") == 3
    assert _count(db_path, "SELECT COUNT(*) FROM candidates") == 1


def test_candidates_of_a_reply_are_read_through_the_unique_index(history: History) -> None:
    plan = history._conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM candidates WHERE message_id = ? ORDER BY idx", (1,)
    ).fetchall()
    detail = " ".join(str(row["detail"]) for row in plan)
    assert "USING INDEX sqlite_autoindex_candidates_1" in detail, detail
    assert "TEMP B-TREE" not in detail  # the index gives the order too


# -- writing and reading ----------------------------------------------------------------


def test_start_append_finish_round_trip(history: History) -> None:
    chat_id = history.create_chat(title="t", model="m")
    reply = history.start_reply(chat_id, model="m", params=PARAMS)
    ids = {index: history.start_candidate(reply, index) for index in (2, 0, 1)}
    streaming = history.candidates(reply)
    assert [c.index for c in streaming] == [0, 1, 2]  # by index, not by start
    assert {c.status for c in streaming} == {"streaming"}
    assert all((c.content, c.reasoning, c.extracted) == ("", "", None) for c in streaming)
    history.append_candidate(ids[1], reasoning="Multiply ")
    history.append_candidate(ids[1], reasoning="17 by 23.", answer="391")
    history.append_candidate(ids[1], answer=".")
    history.append_candidate(ids[1])  # nothing to write: no statement, no error
    history.finish_candidate(
        ids[1],
        status="complete",
        finish_reason="stop",
        reasoning_tokens=6,
        answer_tokens=2,
        extracted="391",
        timings=TIMINGS,
    )
    history.append_candidate(ids[0], answer="cut off")
    history.finish_candidate(
        ids[0],
        status="interrupted",
        finish_reason="interrupted",
        reasoning_tokens=0,
        answer_tokens=2,
        extracted=None,
        timings={},
    )
    first, second, third = history.candidates(reply)
    assert second == Candidate(
        index=1,
        content="391.",
        reasoning="Multiply 17 by 23.",
        extracted="391",
        status="complete",
        finish_reason="stop",
        reasoning_tokens=6,
        answer_tokens=2,
        timings=TIMINGS,
        created_at=second.created_at,
    )
    assert second.created_at.endswith("+00:00")
    assert (first.status, first.content, first.extracted) == ("interrupted", "cut off", None)
    assert (third.status, third.finish_reason, third.answer_tokens) == ("streaming", None, None)
    assert history.candidates(reply + 1) == []


def test_misuse_is_refused(history: History) -> None:
    chat_id = history.create_chat(title="t", model="m")
    prompt = history.add_user_message(chat_id, "q")
    reply = history.start_reply(chat_id, model="m", params={})
    with pytest.raises(HistoryError, match=f"no reply with id {prompt}"):
        history.start_candidate(prompt, 0)  # a user turn is not voted on
    with pytest.raises(HistoryError, match="no reply with id 999"):
        history.start_candidate(999, 0)
    with pytest.raises(ValueError, match="0 or more"):
        history.start_candidate(reply, -1)
    candidate = history.start_candidate(reply, 0)
    with pytest.raises(HistoryError, match="already has a candidate 0"):
        history.start_candidate(reply, 0)
    finish: dict[str, object] = {
        "finish_reason": "stop",
        "reasoning_tokens": 0,
        "answer_tokens": 1,
        "extracted": "1",
        "timings": {},
    }
    with pytest.raises(ValueError, match="final status"):
        history.finish_candidate(candidate, status="streaming", **finish)  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match="no candidate with id 999"):
        history.finish_candidate(999, status="complete", **finish)  # type: ignore[arg-type]
    history.finish_candidate(candidate, status="complete", **finish)  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match="not streaming"):
        history.append_candidate(candidate, answer="more")
    with pytest.raises(HistoryError, match="no message with id 999"):
        history.set_votes(999, VOTES)
    assert len(history.candidates(reply)) == 1


def test_set_votes_keeps_the_other_params(history: History) -> None:
    chat_id, reply = _voted_chat(history)
    assert history.get_chat(chat_id).messages[-1].params == {**PARAMS, "votes": VOTES}
    again = {**VOTES, "n": 6, "tally": {"391": 5, "401": 1}}
    history.set_votes(reply, again)  # a second count replaces the first, nothing else
    assert history.get_chat(chat_id).messages[-1].params == {**PARAMS, "votes": again}


def test_get_chat_fills_candidates_in_one_query(history: History) -> None:
    chat_id, first = _voted_chat(history)
    history.add_user_message(chat_id, "And without votes?")
    plain = history.start_reply(chat_id, model="r1-1.5b", params=PARAMS)
    history.append_reply(plain, answer="Plain.")
    history.add_user_message(chat_id, "Twice more?")
    second = _voted_reply(history, chat_id, FIVE[2:4])
    statements: list[str] = []
    history._conn.set_trace_callback(statements.append)
    try:
        chat = history.get_chat(chat_id)
    finally:
        history._conn.set_trace_callback(None)
    assert sum("FROM candidates" in sql for sql in statements) == 1, statements
    by_id: dict[int, Message] = {m.id: m for m in chat.messages}
    assert [c.content for c in by_id[first].candidates] == [answer for _, answer, _, _ in FIVE]
    assert [c.extracted for c in by_id[first].candidates] == ["391", "391", "401", "391", "391"]
    assert [c.index for c in by_id[second].candidates] == [0, 1]
    assert [c.content for c in by_id[second].candidates] == ["It is 401.", "\\boxed{391}"]
    assert by_id[plain].candidates == ()
    assert all(m.candidates == () for m in chat.messages if m.role == "user")
    assert by_id[first].candidates == tuple(history.candidates(first))
    assert by_id[first].content == "The answer is 391."  # the winner is the reply


def test_candidates_are_not_searched_but_the_winning_reply_is(history: History) -> None:
    chat_id, reply = _voted_chat(history)
    assert history.search("401") == []  # only a losing candidate said it
    assert history.search("count again", include_reasoning=True) == []
    hits = history.search("answer 391")
    assert [(h.message_id, h.chat_id) for h in hits] == [(reply, chat_id)]  # once


def test_deleting_the_chat_deletes_its_candidates(history: History, db_path: Path) -> None:
    assert history._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    kept, _ = _voted_chat(history)
    gone, _ = _voted_chat(history)
    assert _count(db_path, "SELECT COUNT(*) FROM candidates") == 10
    history.delete_chat(gone)
    assert _count(db_path, "SELECT COUNT(*) FROM candidates") == 5
    assert len(history.get_chat(kept).messages[-1].candidates) == 5


def test_asking_again_removes_the_old_replys_candidates(history: History, db_path: Path) -> None:
    chat_id, _ = _voted_chat(history)
    assert history.take_last_exchange(chat_id) == "What is 17*23?"
    assert _count(db_path, "SELECT COUNT(*) FROM candidates") == 0


# -- crash recovery ---------------------------------------------------------------------

_CRASHING_VOTER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from ponder.history import History
    store = History.open(Path(sys.argv[1]))
    chat_id = store.create_chat(title="crash", model="m")
    store.add_user_message(chat_id, "question")
    reply = store.start_reply(chat_id, model="m", params={"seed": 7})
    done, cut = store.start_candidate(reply, 0), store.start_candidate(reply, 1)
    store.append_candidate(done, reasoning="quick", answer="42")
    store.finish_candidate(done, status="complete", finish_reason="stop", reasoning_tokens=1,
                           answer_tokens=1, extracted="42", timings={})
    store.append_candidate(cut, reasoning="half a thought", answer="half an")
    os._exit(0)
    """
)


def test_candidates_of_a_dead_process_become_interrupted(db_path: Path) -> None:
    History.open(db_path).close()
    env = {**os.environ, "PYTHONPATH": str(APP_DIR)}
    subprocess.run(
        [sys.executable, "-c", _CRASHING_VOTER, str(db_path)], env=env, check=True, timeout=60
    )
    with History.open(db_path) as store:
        chat_id = store.last_chat_id()
        assert chat_id is not None
        reply = store.get_chat(chat_id).messages[-1]
        assert reply.status == "interrupted"
        done, cut = reply.candidates
        assert (done.status, done.finish_reason, done.content) == ("complete", "stop", "42")
        assert (cut.status, cut.finish_reason) == ("interrupted", "interrupted")
        assert (cut.reasoning, cut.content, cut.extracted) == ("half a thought", "half an", None)
        assert store.recover_interrupted() == 0  # nothing left to recover
    assert _count(db_path, "SELECT COUNT(*) FROM candidates WHERE writer_pid IS NOT NULL") == 0


def test_candidates_of_a_live_process_are_left_streaming(db_path: Path) -> None:
    with History.open(db_path) as writer:
        chat_id = writer.create_chat(title="live", model="m")
        reply = writer.start_reply(chat_id, model="m", params={})
        candidate = writer.start_candidate(reply, 0)
        writer.append_candidate(candidate, answer="still going")
        with History.open(db_path) as reader:
            assert [c.status for c in reader.candidates(reply)] == ["streaming"]
            assert reader.recover_interrupted() == 0
        writer.append_candidate(candidate, answer=" and done")
        assert writer.candidates(reply)[0].content == "still going and done"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_a_reused_pid_is_not_mistaken_for_the_candidates_writer(db_path: Path) -> None:
    with History.open(db_path) as store:
        chat_id = store.create_chat(title="reused", model="m")
        reply = store.start_reply(chat_id, model="m", params={})
        store.start_candidate(reply, 0)
    with sqlite3.connect(db_path) as conn:  # as if an earlier process had had our PID
        conn.execute("UPDATE candidates SET writer_start = '0'")
        conn.execute("UPDATE messages SET writer_start = '0'")
    with History.open(db_path) as store:
        assert store.recover_interrupted() == 0  # already done by open
        assert [c.status for c in store.candidates(reply)] == ["interrupted"]


# -- a full disk ------------------------------------------------------------------------


def test_a_full_disk_while_appending_keeps_what_was_written(db_path: Path) -> None:
    history = History.open(db_path)
    chat_id, _ = _voted_chat(history)
    reply = history.start_reply(chat_id, model="m", params=PARAMS)
    candidate = history.start_candidate(reply, 0)
    history.append_candidate(candidate, reasoning="the part that fitted")
    pages = history._conn.execute("PRAGMA page_count").fetchone()[0]
    history._conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # SQLITE_FULL, as a disk
    with pytest.raises(HistoryFullError) as info:
        for _ in range(100):
            history.append_candidate(candidate, reasoning="x" * 20_000)
    assert "the disk is full" in info.value.message and "\n" not in str(info.value)
    history.close()
    with History.open(db_path) as reopened:
        assert reopened._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (kept,) = reopened.candidates(reply)
        assert kept.reasoning.startswith("the part that fitted")
        assert kept.status == "streaming"  # its writer, this process, is alive
        assert len(reopened.get_chat(chat_id).messages[1].candidates) == 5  # the rest is there


# -- export -----------------------------------------------------------------------------


def test_markdown_export_shows_the_votes_and_every_candidate(history: History) -> None:
    chat_id, _ = _voted_chat(history)
    text = history.export_markdown(chat_id)
    assert "Votes: 4 of 5 agree: 391" in text
    headings = [line for line in text.splitlines() if line.startswith("### Candidate")]
    assert headings == [
        "### Candidate 1: 391 (stop)",
        "### Candidate 2: 391 (stop, the reply)",
        "### Candidate 3: 401 (stop)",
        "### Candidate 4: 391 (stop)",
        "### Candidate 5: 391 (length)",
    ]
    assert text.index("Votes: 4 of 5") < text.index("### Candidate 1")
    for reasoning, answer, _, _ in FIVE:  # each: reasoning folded, then its answer
        folded = f"<details><summary>Reasoning</summary>\n\n{reasoning}\n\n</details>"
        assert folded in text and text.index(folded) < text.index(answer, text.index(folded))
    assert text.count("<summary>Reasoning</summary>") == 6  # the reply's and five


def test_markdown_with_a_note_has_one_votes_line_instead(history: History) -> None:
    chat_id, _ = _voted_chat(history)
    text = history.export_markdown(chat_id, candidates_note="see --candidates")
    assert "\n\nvotes: 4 of 5 agree: 391 (see --candidates)" in text
    assert "### Candidate" not in text and "401" not in text
    assert text.count("<summary>Reasoning</summary>") == 1


def test_json_export_carries_the_candidates(history: History) -> None:
    chat_id, _ = _voted_chat(history)
    history.add_user_message(chat_id, "plain")
    plain = history.start_reply(chat_id, model="m", params={})
    history.append_reply(plain, answer="no votes here")
    document = json.loads(history.export_json(chat_id))
    prompt, voted, _, unvoted = document["messages"]
    assert "candidates" not in prompt and "candidates" not in unvoted
    assert voted["params"] == {**PARAMS, "votes": VOTES}
    assert [c["index"] for c in voted["candidates"]] == [0, 1, 2, 3, 4]
    third = voted["candidates"][2]
    assert set(third) == {
        "index",
        "content",
        "reasoning",
        "extracted",
        "status",
        "finish_reason",
        "usage",
        "timings",
        "created_at",
    }
    assert (third["content"], third["reasoning"]) == ("It is 401.", FIVE[2][0])
    assert (third["extracted"], third["status"], third["finish_reason"]) == (
        "401",
        "complete",
        "stop",
    )
    assert third["usage"] == {"reasoning_tokens": 10, "answer_tokens": 4}
    assert third["timings"] == TIMINGS
    assert voted["candidates"][4]["status"] == "length"


@pytest.mark.parametrize(
    ("votes", "count", "expected"),
    [
        (VOTES, 5, "4 of 5 agree: 391"),
        (
            {**VOTES, "summary": "2 of 4 agree: 12 (tied with 13)"},
            4,
            "2 of 4 agree: 12 (tied with 13)",
        ),
        (
            {"n": 3, "winner": None, "winner_index": 0, "tally": {}},
            3,
            "no candidate gave an answer (3 candidates)",
        ),
        (None, 2, "no vote was taken (2 candidates)"),  # interrupted before the count
        (None, 0, None),  # not a voted reply
    ],
)
def test_votes_summary(votes: dict[str, object] | None, count: int, expected: str | None) -> None:
    candidate = Candidate(
        index=0,
        content="a",
        reasoning="",
        extracted=None,
        status="complete",
        finish_reason="stop",
        reasoning_tokens=0,
        answer_tokens=1,
        timings={},
        created_at="t",
    )
    message = Message(
        id=1,
        chat_id=1,
        role="assistant",
        content="a",
        reasoning="",
        model="m",
        status="complete",
        finish_reason="stop",
        params={} if votes is None else {"votes": votes},
        timings={},
        prompt_tokens=1,
        reasoning_tokens=0,
        answer_tokens=1,
        created_at="t",
        candidates=(candidate,) * count,
    )
    assert votes_summary(message) == expected
