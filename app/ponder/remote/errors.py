"""The errors of a remote engine, each a :class:`PonderError` with its exit code and the fix.

They live apart from :mod:`ponder.errors` because only the remote engine raises them, and
the front ends need nothing from them beyond what every :class:`PonderError` has: a
one-line ``message``, a ``hint`` and an ``exit_code``. Two of them subclass the existing
errors (:class:`ModelNotFoundError`, exit 3; :class:`ContextOverflowError`, exit 5), so a
script sees the same code for an unknown model or a long prompt whether the model runs
here or on a server.

An error raised after the reply started carries what had arrived so far
(``partial_reasoning``, ``partial_answer``), so the caller can keep the partial reply, as a
local run keeps it on Ctrl-C.

None of them ever holds the API key: messages name the environment variable, never its
value, and a URL is shown without any ``user:password@`` part (:func:`display_url`).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ponder.errors import ContextOverflowError, ModelNotFoundError, PonderError


class RemoteError(PonderError):
    """Something went wrong talking to a remote server (exit 1)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        partial_reasoning: str = "",
        partial_answer: str = "",
    ) -> None:
        super().__init__(message, hint=hint)
        self.partial_reasoning = partial_reasoning
        self.partial_answer = partial_answer

    @property
    def started(self) -> bool:
        """True when part of a reply had arrived before the error."""
        return bool(self.partial_reasoning or self.partial_answer)


class RemoteConnectError(RemoteError):
    """Connection refused, a DNS failure, a TLS failure: nothing reached the server."""


class RemoteTimeoutError(RemoteError):
    """The server took longer than the timeout to connect, answer or send the next piece."""


class RemoteAuthError(RemoteError):
    """401/403: the server wants a (different) API key."""


class RemoteHTTPError(RemoteError):
    """Any other refusal: the status and the server's own message."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class RemoteStreamError(RemoteError):
    """The reply broke off: an ``error`` object mid-stream, or the connection closed early."""


class RemoteModelNotFoundError(ModelNotFoundError):
    """The server does not serve the model asked for (exit 3)."""


class RemoteContextOverflowError(ContextOverflowError):
    """The server refused the prompt as longer than its context (exit 5)."""


def display_url(url: str) -> str:
    """``url`` as it may appear in a message: without ``user:password@``, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
