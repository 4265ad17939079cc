"""Open a GGUF new to Ponder in a child process first, so that a llama.cpp abort costs
the child and not the user's chat; remember the verdict by the file's identity.

llama.cpp aborts the process (``GGML_ASSERT``, ``GGML_ABORT``) on some values it takes
on trust. :mod:`ponder.gguf_info.sanity` refuses the ones issue 13 found, but no list of
checks foresees every assert of every llama.cpp version. So before the first real load
of a file, a child (``python -m ponder.engine.preflight FILE``) loads its vocabulary
only (``vocab_only``: no tensor data is read; about a second on Gemma 3's 262k tokens)
and tokenizes a probe text with special tokens. A child killed by a signal means the
file would have killed Ponder: the load is refused with one line (exit 4). A child that
fails cleanly is left to the real load, whose message says why.

The verdict is remembered in Ponder's cache folder, keyed by the resolved path, size,
modification time and the llama-cpp-python version, so a file is checked once, and again
after it changes or llama.cpp is upgraded. The file is a cache: unreadable, it is
ignored, and a failure to write it is no reason to fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from ponder.engine.base import Engine, EngineLoader, LoadParams
from ponder.errors import ModelLoadError
from ponder.gguf_info import GGUFInfo

VERDICTS_FILE = "gguf_checks.json"
TIMEOUT_S = 120.0
_MAX_ENTRIES = 256
_MAX_FILE_BYTES = 1 << 20
_PROBE = "Hello, world! <|im_start|>user\n<start_of_turn>model\n<think>\n日本語 🎉</think>"


def checked_loader(verdicts: Path, load: EngineLoader | None = None) -> EngineLoader:
    """``load`` (the llama.cpp engine's by default), after :func:`check` on the file."""

    def checked(info: GGUFInfo, params: LoadParams) -> Engine:
        check(info.path, verdicts)
        if load is not None:
            return load(info, params)
        from ponder.engine.llama import LlamaEngine

        return LlamaEngine.load(info, params)

    return checked


def _identity(path: Path) -> str:
    stat = path.stat()
    try:
        version = metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        version = "?"
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|llama-cpp-python {version}"


def _read(verdicts: Path) -> dict[str, Any]:
    try:
        with verdicts.open("rb") as file:
            data = json.loads(file.read(_MAX_FILE_BYTES + 1)[:_MAX_FILE_BYTES])
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(verdicts: Path, key: str, verdict: dict[str, Any]) -> None:
    entries = _read(verdicts)
    entries.pop(key, None)
    entries[key] = verdict
    kept = dict(list(entries.items())[-_MAX_ENTRIES:])
    with contextlib.suppress(OSError):
        verdicts.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=verdicts.parent, prefix=".gguf_checks.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(kept, file)
            os.replace(tmp, verdicts)
        except OSError:
            os.unlink(tmp)


def _crash_error(message: str) -> ModelLoadError:
    return ModelLoadError(message, hint="download the model again, or try another quant of it")


def check(path: Path, verdicts: Path) -> None:
    """Raise ModelLoadError if opening ``path`` would abort llama.cpp (checked once)."""
    key = _identity(path)
    known = _read(verdicts).get(key)
    if isinstance(known, dict) and isinstance(known.get("crash"), str):
        raise _crash_error(known["crash"])
    if isinstance(known, dict) and known.get("ok") is True:
        return
    outcome = _run_child(path)
    if outcome is None:
        _remember(verdicts, key, {"ok": True})
        return
    _remember(verdicts, key, {"crash": outcome})
    raise _crash_error(outcome)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding ponder/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["GGML_NO_BACKTRACE"] = "1"  # no gdb dump of the child's stack
    return env


def _run_child(path: Path) -> str | None:
    """None when the child read the file (or failed cleanly); else why it is refused."""
    try:
        child = subprocess.run(
            [sys.executable, "-m", "ponder.engine.preflight", str(path)],
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise ModelLoadError(
            f"llama.cpp did not finish reading {path.name}'s vocabulary in {TIMEOUT_S:g} s",
            hint="the file may be damaged; download it again",
        ) from None
    if child.returncode >= 0:
        return None
    try:
        name = signal.Signals(-child.returncode).name
    except ValueError:
        name = f"signal {-child.returncode}"
    reason = _assert_line(child.stderr.decode("utf-8", errors="replace"))
    detail = f": {reason}" if reason else ""
    return f"llama.cpp crashed ({name}) reading {path.name}{detail}"


def _assert_line(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if "GGML_ASSERT" in line or "fatal error" in line or "terminate called" in line:
            text = line.strip()
            # "/long/build/path/llama-vocab.cpp:3207: fatal error" -> "llama-vocab.cpp:3207: ..."
            head, sep, tail = text.partition(": ")
            return f"{Path(head).name}{sep}{tail}"[:200]
    return None


def _probe(path: str) -> int:
    """In the child: load the vocabulary only and tokenize; 0 when llama.cpp managed."""
    import ctypes

    import llama_cpp

    llama_cpp.llama_backend_init()

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        if level >= 4:  # errors only
            sys.stderr.write(text.decode("utf-8", errors="replace"))

    llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(path.encode(), params)
    if not model:
        return 3
    vocab = llama_cpp.llama_model_get_vocab(model)
    raw = _PROBE.encode()
    buf = (llama_cpp.llama_token * (len(raw) + 2))()
    n = llama_cpp.llama_tokenize(vocab, raw, len(raw), buf, len(raw) + 2, True, True)
    piece = ctypes.create_string_buffer(256)
    for token in list(buf[: max(n, 0)]):
        llama_cpp.llama_token_to_piece(vocab, token, piece, 256, 0, True)
    llama_cpp.llama_model_free(model)
    return 0


if __name__ == "__main__":
    sys.exit(_probe(sys.argv[1]))
