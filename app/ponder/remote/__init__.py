"""Remote engines: a model on an OpenAI-compatible server (llama-server, vLLM, SGLang,
Ollama, LM Studio), streamed with the same reasoning split, usage and errors as a local run.

Modules, one job each:

* :mod:`.sse` — server-sent events from raw bytes (written here; see why there).
* :mod:`.dialects` — one chunk of any server into typed deltas (``reasoning_content`` or
  ``reasoning``, else Ponder's ``<think>`` splitter under the model's prompt policy).
* :mod:`.client` — HTTP over httpx2: the key, TLS, timeouts, retries before the first
  byte, and what each refusal means.
* :mod:`.probe` — which server it is, its version and its models, asked once.
* :mod:`.engine` — :class:`RemoteEngine`: turns and sampling in, deltas and a result out.
* :mod:`.errors` — the errors, each with its exit code and the fix.

Nothing here imports ``llama_cpp``, ``huggingface_hub`` or ``textual``, and nothing runs at
import time.

What is left for issue 10 (this package is only its engine core):

* A message-level seam in ``ponder.session``: its ``Engine`` protocol is token-level
  (tokenize, generate tokens), so ``LoadedModel.reply`` needs a path that hands turns to
  :meth:`RemoteEngine.stream` and maps :class:`RemoteResult` to ``Finished`` (usage,
  timings, ``timings_source`` into ``--json``), and saves the partial reply of a
  :class:`~ponder.remote.errors.RemoteError` whose ``started`` is true.
* ``[remotes.NAME]`` in the config, ``ponder remote add/list/test/rm``, ``NAME:MODEL``
  references (refusing names that clash with catalog families), the TUI's model picker,
  remembering the probe's :class:`ServerInfo` per remote, reading the key from
  ``api_key_env`` only, and the one-time warning for plain ``http://`` to a host that is
  not loopback.
* Wrap up (Ctrl+G): close the stream and ask again with the reasoning so far plus
  ``</think>`` as the start of the assistant message (vLLM/SGLang
  ``continue_final_message``, llama-server's assistant prefill).
* ``--grammar`` for vLLM (``structured_outputs``) and SGLang (``ebnf``): refused for now.
* The catalog's remote-only R1 / R1-0528 671B entries, ``docs/remote.md``, and
  ``bench/bench_remote.py``.
"""

from ponder.remote.client import RemoteClient, RemoteSettings
from ponder.remote.engine import RemoteEngine, RemoteResult, RemoteStream
from ponder.remote.errors import (
    RemoteAuthError,
    RemoteConnectError,
    RemoteContextOverflowError,
    RemoteError,
    RemoteHTTPError,
    RemoteModelNotFoundError,
    RemoteStreamError,
    RemoteTimeoutError,
)
from ponder.remote.probe import ServerInfo, ServerKind, probe

__all__ = [
    "RemoteAuthError",
    "RemoteClient",
    "RemoteConnectError",
    "RemoteContextOverflowError",
    "RemoteEngine",
    "RemoteError",
    "RemoteHTTPError",
    "RemoteModelNotFoundError",
    "RemoteResult",
    "RemoteSettings",
    "RemoteStream",
    "RemoteStreamError",
    "RemoteTimeoutError",
    "ServerInfo",
    "ServerKind",
    "probe",
]
