"""Saved KV states: the files (keys, checksums, the cap, privacy, forgetting) and the
session's use of them over an engine that keeps a cache of its own (the scripted one,
given one), so a continued chat in a fresh session starts from its saved prefix."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from ponder.catalog import load_catalog
from ponder.config import Settings
from ponder.engine import GenerationStats, Injector, KVState, LoadParams, SamplingParams
from ponder.gguf_info import GGUFInfo
from ponder.paths import default_paths
from ponder.session import ModelOptions, ReplyRequest, Session
from ponder.session.kv_cache import KVCache, StateKey, common_prefix, model_identity
from support.scripted import Script, ScriptedEngine

MB = 1_000_000


def _state(tokens: Sequence[int], pad: int = 0) -> KVState:
    return KVState(tuple(tokens), bytearray(array("i", tokens).tobytes() + b"\x07" * pad))


def _key(model: Path, **engine: object) -> StateKey:
    return StateKey(model_identity(model), {"engine": "test", "n_ctx": 4096, **engine})


@pytest.fixture()
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + os.urandom(3 * (1 << 20)))
    return path


@pytest.fixture()
def cache(tmp_path: Path) -> KVCache:
    return KVCache(tmp_path / "cache" / "kv", 100 * MB)


# -- the files ---------------------------------------------------------------------------


def test_a_state_comes_back_as_written_from_a_private_file(
    cache: KVCache, model_file: Path
) -> None:
    key = _key(model_file)
    path = cache.write(7, key, _state(range(100, 300), pad=5000))
    assert path is not None and path.name.endswith("-7.kvstate")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.root.stat().st_mode) == 0o700
    found = cache.best(key, [*range(100, 250), 1, 2, 3])
    assert found is not None
    saved, shared = found
    assert shared == 150 and saved.chat_id == 7
    state = cache.read(saved)
    assert state is not None
    assert state.tokens == tuple(range(100, 300))
    assert bytes(state.data) == bytes(_state(range(100, 300), pad=5000).data)
    assert not list(cache.root.glob(".*.tmp"))  # written under a temporary name, renamed


def test_the_state_sharing_the_longest_prefix_wins(cache: KVCache, model_file: Path) -> None:
    key = _key(model_file)
    cache.write(1, key, _state([1, 2, 3, 4, 5, 6, 7, 8]))
    cache.write(2, key, _state([1, 2, 3, 9, 9]))
    found = cache.best(key, [1, 2, 3, 4, 5, 0])
    assert found is not None and found[0].chat_id == 1 and found[1] == 5
    assert cache.best(key, [1, 2, 3, 4, 5, 0], better_than=5) is None
    assert cache.best(key, [8, 8, 8]) is None


def test_a_state_made_under_another_key_is_never_used(
    cache: KVCache, model_file: Path, tmp_path: Path
) -> None:
    key = _key(model_file)
    cache.write(1, key, _state(range(50)))
    prompt = list(range(60))
    assert cache.best(_key(model_file, n_ctx=8192), prompt) is None
    assert cache.best(_key(model_file, engine="another build"), prompt) is None
    # The same bytes at another path, and the same path with other bytes: not this model.
    other = tmp_path / "other.gguf"
    other.write_bytes(model_file.read_bytes())
    assert cache.best(_key(other), prompt) is None
    data = bytearray(model_file.read_bytes())
    data[-10] ^= 0xFF
    stat_before = model_file.stat()
    model_file.write_bytes(bytes(data))
    os.utime(model_file, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))  # `cp -p`
    assert cache.best(_key(model_file), prompt) is None
    assert model_identity(model_file)["size"] == stat_before.st_size


def test_a_damaged_state_is_dropped_not_used(cache: KVCache, model_file: Path) -> None:
    key = _key(model_file)
    path = cache.write(3, key, _state(range(80), pad=1000))
    assert path is not None
    raw = bytearray(path.read_bytes())
    raw[-500] ^= 0x01
    path.write_bytes(bytes(raw))
    found = cache.best(key, list(range(80)))
    assert found is not None  # the header and tokens still read ...
    assert cache.read(found[0]) is None  # ... but the data fails its checksum
    assert not path.exists()


def test_a_state_replaced_between_its_header_and_its_data_is_left_alone(
    cache: KVCache, model_file: Path
) -> None:
    key = _key(model_file)
    cache.write(3, key, _state(range(80), pad=1000))
    found = cache.best(key, list(range(80)))
    assert found is not None
    newer = cache.write(3, key, _state(range(90), pad=1000))  # another process, meanwhile
    assert cache.read(found[0]) is None
    assert newer is not None and newer.exists()  # not taken for a damaged file
    again = cache.best(key, list(range(90)))
    assert again is not None and again[1] == 90 and cache.read(again[0]) is not None


@pytest.mark.parametrize(
    "content",
    [b"", b"PONDER-KV 1\n", b"not a state at all", b"PONDER-KV 1\n\xff\xff\xff\x7f{}"],
    ids=["empty", "magic only", "garbage", "huge header"],
)
def test_a_file_that_is_not_a_state_is_deleted(
    cache: KVCache, model_file: Path, content: bytes
) -> None:
    key = _key(model_file)
    cache.root.mkdir(parents=True)
    path = cache.root / f"{key.digest}-9.kvstate"
    path.write_bytes(content)
    assert cache.best(key, [1, 2, 3]) is None
    assert not path.exists()


def test_a_truncated_state_is_not_used(cache: KVCache, model_file: Path) -> None:
    key = _key(model_file)
    path = cache.write(4, key, _state(range(90), pad=2000))
    assert path is not None
    path.write_bytes(path.read_bytes()[:-1000])
    found = cache.best(key, list(range(90)))
    assert found is None or cache.read(found[0]) is None


def test_the_cap_keeps_the_most_recently_used(tmp_path: Path, model_file: Path) -> None:
    cache = KVCache(tmp_path / "kv", 35_000)  # three of these states, not four
    key = _key(model_file)
    paths = []
    for chat in (1, 2, 3):
        path = cache.write(chat, key, _state(range(chat, chat + 100), pad=9000))
        assert path is not None
        paths.append(path)
        past = time.time() - 100 + chat * 10
        os.utime(path, (past, past))
    # Chat 1's state, the oldest, is used: it becomes the most recent, so chat 2's goes.
    found = cache.best(key, list(range(1, 101)))
    assert found is not None and found[0].chat_id == 1 and cache.read(found[0]) is not None
    cache.write(4, key, _state(range(4, 104), pad=9000))
    assert [p.exists() for p in paths] == [True, False, True]
    assert (cache.root / f"{key.digest}-4.kvstate").exists()
    assert sum(p.stat().st_size for p in cache.root.glob("*.kvstate")) <= 35_000


def test_a_state_larger_than_the_cap_or_a_cap_of_zero_saves_nothing(
    tmp_path: Path, model_file: Path
) -> None:
    key = _key(model_file)
    small = KVCache(tmp_path / "small", 1000)
    assert small.write(1, key, _state(range(10), pad=5000)) is None
    off = KVCache(tmp_path / "off", 0)
    assert not off.enabled
    assert off.write(1, key, _state(range(10))) is None
    assert not (tmp_path / "off").exists()


def test_forgetting_a_chat_or_a_model(cache: KVCache, model_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + os.urandom(1000))
    cache.write(1, _key(model_file), _state(range(10)))
    cache.write(1, _key(other), _state(range(10)))
    cache.write(2, _key(model_file), _state(range(10)))
    assert cache.forget_chat(1) == 2
    assert [p.name.rpartition("-")[2] for p in cache.root.glob("*.kvstate")] == ["2.kvstate"]
    cache.write(3, _key(other), _state(range(10)))
    assert cache.forget_model([model_file]) == 1
    assert [p.name.rpartition("-")[2] for p in cache.root.glob("*.kvstate")] == ["3.kvstate"]


def test_the_sweep_drops_deleted_chats_gone_or_changed_models_and_stale_temporary_files(
    cache: KVCache, model_file: Path, tmp_path: Path
) -> None:
    gone_model = tmp_path / "gone.gguf"
    gone_model.write_bytes(b"GGUF" + os.urandom(1000))
    cache.write(1, _key(model_file), _state(range(10)))
    cache.write(2, _key(model_file), _state(range(10)))
    cache.write(5, _key(gone_model), _state(range(10)))
    gone_model.unlink()
    changed = tmp_path / "changed.gguf"
    changed.write_bytes(b"GGUF" + os.urandom(1000))
    cache.write(1, _key(changed), _state(range(10)))
    changed.write_bytes(b"GGUF" + os.urandom(2000))
    stale = cache.root / ".x.kvstate.1.2.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh_tmp = cache.root / ".y.kvstate.1.2.tmp"
    fresh_tmp.write_bytes(b"being written")
    listed_at = time.time() + 1  # every state above was written before the chats were listed
    # Chat 2's, the missing model's, the changed model's, the stale temporary file.
    assert cache.sweep({1, 5}, listed_at) == 4
    assert sorted(p.name.rpartition("-")[2] for p in cache.root.glob("*.kvstate")) == ["1.kvstate"]
    assert fresh_tmp.exists()
    # A state written after the list was taken is another process's new chat: kept.
    cache.write(6, _key(model_file), _state(range(10)))
    assert cache.sweep({1}, listed_at=time.time() - 60) == 0


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


# -- the session, over an engine that keeps a cache --------------------------------------


class KeepingEngine(ScriptedEngine):
    """The scripted engine with a KV cache of its own: it holds the prompt and what it
    said, token by token, and its state's bytes are those tokens."""

    instances: ClassVar[list[KeepingEngine]] = []

    def __init__(self, info: GGUFInfo, params: LoadParams, script: Script) -> None:
        super().__init__(info, params, script)
        self.held: list[int] = []
        self.restored: list[int] = []
        self.evaluated: list[int] = []
        self.save_gate: threading.Event | None = None
        KeepingEngine.instances.append(self)

    def generate(
        self,
        prompt_tokens: Sequence[int],
        sampling: SamplingParams,
        stats: GenerationStats,
        cancel: threading.Event | None = None,
        inject: Injector | None = None,
    ) -> Iterator[str]:
        inner = super().generate(prompt_tokens, sampling, stats, cancel, inject)
        shared = common_prefix(self.held, prompt_tokens)
        stats.cached_tokens = shared
        self.evaluated.append(len(prompt_tokens) - shared)
        self.held = list(prompt_tokens)

        def run() -> Iterator[str]:
            for text in inner:
                self.held.extend(self.tokenize(text, add_bos=False))
                yield text

        return run()

    def state_identity(self) -> dict[str, object]:
        return {"engine": "keeping", "n_ctx": self.n_ctx}

    def cached_tokens(self) -> list[int]:
        return list(self.held)

    def keep_prefix(self, n_tokens: int) -> bool:
        self.held = self.held[: max(n_tokens, 0)]
        return True

    def save_state(self) -> KVState | None:
        if self.save_gate is not None:
            assert self.save_gate.wait(10)
        return _state(self.held) if self.held else None

    def load_state(self, state: KVState, keep: int) -> bool:
        assert bytes(state.data) == array("i", state.tokens).tobytes()
        self.held = list(state.tokens[:keep])
        self.restored.append(keep)
        return True


def _session(script: Script, **settings: object) -> Session:
    paths = default_paths()

    def load(info: GGUFInfo, params: LoadParams) -> KeepingEngine:
        return KeepingEngine(info, params, script)

    return Session(
        settings=Settings(**settings),  # type: ignore[arg-type]
        paths=paths,
        catalog=load_catalog(),
        history_path=paths.history_db,
        load_engine=load,
    )


def _states(ponder_home: Path) -> list[Path]:
    return sorted((ponder_home / "cache" / "kv").glob("*.kvstate"))


def _header(path: Path) -> dict[str, object]:
    raw = path.read_bytes()
    length = int.from_bytes(raw[12:16], "little")
    return json.loads(raw[16 : 16 + length])  # type: ignore[no-any-return]


def _first_chat(ponder_home: Path, r1_gemma: Path, prompt: str = "What is 17*23?") -> int:
    session = _session(Script())
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    reply = model.reply(ReplyRequest(prompt=prompt * 30))
    reply.drain()
    session.close()  # waits for the state to be written
    assert reply.chat_id is not None
    return reply.chat_id


def test_a_chat_continued_in_a_new_session_starts_from_its_saved_prefix(
    ponder_home: Path, r1_gemma: Path
) -> None:
    chat_id = _first_chat(ponder_home, r1_gemma)
    (path,) = _states(ponder_home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = KeepingEngine.instances[-1]
    first_prompt = first.evaluated[0]

    session = _session(Script())
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    reply = model.reply(ReplyRequest(prompt="and times 3?", chat_id=chat_id))
    finished = reply.drain()
    engine = KeepingEngine.instances[-1]
    (restored,) = engine.restored
    # R1: the answer goes back without its thinking, so the state was cut where the
    # prompt ended (before the <think> prefill): the trace itself is not in it...
    assert first_prompt - 5 <= restored <= first_prompt
    assert _header(path)["n_tokens"] == restored
    # ... and the new turn evaluated only what follows the shared prefix.
    assert engine.evaluated == [finished.usage.prompt_tokens - restored]
    assert finished.usage.cached_tokens == restored
    session.close()


def test_other_load_parameters_never_use_the_state(ponder_home: Path, r1_gemma: Path) -> None:
    chat_id = _first_chat(ponder_home, r1_gemma)
    session = _session(Script())
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=8192))
    finished = model.reply(ReplyRequest(prompt="and times 3?", chat_id=chat_id)).drain()
    assert KeepingEngine.instances[-1].restored == []
    assert finished.usage.cached_tokens == 0
    session.close()
    assert len(_states(ponder_home)) == 2  # one per key


def test_a_reply_that_is_not_saved_leaves_no_state(ponder_home: Path, r1_gemma: Path) -> None:
    session = _session(Script())
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    model.reply(ReplyRequest(prompt="What is 17*23?" * 30, save=False)).drain()
    session.close()
    assert _states(ponder_home) == []
    session = _session(Script(), kv_cache_mb=0)
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    model.reply(ReplyRequest(prompt="What is 17*23?" * 30)).drain()
    session.close()
    assert _states(ponder_home) == []


def test_the_reply_ends_before_its_state_is_saved(ponder_home: Path, r1_gemma: Path) -> None:
    session = _session(Script())
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    gate = threading.Event()
    KeepingEngine.instances[-1].save_gate = gate
    reply = model.reply(ReplyRequest(prompt="What is 17*23?" * 30))
    finished = reply.drain()  # returns while the copy of the cache is held
    assert finished.finish_reason == "stop" and _states(ponder_home) == []
    # The next reply waits for the copy, not for an error ("still streaming").
    second: list[object] = []
    worker = threading.Thread(
        target=lambda: second.append(
            model.reply(ReplyRequest(prompt="more", chat_id=reply.chat_id)).drain()
        )
    )
    worker.start()
    time.sleep(0.2)
    assert not second
    gate.set()
    worker.join(10)
    assert second and not isinstance(second[0], Exception)
    session.close()
    assert len(_states(ponder_home)) == 1


def test_deleting_a_chat_or_its_model_deletes_its_states(
    ponder_home: Path, r1_gemma: Path, tmp_path: Path
) -> None:
    chat_id = _first_chat(ponder_home, r1_gemma)
    session = _session(Script())
    session.delete_chat(chat_id)
    assert _states(ponder_home) == []

    linked = session.import_model(r1_gemma, name="r1-test", link=True)
    model = session.open_model(linked.name, ModelOptions(n_ctx=4096))
    model.reply(ReplyRequest(prompt="What is 17*23?" * 30)).drain()
    session.close()
    assert len(_states(ponder_home)) == 1
    session = _session(Script())
    session.remove_model("r1-test")
    session.close()
    assert _states(ponder_home) == []
    assert r1_gemma.exists()  # a linked file is left alone; its states are not


def test_a_chat_deleted_elsewhere_loses_its_state_at_the_next_save(
    ponder_home: Path, r1_gemma: Path
) -> None:
    deleted = _first_chat(ponder_home, r1_gemma)
    kept = _first_chat(ponder_home, r1_gemma, prompt="Another question. ")
    time.sleep(0.05)
    session = _session(Script())
    session.require_history().delete_chat(deleted)  # as the chat UI deletes it
    model = session.open_model(str(r1_gemma), ModelOptions(n_ctx=4096))
    reply = model.reply(ReplyRequest(prompt="A third question entirely. " * 30))
    reply.drain()
    session.close()
    chats = sorted(int(str(_header(p)["chat_id"])) for p in _states(ponder_home))
    assert chats == sorted([kept, reply.chat_id])
