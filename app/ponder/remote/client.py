"""HTTP to one OpenAI-compatible server: the connection, retries, and what a refusal means.

Over ``httpx2`` (already installed with huggingface_hub), synchronous, like the rest of
Ponder's engines: the session iterates a reply in a worker thread and needs no event loop.

* **Retries only before the first byte.** A connect error, a 429 or a 503 (vLLM and
  llama-server answer 503 while the model is still loading) is tried again, a bounded
  number of times with a growing pause (``Retry-After`` is honoured up to a cap). Once the
  server has taken the request and answered 200, nothing is sent twice: a second request
  would generate a second reply.
* **Refusals become one line with the fix** (:mod:`ponder.remote.errors`): 401/403 name
  the environment variable that holds the key, a prompt over the server's context is exit
  5 with the server's numbers, anything else quotes the server's own message. The
  caller (:mod:`ponder.remote.engine`) turns an unknown model into exit 3 with a "did
  you mean" from the server's model list.
* **Secrets.** The key is sent only as ``Authorization: Bearer`` to this server; redirects
  are not followed, so it never travels to another host. It is never logged and never put
  in a message; a URL in a message is shown without ``user:password@``. ``RemoteSettings``
  leaves the key out of its ``repr``.
* **Timeouts.** ``timeout`` bounds each wait for the server (the answer to the request,
  then every next piece of the stream), so a server that stalls is given up on; connecting
  has its own, shorter bound.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx2

from ponder.remote.dialects import error_of
from ponder.remote.errors import (
    RemoteAuthError,
    RemoteConnectError,
    RemoteContextOverflowError,
    RemoteError,
    RemoteHTTPError,
    RemoteStreamError,
    RemoteTimeoutError,
    display_url,
)
from ponder.remote.sse import SSEEvent, SSEParser

log = logging.getLogger("ponder.remote")

RETRY_STATUSES = frozenset({429, 503})
MAX_ERROR_BODY = 64 * 1024
_CONTEXT_RE = re.compile(r"context (length|size|window)|maximum context|too long", re.IGNORECASE)
_NUMBERS = (
    # llama-server: "request (1211 tokens) exceeds the available context size (1024 tokens)"
    re.compile(r"\((\d+) tokens\) exceeds the available context size \((\d+) tokens\)"),
    # SGLang: "The input (5000 tokens) is longer than the model's context length (4096 tokens)"
    re.compile(r"input \((\d+) tokens\) is longer than the model's context length \((\d+)"),
)
# vLLM: "This model's maximum context length is 4096 tokens. However, you requested 5000 ..."
_VLLM_NUMBERS = re.compile(r"maximum context length is (\d+) tokens.*?requested (\d+)", re.S)


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    """How to reach one server. ``url`` is the API base, ending in ``/v1`` as a rule."""

    url: str
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None  # where the key came from, for messages (never the key)
    verify_tls: bool = True
    timeout_s: float = 300.0
    connect_timeout_s: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    retries: int = 3
    retry_backoff_s: float = 0.5
    max_retry_wait_s: float = 5.0


class RemoteClient:
    """One server's connection pool; :meth:`close` it when done."""

    def __init__(
        self, settings: RemoteSettings, *, transport: httpx2.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.base_url = settings.url.rstrip("/")
        # The server's own endpoints (/props, /version, ...) sit beside /v1, not under it.
        self.root_url = re.sub(r"/v1$", "", self.base_url)
        self.display_url = display_url(self.base_url)
        headers = {"User-Agent": "ponder", **settings.headers}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        self._http = httpx2.Client(
            headers=headers,
            verify=settings.verify_tls,
            timeout=httpx2.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # -- plain requests (the probe) --------------------------------------------------

    def get_json(self, path: str, *, root: bool = False) -> Any | None:
        """GET ``path`` once; its JSON, or None when the server has no such endpoint.

        Connection failures and 401/403 raise: they say something about the server, not
        about the endpoint.
        """
        url = (self.root_url if root else self.base_url) + path
        try:
            response = self._http.get(url, timeout=min(self.settings.timeout_s, 30.0))
        except httpx2.TimeoutException:
            raise self._timeout(during="answering " + path) from None
        except httpx2.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code in (401, 403):
            raise self._auth_error(response.status_code)
        if response.status_code != 200:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    # -- the streamed completion -------------------------------------------------------

    def open_stream(self, path: str, body: Mapping[str, Any]) -> httpx2.Response:
        """POST ``body`` and return the 200 response, still unread; refusals raise.

        Retries as the module docstring says; the caller must close the response.
        """
        request = self._http.build_request(
            "POST", self.base_url + path, json=dict(body), headers={"Accept": "text/event-stream"}
        )
        settings = self.settings
        for attempt in range(settings.retries + 1):
            last = attempt == settings.retries
            try:
                response = self._http.send(request, stream=True)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
                if last:
                    raise self._unreachable(exc) from None
                log.debug("connecting to %s failed, trying again", self.display_url)
                time.sleep(self._pause(attempt, None))
                continue
            except httpx2.TimeoutException:
                raise self._timeout(during="answering the request") from None
            except httpx2.TransportError as exc:
                raise self._unreachable(exc) from None
            if response.status_code == 200:
                return response
            status = response.status_code
            text = _read_error_body(response)
            if status in RETRY_STATUSES and not last:
                pause = self._pause(attempt, response.headers.get("Retry-After"))
                log.debug("%s answered %d, trying again in %.1fs", self.display_url, status, pause)
                time.sleep(pause)
                continue
            raise self._refusal(status, text)
        raise AssertionError("unreachable")  # pragma: no cover

    def events(self, response: httpx2.Response) -> Iterator[SSEEvent]:
        """The events of a streamed response; a broken or stalled stream raises."""
        parser = SSEParser()
        try:
            for chunk in response.iter_bytes():
                yield from parser.feed(chunk)
        except httpx2.TimeoutException:
            raise self._timeout(during="sending the reply") from None
        except httpx2.TransportError as exc:
            raise RemoteStreamError(
                f"the connection to {self.display_url} broke mid-reply ({type(exc).__name__})",
                hint="try again; if it keeps happening, check the server's log",
            ) from None
        yield from parser.close()

    # -- errors ----------------------------------------------------------------------

    def _pause(self, attempt: int, retry_after: str | None) -> float:
        wait = self.settings.retry_backoff_s * (2**attempt)
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                wait = float(retry_after)
        return float(max(0.0, min(wait, self.settings.max_retry_wait_s)))

    def _unreachable(self, exc: Exception) -> RemoteConnectError:
        reason = _reason(exc)
        return RemoteConnectError(
            f"cannot reach {self.display_url}: {reason}",
            hint="check that the server is running and the URL is right",
        )

    def _timeout(self, *, during: str) -> RemoteTimeoutError:
        return RemoteTimeoutError(
            f"{self.display_url} took longer than {self.settings.timeout_s:g}s {during}",
            hint="the server may be overloaded; raise the remote's timeout or try again",
        )

    def _auth_error(self, status: int) -> RemoteAuthError:
        env = self.settings.api_key_env
        if self.settings.api_key:
            what = "refused the API key" if status == 401 else "does not allow this API key"
            hint = f"check the key in {env}" if env else "check the remote's API key"
        else:
            what = "needs an API key"
            hint = (
                f"set {env} to the server's key"
                if env
                else "add the remote again with --api-key-env VAR, and set VAR to the key"
            )
        return RemoteAuthError(f"{self.display_url} {what} (HTTP {status})", hint=hint)

    def _refusal(self, status: int, text: str) -> RemoteError | RemoteContextOverflowError:
        if status in (401, 403):
            return self._auth_error(status)
        message, kind, payload = _server_message(text)
        if kind == "exceed_context_size_error" or (
            status in (400, 413, 422) and _CONTEXT_RE.search(message)
        ):
            return _overflow(message, payload)
        shown = message or f"HTTP {status}"
        return RemoteHTTPError(
            f"{self.display_url} refused the request: {shown}",
            status=status,
            hint=None if status < 500 else "the server failed; check its log",
        )


def _read_error_body(response: httpx2.Response) -> str:
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > MAX_ERROR_BODY:
                break
    except httpx2.HTTPError:
        pass
    finally:
        response.close()
    return data[:MAX_ERROR_BODY].decode("utf-8", errors="replace")


def _server_message(text: str) -> tuple[str, str | None, dict[str, Any]]:
    """(message, error type, the error object) from an error body, JSON or plain text."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return " ".join(text.split())[:300], None, {}
    err = error_of(obj)
    if err is None:
        return " ".join(text.split())[:300], None, {}
    payload = obj.get("error") if isinstance(obj.get("error"), dict) else obj
    return err.message, err.kind, payload if isinstance(payload, dict) else {}


def _overflow(message: str, payload: Mapping[str, Any]) -> RemoteContextOverflowError:
    hint = "shorten the prompt, start a new chat, or serve the model with a longer context"
    n_prompt, n_ctx = payload.get("n_prompt_tokens"), payload.get("n_ctx")
    if not (isinstance(n_prompt, int) and isinstance(n_ctx, int)):
        n_prompt = n_ctx = None
        for pattern in _NUMBERS:
            if match := pattern.search(message):
                n_prompt, n_ctx = int(match[1]), int(match[2])
        if match := _VLLM_NUMBERS.search(message):
            n_ctx, n_prompt = int(match[1]), int(match[2])
    if n_prompt is not None and n_ctx is not None:
        return RemoteContextOverflowError(
            f"the prompt is {n_prompt:,} tokens but the server's context holds {n_ctx:,}",
            hint=hint,
        )
    return RemoteContextOverflowError(f"the server refused the prompt: {message}", hint=hint)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if (
        "name or service not known" in lowered
        or "nodename nor servname" in lowered
        or ("getaddrinfo" in lowered)
    ):
        return "the host name does not resolve"
    if "refused" in lowered:
        return "connection refused"
    if "certificate" in lowered or "ssl" in lowered:
        return "TLS failed (" + text[:120] + ")"
    return text[:160]
