"""One remote server as the user configured it: a ``[remotes.NAME]`` table in config.toml.

Only how to reach the server lives here. The API key itself never does: ``api_key_env``
names the environment variable that holds it, and the key is read from there when a
request is made (see :meth:`RemoteConfig.api_key`), so it is never written to the config,
the history or a log.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A remote's name: what goes before the colon in NAME:MODEL.
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
_ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")


class RemoteConfig(BaseModel):
    """How to reach one OpenAI-compatible server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="the API base, e.g. http://gpu-box:8000/v1")
    api_key_env: str | None = Field(
        default=None,
        pattern=_ENV_PATTERN,
        description="environment variable that holds the API key (the key is never stored)",
    )
    model: str | None = Field(
        default=None, max_length=512, description="the model NAME: alone means"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    verify_tls: bool = Field(default=True, description="check the server's TLS certificate")
    timeout: float = Field(default=300.0, gt=0, le=86400, description="seconds to wait")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("must not carry a user or password; use api_key_env for the key")
        return value.strip().rstrip("/")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.match(name) or "\n" in text or "\r" in text:
                raise ValueError(f"header {name!r} is not a valid HTTP header")
            if name.lower() == "authorization":
                raise ValueError("set the key with api_key_env, not an Authorization header")
        return value

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The key from ``api_key_env`` (None when unset); never from anywhere else."""
        if self.api_key_env is None:
            return None
        return (os.environ if environ is None else environ).get(self.api_key_env) or None

    @property
    def plain_http_off_loopback(self) -> bool:
        """True for ``http://`` to a host other than this machine: the traffic (and the key)
        crosses the network unencrypted."""
        parts = urlsplit(self.url)
        if parts.scheme != "http":
            return False
        host = parts.hostname or ""
        if host == "localhost" or host.endswith(".localhost"):
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True
