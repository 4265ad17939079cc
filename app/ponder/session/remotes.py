"""The remotes use cases: add, list, test and remove servers, and open ``NAME:MODEL``.

A remote is a ``[remotes.NAME]`` table in config.toml (:class:`RemoteConfig`). What a
probe learns about it (the server kind, its version, its models, its context) is
remembered per remote in the cache folder, so a reply costs no probe; ``ponder remote
list`` and ``ponder remote test`` ask again, and so does opening a model the remembered
list does not name (the server may have loaded it since).

A model on a remote is prompted and sampled like the catalog entry it is (matched by
its upstream repo, catalog id or alias: ``deepseek-ai/DeepSeek-R1`` is the catalog's
R1, ``deepseek-r1:7b`` on Ollama is ``r1:7b``), else by the same guess a GGUF outside
the catalog gets.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pydantic import ValidationError

from ponder.catalog import Catalog, ModelEntry, PromptPolicy, ServedEntry
from ponder.config import Settings, first_problem
from ponder.config_file import remove_remote, set_remote
from ponder.errors import ModelNotFoundError, PonderError, UsageError
from ponder.events import AnswerDelta
from ponder.history import History
from ponder.paths import write_text_atomic
from ponder.prompt import Turn, guess_policy
from ponder.remote import RemoteClient, RemoteEngine, RemoteSettings, ServerInfo, probe
from ponder.remote.errors import display_url
from ponder.remote.probe import KINDS
from ponder.remote_settings import NAME_PATTERN, RemoteConfig
from ponder.sampling import SamplingParams
from ponder.session.remote_model import RemoteModel
from ponder.session.spec import model_policy

Warn = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    """One line of ``ponder remote list``: how the remote is set, and what it answered."""

    name: str
    config: RemoteConfig
    info: ServerInfo | None = None
    error: str | None = None  # why it is not reachable

    @property
    def url(self) -> str:
        return display_url(self.config.url)


@dataclass(frozen=True, slots=True)
class RemoteTest:
    """What ``ponder remote test`` found with one short request."""

    name: str
    info: ServerInfo
    model: str
    reasoning_via: str
    prompt_tokens: int
    completion_tokens: int
    usage_source: str
    time_to_first_token_s: float | None
    tokens_per_s: float
    timings_source: str
    answer: str


class Remotes:
    """The configured remotes of one session."""

    def __init__(
        self,
        settings: Settings,
        config_file: Path,
        memory_file: Path,
        catalog: Catalog,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings
        self._config_file = config_file
        self._memory_file = memory_file
        self._catalog = catalog
        self._environ = environ
        self._warned: set[str] = set()

    # -- the configuration ---------------------------------------------------------

    @property
    def configured(self) -> dict[str, RemoteConfig]:
        return dict(self._settings.remotes)

    def get(self, name: str) -> RemoteConfig:
        remote = self._settings.remotes.get(name)
        if remote is None:
            known = ", ".join(sorted(self._settings.remotes)) or "none yet"
            raise UsageError(
                f"there is no remote named '{name}' (configured: {known})",
                hint="`ponder remote add NAME URL` adds one",
            )
        return remote

    def parse(self, ref: str) -> tuple[str, str | None] | None:
        """``(remote, model)`` when ``ref`` is ``NAME:MODEL`` or ``NAME:`` for a configured
        remote, else None (a catalog name, a path, an ``hf:`` reference)."""
        name, colon, model = ref.partition(":")
        if not colon or name not in self._settings.remotes:
            return None
        return name, model or None

    def add(self, name: str, **fields: object) -> RemoteConfig:
        """Write ``[remotes.NAME]`` from ``fields`` (url, api_key_env, model, headers,
        verify_tls, timeout); a bad value or a name that clashes with a catalog family is
        refused with the reason, and nothing is written."""
        self.check_name(name)
        try:
            remote = RemoteConfig.model_validate(fields)
        except ValidationError as exc:
            where, what = first_problem(exc, "remote")
            raise UsageError(
                f"remote '{name}': {where}: {what}",
                hint="see `ponder remote add --help`",
            ) from None
        set_remote(self._config_file, name, remote)
        self._settings.remotes[name] = remote
        self._forget(name)
        return remote

    def remove(self, name: str) -> None:
        self.get(name)
        remove_remote(self._config_file, name)
        del self._settings.remotes[name]
        self._forget(name)

    def check_unknown(self, ref: str) -> None:
        """Refuse ``NAME:MODEL`` for a NAME that is neither a remote nor a catalog family,
        with the remotes there are (exit 3), before the catalog says it knows no such model."""
        name, colon, _ = ref.partition(":")
        if not colon or name in self._settings.remotes or "/" in name or "\\" in name:
            return
        if not re.match(NAME_PATTERN, name) or name in catalog_families(self._catalog):
            return
        known = ", ".join(sorted(self._settings.remotes))
        raise ModelNotFoundError(
            f"there is no remote named '{name}'" + (f" (remotes: {known})" if known else ""),
            hint=f"`ponder remote add {name} URL` adds it; `ponder catalog` lists local models",
        )

    def check_name(self, name: str) -> None:
        if not re.match(NAME_PATTERN, name):
            raise UsageError(
                f"'{name}' cannot name a remote: use lower-case letters, digits, - and _, "
                "starting with a letter (at most 32)",
                hint="for example: ponder remote add lab http://gpu-box:8000/v1",
            )
        families = catalog_families(self._catalog)
        if name in families:
            raise UsageError(
                f"'{name}' is a model family in the catalog ({name}:...), "
                f"so '{name}:MODEL' would be ambiguous",
                hint="pick another name for the remote, such as 'lab' or 'cluster'",
            )

    # -- talking to a remote -------------------------------------------------------

    def settings_for(self, name: str, warn: Warn | None = None) -> RemoteSettings:
        """How to reach ``name``; ``warn`` hears, once per session, that its traffic is
        not encrypted (plain ``http://`` to another machine)."""
        remote = self.get(name)
        if remote.plain_http_off_loopback and name not in self._warned and warn is not None:
            self._warned.add(name)
            warn(
                f"warning: remote '{name}' uses plain http:// to another machine: prompts, replies"
                + (" and the API key" if remote.api_key_env else "")
                + " cross the network unencrypted"
            )
        return RemoteSettings(
            url=remote.url,
            api_key=remote.api_key(self._environ),
            api_key_env=remote.api_key_env,
            verify_tls=remote.verify_tls,
            timeout_s=remote.timeout,
            headers=dict(remote.headers),
        )

    def status(self, name: str) -> RemoteStatus:
        """Probe ``name`` now (and remember what it said); an error is reported, not raised."""
        remote = self.get(name)
        try:
            info = self._probe(name)
        except PonderError as exc:
            return RemoteStatus(name, remote, error=exc.message)
        return RemoteStatus(name, remote, info=info)

    def open(
        self, ref: str, history: Callable[[], History | None], *, warn: Warn | None = None
    ) -> RemoteModel:
        """The model ``NAME:MODEL`` names, connected (probed at most once per remote)."""
        parsed = self.parse(ref)
        if parsed is None:
            raise UsageError(f"{ref} does not name a configured remote")
        name, model = parsed
        model = model or self.get(name).model
        settings = self.settings_for(name, warn)
        info = self._remembered(name)
        if info is None or (model is not None and info.models and not _listed(model, info)):
            info = self._probe(name)
        engine = RemoteEngine.connect(settings, model=model, policy=PromptPolicy(), info=info)
        # Prompted and sampled as the catalog entry it is, else as the name suggests.
        entry = match_catalog(self._catalog, engine.model)
        if entry is not None:
            engine.policy, sampling = model_policy(entry)
        else:
            engine.policy, sampling = guess_policy(None, engine.model), SamplingParams()
        return RemoteModel(
            f"{name}:{engine.model}",
            engine,
            sampling=sampling,
            history=history,
            catalog_id=entry.id if entry else None,
        )

    def test(self, name: str, *, max_tokens: int = 48) -> RemoteTest:
        """One short request: the kind, where the reasoning arrives, usage, time to first token."""
        self._probe(name)
        model = self.open(f"{name}:", lambda: None)
        try:
            sampling = replace(model.defaults, max_tokens=max_tokens)
            stream = model.remote.stream([Turn("user", "Say hello in three words.")], sampling)
            answer = "".join(d.text for d in stream if isinstance(d, AnswerDelta))
            result = stream.result
            assert result is not None
        finally:
            model.close()
        return RemoteTest(
            name=name,
            info=model.remote.info,
            model=model.remote.model,
            reasoning_via=result.reasoning_via,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            usage_source=result.usage_source,
            time_to_first_token_s=result.timings.time_to_first_token_s,
            tokens_per_s=result.timings.tokens_per_s,
            timings_source=result.timings_source,
            answer=answer.strip(),
        )

    def listed(self) -> list[tuple[str, str]]:
        """``(NAME:MODEL, what serves it)`` for every model the remotes were last seen to
        serve; from memory, so it never waits on the network (the model picker)."""
        rows = []
        for name in sorted(self._settings.remotes):
            info = self._remembered(name)
            if info is None:
                rows.append((f"{name}:", "not probed yet"))
                continue
            rows += [(f"{name}:{model}", info.label) for model in info.models]
        return rows

    def serving(self, entry: ServedEntry) -> list[str]:
        """``NAME:MODEL`` for each remote whose remembered model list serves ``entry``."""
        found = []
        for name in sorted(self._settings.remotes):
            info = self._remembered(name)
            for served in info.models if info else ():
                if match_catalog(self._catalog, served) == entry:
                    found.append(f"{name}:{served}")
        return found

    def serving_one(self, entry: ServedEntry) -> str:
        """The remote model that serves a server-only catalog model, or how to serve it."""
        found = self.serving(entry)
        if len(found) == 1:
            return found[0]
        if found:
            raise UsageError(
                f"{entry.short_name} is served by {len(found)} remotes",
                hint="name one: " + ", ".join(found),
            )
        option = entry.serving[0]
        raise ModelNotFoundError(
            f"{entry.short_name} ({entry.name}, {entry.params}) runs on a server, not here: "
            f"{option.precision} needs about {option.weights_gb:,.0f} GB "
            f"({' or '.join(option.hardware)})",
            hint=f"serve it (`ponder fit {entry.short_name}`; docs/remote.md), then "
            f"`ponder remote add NAME URL` and `ponder run NAME:{entry.upstream}`",
        )

    # -- what a probe learned, remembered ---------------------------------------------

    def _probe(self, name: str) -> ServerInfo:
        client = RemoteClient(self.settings_for(name))
        try:
            info = probe(client)
        finally:
            client.close()
        self._remember(name, info)
        return info

    def _remembered(self, name: str) -> ServerInfo | None:
        entry = self._memory().get(name)
        if not isinstance(entry, dict) or entry.get("url") != self.get(name).url:
            return None
        try:
            kind = entry["kind"]
            if kind not in KINDS:
                return None
            return ServerInfo(
                kind=kind,
                version=entry.get("version"),
                models=tuple(str(m) for m in entry.get("models", ())),
                n_ctx=entry.get("n_ctx"),
            )
        except (KeyError, TypeError):
            return None

    def _remember(self, name: str, info: ServerInfo) -> None:
        memory = self._memory()
        memory[name] = {"url": self.get(name).url, "at": time.time(), **asdict(info)}
        self._save(memory)

    def _forget(self, name: str) -> None:
        memory = self._memory()
        if memory.pop(name, None) is not None:
            self._save(memory)

    def _memory(self) -> dict[str, object]:
        try:
            data = json.loads(self._memory_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, memory: dict[str, object]) -> None:
        """A cache: a failed write (a read-only or full disk) costs a probe, nothing more."""
        with contextlib.suppress(OSError):
            write_text_atomic(self._memory_file, json.dumps(memory, indent=1))


def catalog_families(catalog: Catalog) -> set[str]:
    """What comes before the colon in the catalog's aliases (r1, qwen3, qwq, ...), plus
    the reserved ``hf``: names a remote may not take."""
    families = {"hf"}
    for model in catalog.models:
        for alias in model.aliases:
            families.add(alias.split(":", 1)[0].lower())
    return families


def match_catalog(catalog: Catalog, served: str) -> ModelEntry | ServedEntry | None:
    """The catalog entry a server's model id is, if any.

    Matched on the last part of the id, case-insensitively, against each entry's id,
    upstream repo, name and aliases; Ollama's ``deepseek-r1:7b`` also as ``r1:7b``. A
    GGUF file name (``…-Q4_K_M.gguf``) or a ``-GGUF`` repo suffix is dropped first.
    """
    key = served.strip().lower()
    if not key:
        return None
    key = re.sub(r"\.gguf$", "", key.rsplit("/", 1)[-1])
    key = re.sub(r"-gguf$", "", key)
    key = re.sub(r"[-.](q\d\w*|iq\d\w*|f16|bf16|fp8)$", "", key)
    key = key.removesuffix(":latest")
    entries: list[ModelEntry | ServedEntry] = [*catalog.models, *catalog.served]
    # The model's own names first, so "deepseek-r1-0528" is the 671B model, not the
    # distill whose alias is "r1-0528".
    for model in entries:
        names = {model.id.lower(), model.name.lower()}
        if model.upstream:
            names.add(model.upstream.lower().rsplit("/", 1)[-1])
        if key in names:
            return model
    aliases = {key, key.removeprefix("deepseek-")}  # Ollama: deepseek-r1:7b is r1:7b
    for model in entries:
        if aliases & {a.lower() for a in model.aliases}:
            return model
    return None


def _listed(model: str, info: ServerInfo) -> bool:
    return model in info.models or f"{model}:latest" in info.models
