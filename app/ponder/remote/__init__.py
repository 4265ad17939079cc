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

The session reaches it through :class:`ponder.session.remote_model.RemoteModel` (a
``LoadedModel`` whose deltas come from :meth:`RemoteEngine.stream`) and the remotes use
cases in :mod:`ponder.session.remotes`; docs/remote.md is the user's guide and
docs/architecture.md#remote-models the design.
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
