"""Which server is behind a URL, which version, and which models it serves: asked once.

Every server speaks the same ``/v1/chat/completions``, but they differ in what else they
take (llama-server's ``grammar``, vLLM's ``repetition_penalty`` where llama-server says
``repeat_penalty``, no ``top_k`` on Ollama's ``/v1``), so the engine needs the kind. Each
server has one endpoint of its own that the others lack, asked in this order:

=================  ==========================  ==========================================
kind               endpoint (beside ``/v1``)   what identifies it
=================  ==========================  ==========================================
``llama-server``   ``GET /props``              ``default_generation_settings``, ``build_info``
``sglang``         ``GET /get_server_info``    the server args (``model_path``, ``tp_size``)
``vllm``           ``GET /version``            ``{"version": "0.x"}``
``ollama``         ``GET /api/version``        ``{"version": "0.x"}``
``lmstudio``       ``GET /api/v0/models``      models with ``publisher`` / ``state``
``openai``         (none of the above)         any other OpenAI-compatible server
=================  ==========================  ==========================================

SGLang is asked before vLLM because a ``/version`` alone proves little; ``/get_server_info``
is SGLang's own. The model ids come from ``GET /v1/models`` for every kind (llama-server
adds ``aliases``). The result is meant to be remembered per remote, so a reply costs no
probe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ponder.remote.client import RemoteClient
from ponder.remote.errors import RemoteError

ServerKind = Literal["llama-server", "sglang", "vllm", "ollama", "lmstudio", "openai"]
KINDS: tuple[ServerKind, ...] = ("llama-server", "sglang", "vllm", "ollama", "lmstudio", "openai")


@dataclass(frozen=True, slots=True)
class ServerInfo:
    kind: ServerKind
    version: str | None = None
    models: tuple[str, ...] = ()  # ids, then aliases that differ from them
    n_ctx: int | None = None  # the context per request, where the server says

    @property
    def label(self) -> str:
        """The kind and version, as one shows them: "vllm 0.11.0"."""
        return f"{self.kind} {self.version}" if self.version else self.kind


def probe(client: RemoteClient) -> ServerInfo:
    """Detect the server kind and list its models (a handful of GETs, once)."""
    kind: ServerKind = "openai"
    version: str | None = None
    n_ctx: int | None = None
    if isinstance(props := client.get_json("/props", root=True), dict) and (
        "default_generation_settings" in props or "build_info" in props
    ):
        kind, version = "llama-server", _str(props.get("build_info"))
        settings = props.get("default_generation_settings")
        n_ctx = _int(settings.get("n_ctx")) if isinstance(settings, dict) else None
    elif isinstance(info := client.get_json("/get_server_info", root=True), dict) and (
        "model_path" in info or "tp_size" in info
    ):
        kind, version = "sglang", _str(info.get("version"))
        n_ctx = _int(info.get("context_length"))
    elif isinstance(ver := client.get_json("/version", root=True), dict) and _str(
        ver.get("version")
    ):
        kind, version = "vllm", _str(ver.get("version"))
    elif isinstance(ver := client.get_json("/api/version", root=True), dict) and _str(
        ver.get("version")
    ):
        kind, version = "ollama", _str(ver.get("version"))
    elif _is_lmstudio(client.get_json("/api/v0/models", root=True)):
        kind = "lmstudio"
    listing = client.get_json("/models")
    if kind == "openai" and not _is_listing(listing):
        # Nothing identified the server, and it has no model list: not one of ours.
        raise RemoteError(
            f"{client.display_url} does not answer like an OpenAI-compatible server "
            "(no model list at /models)",
            hint="check the URL: it is the API base, which usually ends in /v1",
        )
    return ServerInfo(kind=kind, version=version, models=_model_ids(listing), n_ctx=n_ctx)


def list_models(client: RemoteClient) -> tuple[str, ...]:
    """The model ids from ``/v1/models``, then llama-server's aliases; () if none listed.

    An alias that repeats an id (llama-server lists ``--alias`` as both) appears once.
    """
    return _model_ids(client.get_json("/models"))


def _is_listing(listing: Any) -> bool:
    return isinstance(listing, dict) and isinstance(listing.get("data"), list)


def _model_ids(listing: Any) -> tuple[str, ...]:
    data = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(data, list):
        return ()
    entries = [e for e in data if isinstance(e, dict)]
    names: list[object] = [e.get("id") for e in entries]
    for entry in entries:
        aliases = entry.get("aliases")
        if isinstance(aliases, list):
            names += aliases
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def _is_lmstudio(listing: Any) -> bool:
    data = listing.get("data") if isinstance(listing, dict) else None
    return isinstance(data, list) and any(
        isinstance(m, dict) and ("publisher" in m or "state" in m) for m in data
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
