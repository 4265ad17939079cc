"""One loaded model's side of the saved KV states: restore before a reply, save after it.

:mod:`.kv_cache` keeps the files; this module decides what goes into them and when, for
the :class:`~ponder.session.loaded.LocalModel` it belongs to:

* **Before a reply**, if a saved state shares more of the prompt than the context
  already holds (a new process, or another chat in between), it is restored and cut
  to the shared prefix; the engine then evaluates only the rest.
* **After a reply**, the cache is cut to the prefix the *next* turn will share and
  saved. The next prompt is known but for its new user message: the same turns, this
  reply as the history will send it back, then a user turn. Under the R1 policy the
  reply goes back without its reasoning, so what the context holds after the prompt
  (``<think>\\n``, the trace, the answer) is not what the next prompt holds; cutting
  to the common prefix keeps exactly the part that will be used, and no trace.

Saving never delays the reply: the reply's ``Finished`` event goes out first, and a
thread of its own copies the cache (holding the model, so no new reply drives the
engine meanwhile; a new reply waits for the copy, tens of milliseconds, not for the
write), then releases the model and writes the file. Closing the model waits for the
write, so ``ponder run`` leaves its state on disk when it exits. A failure here is
logged at debug level (logger ``ponder.kv_cache``; nothing reaches a terminal the chat
UI may own) and forgotten: the cache is never worth a failed reply
(docs/architecture.md#continued-chats).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ponder.engine import KeepsState, KVState
from ponder.history import History
from ponder.session.kv_cache import KVCache, StateKey, common_prefix, model_identity
from ponder.store import Store

log = logging.getLogger("ponder.kv_cache")

MIN_SAVED_TOKENS = 64  # a shorter prefix is re-read faster than its file
MIN_GAIN_TOKENS = 32  # restore only when it spares at least this many tokens
SNAPSHOT_WAIT_S = 60.0

NextPrefix = Callable[[], Sequence[int] | None]
LiveChats = Callable[[], set[int] | None]


@dataclass(frozen=True, slots=True)
class SaveReport:
    """What the last save cost: the copy holds the model, the write does not."""

    tokens: int
    nbytes: int
    copy_s: float
    write_s: float


class ChatStates:
    """Restores and saves the KV cache of one loaded model's chats."""

    def __init__(
        self, cache: KVCache, engine: KeepsState, key: StateKey, live_chats: LiveChats
    ) -> None:
        self.cache = cache
        self._engine = engine
        self.key = key
        self._live_chats = live_chats
        self._copied = threading.Event()
        self._copied.set()
        self._threads: list[threading.Thread] = []  # saves still writing, perhaps
        self.restored = 0  # tokens the last restore brought back (0: none)
        self.last_save: SaveReport | None = None

    @classmethod
    def create(
        cls,
        cache: KVCache,
        engine: object,
        model_path: Path,
        sha256: str | None,
        live_chats: LiveChats,
    ) -> ChatStates | None:
        """None when there is nothing to do: saving is off, the engine keeps no state,
        or the model file cannot be identified."""
        if not cache.enabled or not isinstance(engine, KeepsState):
            return None
        try:
            key = StateKey(model_identity(model_path, sha256), engine.state_identity())
        except OSError as exc:
            log.debug("not saving chat states: %s", exc)
            return None
        return cls(cache, engine, key, live_chats)

    # -- before a reply ------------------------------------------------------------

    def restore(self, prompt: Sequence[int]) -> int:
        """Restore the saved state sharing the most of ``prompt`` when it beats what the
        context holds; the number of tokens restored (0 when none was)."""
        self.restored = 0
        try:
            held = reuse_safely(self._engine, prompt)
            found = self.cache.best(self.key, prompt, better_than=held + MIN_GAIN_TOKENS)
            if found is None:
                return 0
            saved, shared = found
            # Never the whole prompt: the last token is evaluated again for its logits.
            shared = min(shared, len(prompt) - 1)
            state = self.cache.read(saved)
            if state is None or not self._engine.load_state(state, keep=shared):
                return 0
        except Exception as exc:  # a cache: the reply goes on without it
            log.debug("could not restore a saved chat state: %s", exc)
            self._engine.keep_prefix(0)  # whatever the context holds now, it starts empty
            return 0
        self.restored = shared
        return shared

    def wait_copied(self) -> None:
        """Wait until the last reply's cache is copied (before a new reply runs)."""
        self._copied.wait(SNAPSHOT_WAIT_S)

    # -- after a reply ---------------------------------------------------------------

    def save_later(
        self, chat_id: int, next_prefix: NextPrefix, fallback: int, release: Callable[[], None]
    ) -> None:
        """Copy the cache of what the next turn will share, then ``release`` the model,
        then write it, in a thread of its own. ``next_prefix`` gives the next prompt's
        start; when it cannot, the first ``fallback`` tokens (the prompt) are kept."""
        self._copied.clear()

        def run() -> None:
            try:
                started = time.monotonic()
                try:
                    state = self._copy(next_prefix, fallback)
                finally:
                    release()
                    self._copied.set()
                copied = time.monotonic()
                if state is not None and self.cache.write(chat_id, self.key, state):
                    written = time.monotonic()
                    self.last_save = SaveReport(
                        len(state.tokens), state.nbytes, copied - started, written - copied
                    )
                    log.debug("saved chat %s: %s", chat_id, self.last_save)
                    self._sweep()
            except Exception as exc:  # a cache: log it, never fail anything for it
                log.debug("could not save the state of chat %s: %s", chat_id, exc)

        thread = threading.Thread(target=run, name=f"ponder-kv-save-{chat_id}")
        try:
            thread.start()
        except BaseException:
            self._copied.set()
            release()
            raise
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def join(self) -> None:
        """Wait for every save to be written."""
        while self._threads:
            self._threads.pop().join()

    def _copy(self, next_prefix: NextPrefix, fallback: int) -> KVState | None:
        engine = self._engine
        held = engine.cached_tokens()
        try:
            upcoming = next_prefix()
        except Exception as exc:  # a template that renders this turn may still refuse the next
            log.debug("next prompt not predicted: %s", exc)
            upcoming = None
        keep = common_prefix(held, upcoming) if upcoming is not None else min(fallback, len(held))
        if keep < MIN_SAVED_TOKENS or not engine.keep_prefix(keep):
            return None
        return engine.save_state()

    def _sweep(self) -> None:
        listed_at = time.time()
        try:
            live = self._live_chats()
        except Exception as exc:
            log.debug("chats not listed for the sweep: %s", exc)
            live = None
        self.cache.sweep(live, listed_at)


def store_sha256(store: Store, name: str, path: Path) -> str | None:
    """The store's sha256 of ``path`` when it is installed model ``name``'s file."""
    found = store.find(name)
    if found is None or found.unverified or store.primary_path(found) != path:
        return None
    return found.files[0].sha256


def chat_ids(history: History | None) -> set[int] | None:
    """Every chat in the history, for the sweep (None: the history is not open)."""
    if history is None:
        return None
    return {chat.id for chat in history.list_chats(limit=1 << 40)}


def reuse_safely(engine: KeepsState, prompt: Sequence[int]) -> int:
    """Cut the context's cache to what ``prompt`` shares with it, or empty it when that
    cut could not be gone on from; how many tokens it keeps.

    ``Llama.generate()`` makes the same cut without asking whether a sliding window's
    cells are there. In a context that evaluated its tokens itself they all are, but a
    restored state of a sliding-window model holds only its last window (llama.cpp
    writes no cell the last position does not attend to): after a restore on Gemma 3,
    another chat sharing only its first tokens would have gone on with five layers in
    six missing the window before the cut.
    """
    held = engine.cached_tokens()
    shared = min(common_prefix(held, prompt), len(prompt) - 1)
    if shared >= len(held):
        return shared
    if engine.keep_prefix(shared):
        return shared
    engine.keep_prefix(0)
    return 0
