"""`ponder chats show` and `export` on a voted reply, as a user runs them: a subprocess.

The rows are written through the History API, as the votes use case will write them."""

from __future__ import annotations

import json

from ponder.history import History
from ponder.paths import default_paths
from support.cli import ponder

CANDIDATES = [  # (reasoning, answer, extracted, finish_reason)
    ("17 times 20 is 340", "17 × 23 = 391", "391", "stop"),
    ("23 times 17 is 23 times 10 plus", "It is 401.", "401", "stop"),
    ("20 times 17, then 3 times 17", "The answer is **391**.", "391", "stop"),
    ("let me count again, 17, 34", "Counting: 17, 34, 51", None, "length"),
]


def _voted_chat() -> int:
    with History.open(default_paths().history_db) as store:
        chat_id = store.create_chat(title="What is 17*23?", model="r1-1.5b")
        store.add_user_message(chat_id, "What is 17*23?")
        reply = store.start_reply(chat_id, model="r1-1.5b", params={"temperature": 0.6})
        for index, (reasoning, answer, extracted, reason) in enumerate(CANDIDATES):
            candidate = store.start_candidate(reply, index)
            store.append_candidate(candidate, reasoning=reasoning, answer=answer)
            store.finish_candidate(
                candidate,
                status="complete" if reason == "stop" else "length",
                finish_reason=reason,
                reasoning_tokens=8,
                answer_tokens=6,
                extracted=extracted,
                timings={"total_s": 1.0},
            )
        store.append_reply(reply, reasoning=CANDIDATES[0][0], answer=CANDIDATES[0][1])
        store.set_votes(
            reply, {"n": 4, "winner": "391", "winner_index": 0, "tally": {"391": 2, "401": 1}}
        )
        store.finish_reply(
            reply,
            status="complete",
            finish_reason="stop",
            prompt_tokens=9,
            reasoning_tokens=8,
            answer_tokens=6,
            timings={"total_s": 1.0},
        )
        return chat_id


def test_show_gives_the_count_and_show_candidates_every_candidate(
    ponder_env: dict[str, str],
) -> None:
    chat_id = _voted_chat()
    shown = ponder("chats", "show", str(chat_id), env=ponder_env)
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    lines = shown.stdout.splitlines()
    hint = f"votes: 2 of 4 agree: 391 (candidates: `ponder chats show {chat_id} --candidates`)"
    assert hint in lines
    assert lines.index(hint) > lines.index("17 × 23 = 391")  # under the reply
    assert "401" not in shown.stdout and "Candidate" not in shown.stdout
    full = ponder("chats", "show", str(chat_id), "--candidates", env=ponder_env)
    assert full.returncode == 0, full.stderr
    assert "Votes: 2 of 4 agree: 391" in full.stdout and "votes: " not in full.stdout
    headings = [line for line in full.stdout.splitlines() if line.startswith("### ")]
    assert headings == [
        "### Candidate 1: 391 (stop, the reply)",
        "### Candidate 2: 401 (stop)",
        "### Candidate 3: 391 (stop)",
        "### Candidate 4: no answer (length)",
    ]
    for reasoning, answer, _, _ in CANDIDATES:
        assert reasoning in full.stdout and answer in full.stdout
    assert full.stdout.index("let me count again") < full.stdout.index("Counting: 17, 34, 51")


def test_export_json_has_the_candidates(ponder_env: dict[str, str]) -> None:
    chat_id = _voted_chat()
    result = ponder("chats", "export", str(chat_id), "--format", "json", env=ponder_env)
    assert result.returncode == 0, result.stderr
    _, reply = json.loads(result.stdout)["messages"]
    assert reply["params"]["votes"]["winner"] == "391"
    assert [c["extracted"] for c in reply["candidates"]] == ["391", "401", "391", None]
    assert [c["content"] for c in reply["candidates"]] == [a for _, a, _, _ in CANDIDATES]
