"""`ponder run` and `ponder chats` as a user runs them: subprocesses on the real model.

A GBNF grammar makes the real Gemma 3 270M emit `<think>…</think>answer`, so the whole
path (template, engine, splitter, history, output) runs end to end without a fake.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.cli import assert_clean_error, ponder, read_stderr_until, start_ponder
from support.models import ANSWER, THOUGHT

pytestmark = pytest.mark.real_model


def run_think(
    gemma: Path, grammars: dict[str, Path], env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    return ponder(
        "run",
        gemma,
        "--grammar",
        grammars["think"],
        "--seed",
        "1",
        "--ctx",
        "2048",
        *extra,
        env=env,
    )


# -- the happy paths -------------------------------------------------------------------


def test_answer_on_stdout_and_reasoning_on_stderr(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    result = run_think(gemma_path, grammars, ponder_env, "What is two plus two?")
    assert result.returncode == 0, result.stderr
    answer = result.stdout.strip()
    assert re.fullmatch(ANSWER, answer), result.stdout
    assert "<think>" not in result.stdout and "</think>" not in result.stdout
    assert re.search(THOUGHT, result.stderr)
    assert "\x1b[" not in result.stderr  # NO_COLOR and not a terminal: no escapes


def test_json_is_one_object_with_everything(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    result = run_think(gemma_path, grammars, ponder_env, "--json", "What is two plus two?")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) >= {
        "answer",
        "reasoning",
        "model",
        "finish_reason",
        "usage",
        "timings",
        "chat_id",
    }
    assert doc["model"] == gemma_path.name
    assert doc["finish_reason"] == "stop"
    assert re.fullmatch(THOUGHT, doc["reasoning"]), doc
    assert doc["reasoning"] and doc["answer"].endswith(".")
    usage = doc["usage"]
    assert (
        usage["prompt_tokens"] > 0 and usage["reasoning_tokens"] > 0 and usage["answer_tokens"] > 0
    )
    assert usage["completion_tokens"] == usage["reasoning_tokens"] + usage["answer_tokens"]
    timings = doc["timings"]
    assert timings["load_s"] > 0 and timings["total_s"] > 0 and timings["tokens_per_s"] > 0
    assert 0 < timings["time_to_first_token_s"] <= timings["total_s"]
    assert 0 < timings["thinking_s"] <= timings["total_s"]
    assert isinstance(doc["chat_id"], int)


def test_jsonl_streams_typed_events(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    result = run_think(gemma_path, grammars, ponder_env, "--jsonl", "--no-save", "hi")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0] == {"type": "start", "model": gemma_path.name, "chat_id": None}
    assert events[-1]["type"] == "finish" and events[-1]["finish_reason"] == "stop"
    kinds = [e["type"] for e in events[1:-1]]
    assert set(kinds) == {"reasoning", "answer"}
    assert kinds.index("answer") > kinds.index("reasoning")
    assert "reasoning" not in kinds[kinds.index("answer") :]


def test_reasoning_hide_and_inline(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    hidden = run_think(gemma_path, grammars, ponder_env, "--reasoning", "hide", "--no-save", "hi")
    assert hidden.returncode == 0 and hidden.stderr == ""
    inline = run_think(gemma_path, grammars, ponder_env, "--reasoning", "inline", "--no-save", "hi")
    assert inline.returncode == 0
    assert re.fullmatch(rf"<think>\n{THOUGHT}\n</think>\n\n{ANSWER}\n", inline.stdout), (
        inline.stdout
    )


def test_r1_template_without_think_gets_it_prefilled(
    r1_gemma: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    """The stream then starts inside thinking and only `</think>` appears."""
    result = ponder(
        "run",
        r1_gemma,
        "--grammar",
        grammars["prefilled"],
        "--json",
        "--verbose",
        "--ctx",
        "2048",
        "--system",
        "Be brief.",
        "What is two plus two?",
        env=ponder_env,
    )
    assert result.returncode == 0, result.stderr
    assert "template gguf" in result.stderr
    doc = json.loads(result.stdout)
    assert re.fullmatch(THOUGHT, doc["reasoning"]), doc
    assert re.fullmatch(ANSWER, doc["answer"]), doc
    shown = ponder("chats", "show", str(doc["chat_id"]), env=ponder_env)
    assert (
        "Be brief.\n\nWhat is two plus two?" not in shown.stdout
    )  # stored as typed, folded only in the prompt
    assert "What is two plus two?" in shown.stdout


def test_stdin_is_joined_after_the_argument_prompt(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    result = ponder(
        "run",
        gemma_path,
        "--grammar",
        grammars["think"],
        "--ctx",
        "2048",
        "--json",
        "Summarise this",
        env=ponder_env,
        stdin=b"the river Seine flows through Paris\n",
    )
    assert result.returncode == 0, result.stderr
    chat = json.loads(
        ponder(
            "chats",
            "export",
            str(json.loads(result.stdout)["chat_id"]),
            "--format",
            "json",
            env=ponder_env,
        ).stdout
    )
    assert chat["messages"][0]["content"] == "Summarise this\n\nthe river Seine flows through Paris"


def test_max_tokens_finishes_with_length(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    result = ponder(
        "run",
        gemma_path,
        "--max-tokens",
        "5",
        "--json",
        "--ctx",
        "2048",
        "Tell me a story",
        env=ponder_env,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["finish_reason"] == "length" and doc["usage"]["completion_tokens"] == 5


def test_continue_the_last_chat(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    first = run_think(gemma_path, grammars, ponder_env, "--json", "What is 17*23?")
    second = run_think(gemma_path, grammars, ponder_env, "--json", "-c", "and times 3?")
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    chat_id = json.loads(first.stdout)["chat_id"]
    assert json.loads(second.stdout)["chat_id"] == chat_id
    doc = json.loads(
        ponder("chats", "export", str(chat_id), "--format", "json", env=ponder_env).stdout
    )
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant", "user", "assistant"]
    assert all(m["status"] == "complete" for m in doc["messages"] if m["role"] == "assistant")
    assert doc["messages"][1]["reasoning"] and doc["messages"][1]["content"]


def test_no_save_leaves_no_chat(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    assert run_think(gemma_path, grammars, ponder_env, "--no-save", "hi").returncode == 0
    listed = ponder("chats", "list", "--json", env=ponder_env)
    assert json.loads(listed.stdout) == []


def test_save_chats_false_in_the_settings_leaves_no_chat(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    env = {**ponder_env, "PONDER_SAVE_CHATS": "false"}
    assert run_think(gemma_path, grammars, env, "hi").returncode == 0
    listed = ponder("chats", "list", "--json", env=ponder_env)
    assert json.loads(listed.stdout) == []


def _start_long_run(
    gemma: Path, grammars: dict[str, Path], env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """A reply whose reasoning streams for a long while (the "long" grammar)."""
    return start_ponder(
        "run", gemma, "--grammar", grammars["long"], "--ctx", "4096", "long one", env=env
    )


def test_ctrl_c_saves_the_partial_reply_and_exits_130(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    proc = _start_long_run(gemma_path, grammars, ponder_env)
    seen = read_stderr_until(proc, 40)  # the reasoning is streaming
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    rest = proc.stderr.read() or b""
    assert proc.returncode == 130, (seen + rest).decode()
    assert b"Traceback" not in rest
    db = Path(ponder_env["PONDER_HOME"]) / "data" / "history.sqlite3"
    with sqlite3.connect(db) as conn:
        status, reasoning, content = conn.execute(
            "SELECT status, reasoning, content FROM messages WHERE role = 'assistant'"
        ).fetchone()
    assert status == "interrupted"
    assert len(reasoning) >= 20 and content == ""


@pytest.mark.parametrize("delay_s", [0.15, 0.3, 0.5, 0.8, 1.2])
def test_ctrl_c_while_ponder_starts_exits_130_without_a_traceback(
    delay_s: float, gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    """A Ctrl-C that lands while modules import or the model loads: one line, exit 130.

    (Before ponder's own code runs, in the interpreter's start-up, nothing of ours can
    catch it; these delays land after that, during the imports and the load.)
    """
    proc = _start_long_run(gemma_path, grammars, ponder_env)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    assert proc.stderr is not None
    err = (proc.stderr.read() or b"").decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "interrupted" in err.strip().splitlines()[-1], err


# -- user mistakes: one clear line, the documented exit code ---------------------------------


def test_empty_prompt(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    assert_clean_error(ponder("run", gemma_path, env=ponder_env), 2, "the prompt is empty")
    assert_clean_error(
        ponder("run", gemma_path, "   ", env=ponder_env, stdin=b"\n\n"), 2, "the prompt is empty"
    )


def test_invalid_utf8_on_stdin(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    result = ponder("run", gemma_path, env=ponder_env, stdin=b"caf\xe9 au lait")
    assert_clean_error(result, 2, "stdin is not valid UTF-8 (byte 0xe9 at offset 3)")


def test_missing_file_and_unknown_name(ponder_env: dict[str, str], tmp_path: Path) -> None:
    assert_clean_error(
        ponder("run", tmp_path / "nope.gguf", "hi", env=ponder_env), 3, "no such model file"
    )
    result = ponder("run", "r1:7", "hi", env=ponder_env)
    assert_clean_error(result, 3, "r1:7")
    assert "r1:7b" in result.stderr


def test_catalog_model_not_downloaded_offline(ponder_env: dict[str, str]) -> None:
    """With HF_HUB_OFFLINE=1 a missing model is an error, never a download attempt."""
    result = ponder("run", "r1:1.5b", "hi", env=ponder_env)
    assert_clean_error(result, 3, "r1:1.5b@Q4_K_M is not downloaded")
    assert "ponder pull r1:1.5b" in result.stderr


def test_not_a_gguf_and_truncated_gguf(
    gemma_path: Path, ponder_env: dict[str, str], tmp_path: Path
) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("hello, I am not a model\n")
    assert_clean_error(ponder("run", text, "hi", env=ponder_env), 4, "not a GGUF file")
    cut = tmp_path / "cut.gguf"
    with gemma_path.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(50_000_000))
    assert_clean_error(ponder("run", cut, "hi", env=ponder_env), 4, "cut.gguf")


def test_prompt_exceeding_the_context(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    result = ponder("run", gemma_path, "--ctx", "64", "word " * 300, env=ponder_env)
    assert_clean_error(result, 5, "context holds 64")
    assert json.loads(ponder("chats", "list", "--json", env=ponder_env).stdout) == []


def test_continue_without_any_chat(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    assert_clean_error(ponder("run", gemma_path, "-c", "hi", env=ponder_env), 2, "no earlier chat")


def test_bad_arguments_exit_2(ponder_env: dict[str, str]) -> None:
    result = ponder("run", "x.gguf", "--max-tokens", "-3", "hi", env=ponder_env)
    assert result.returncode == 2 and "must be positive" in result.stderr


def test_malformed_config_names_the_key(gemma_path: Path, ponder_env: dict[str, str]) -> None:
    config = Path(ponder_env["PONDER_HOME"]) / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('reasoning = "stderr"\nthreds = 4\n')
    assert_clean_error(ponder("run", gemma_path, "hi", env=ponder_env), 1, "threds")


# -- chats -----------------------------------------------------------------------------


def test_chats_list_show_search_export_rm(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str], tmp_path: Path
) -> None:
    doc = json.loads(
        run_think(gemma_path, grammars, ponder_env, "--json", "Tell me about zebras").stdout
    )
    chat_id = str(doc["chat_id"])
    listed = ponder("chats", "list", env=ponder_env)
    assert "Tell me about zebras" in listed.stdout and gemma_path.name in listed.stdout
    shown = ponder("chats", "show", chat_id, env=ponder_env)
    assert doc["answer"] in shown.stdout and doc["reasoning"] in shown.stdout
    found = ponder("chats", "search", "zebras", env=ponder_env)
    assert found.returncode == 0 and chat_id in found.stdout
    word = doc["reasoning"].split()[0]
    assert (
        chat_id not in ponder("chats", "search", "--json", word, env=ponder_env).stdout
        or word in doc["answer"].lower()
        or word in "tell me about zebras"
    )
    assert chat_id in ponder("chats", "search", "--reasoning", word, env=ponder_env).stdout
    out = tmp_path / "chat.md"
    assert (
        ponder("chats", "export", chat_id, "--format", "md", "-o", out, env=ponder_env).returncode
        == 0
    )
    assert doc["reasoning"] in out.read_text()
    assert ponder("chats", "rm", chat_id, env=ponder_env).returncode == 0
    assert_clean_error(
        ponder("chats", "show", chat_id, env=ponder_env), 1, f"no chat with id {chat_id}"
    )


def test_headless_run_never_imports_textual(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    code = (
        "import sys; from ponder.cli import main; "
        f"rc = main(['run', {str(gemma_path)!r}, '--grammar', {str(grammars['think'])!r}, "
        "'--ctx', '2048', '--no-save', 'hi']); "
        "assert 'textual' not in sys.modules, 'textual was imported'; sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=ponder_env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr


def test_killed_process_leaves_its_partial_reply_marked_interrupted(
    gemma_path: Path, grammars: dict[str, Path], ponder_env: dict[str, str]
) -> None:
    """SIGKILL gives no chance to clean up: the rows written while streaming must do."""
    proc = _start_long_run(gemma_path, grammars, ponder_env)
    read_stderr_until(proc, 200)
    time.sleep(0.6)  # past one history flush interval
    proc.kill()
    proc.wait(timeout=30)
    listed = ponder("chats", "export", "1", "--format", "json", env=ponder_env)
    assert listed.returncode == 0, listed.stderr
    reply = json.loads(listed.stdout)["messages"][1]
    assert reply["status"] == "interrupted"
    assert len(reply["reasoning"]) >= 100 and reply["content"] == ""


def test_a_closed_pipe_ends_quietly_and_keeps_the_partial_reply(
    gemma_path: Path, ponder_env: dict[str, str]
) -> None:
    """`ponder run ... | head -c 20`: no traceback, exit 0, the reply recorded."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ponder",
            "run",
            str(gemma_path),
            "--ctx",
            "2048",
            "--max-tokens",
            "300",
            "--reasoning",
            "hide",
            "Write a long story about a cat",
        ],
        env=ponder_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.read(20)
    proc.stdout.close()  # the reader goes away, as `head` does
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert len(first) == 20
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err
    doc = json.loads(ponder("chats", "export", "1", "--format", "json", env=ponder_env).stdout)
    assert doc["messages"][1]["status"] in {"interrupted", "length", "complete"}
    assert doc["messages"][1]["status"] != "streaming"
