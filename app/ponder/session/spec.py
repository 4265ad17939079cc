"""Which model a reference names, and how to prompt it: a :class:`ModelSpec`.

A reference is a catalog name (``r1:7b``, ``r1:7b@Q8_0``), an installed name, an
``hf:`` reference or a path to a GGUF file. Resolving it never loads weights and
never touches the network: it reads the GGUF header and takes the prompt policy,
sampling defaults and chat template from the catalog entry the file came from (or
from what the template suggests, for a file Ponder does not know).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ponder import download, gguf_info
from ponder.catalog import Catalog, ModelEntry, PromptPolicy, Resolved, ServedEntry
from ponder.errors import ModelNotFoundError, UsageError
from ponder.gguf_info import GGUFInfo
from ponder.prompt import FALLBACK_FORMAT, builtin_template, guess_policy
from ponder.sampling import CATALOG_OPTIONS, SamplingParams
from ponder.store import InstalledModel, Store


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Everything needed to load and prompt one model file."""

    name: str  # what we show and store: "r1:7b@Q4_K_M" or the file name
    path: Path
    info: GGUFInfo
    policy: PromptPolicy
    sampling: SamplingParams
    template: str
    template_source: str
    catalog_id: str | None = None

    def summary(self) -> str:
        """One line for ``--verbose``: what the file is and where its template came from."""
        info = self.info
        return (
            f"{self.name}: {info.architecture}, {info.n_layer} layers, "
            f"trained context {info.n_ctx_train:,}, template {self.template_source}"
        )


class NotInstalledError(ModelNotFoundError):
    """A known model that is not downloaded yet; front ends may offer to pull it."""

    def __init__(self, message: str, *, ref: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.ref = ref


class Resolver:
    """Turns what a user typed into a :class:`ModelSpec`, through the catalog and store."""

    def __init__(self, catalog: Catalog, store: Store) -> None:
        self.catalog = catalog
        self.store = store

    def resolve(
        self,
        ref: str,
        *,
        chat_format: str | None = None,
        chat_template_file: Path | None = None,
    ) -> ModelSpec:
        """A catalog reference or a path to a GGUF file, inspected but not loaded."""
        entry: Resolved | None = None
        if looks_like_path(ref) and not ref.lower().startswith("hf:"):
            path = Path(ref).expanduser()
            if not path.exists():
                raise ModelNotFoundError(
                    f"no such model file: {ref}", hint="check the path, or use a catalog name"
                )
            entry = _match_file(self.catalog, path.name)
            name = path.name
        else:
            installed, entry = self.installed(ref)
            path = self.store.primary_path(installed)
            name = installed.name
            self.store.touch(installed.name)
        info = gguf_info.inspect(path)
        template, source = _template(info, entry, chat_format, chat_template_file)
        if entry is not None:
            policy, sampling = catalog_policy(entry)
            catalog_id: str | None = entry.model.id
        else:
            policy = guess_policy(info.chat_template, info.name or path.name)
            sampling = SamplingParams()
            catalog_id = None
        return ModelSpec(name, path, info, policy, sampling, template, source, catalog_id)

    def installed(self, ref: str) -> tuple[InstalledModel, Resolved | None]:
        """The installed model a name refers to; never touches the network."""
        name = self.store_name(ref)
        found = self.store.find(name)
        entry = None
        if found is not None and found.catalog_id:
            model = self.catalog.get(found.catalog_id)
            quant = model.quant(found.quant or "") if model else None
            entry = Resolved(model, quant) if model and quant else None
        if found is None:
            raise NotInstalledError(
                f"{name} is not downloaded", ref=ref, hint=f"`ponder pull {ref}` fetches it"
            )
        missing = self.store.missing(found)
        if missing:
            raise NotInstalledError(
                f"{found.name} is installed but {missing[0]} is gone",
                ref=ref,
                hint=f"`ponder pull {ref}` fetches it again",
            )
        return found, entry

    def store_name(self, ref: str) -> str:
        """The store name for what a user typed: an installed name, an ``hf:`` reference
        or a catalog name (its installed quant, else the catalog's choice)."""
        if self.store.find(ref):
            return ref
        if ref.lower().startswith("hf:"):
            return download.hf_name(ref)
        entry = self.catalog.resolve(ref)
        found = self.store.find_catalog(entry.model.id, entry.quant.quant)
        return found.name if found else entry.display_ref


def _template(
    info: GGUFInfo,
    entry: Resolved | None,
    chat_format: str | None,
    chat_template_file: Path | None,
) -> tuple[str, str]:
    if chat_template_file is not None:
        try:
            return chat_template_file.read_text(encoding="utf-8"), "file"
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read chat template {chat_template_file}: {exc}") from None
    if chat_format is not None:
        return builtin_template(chat_format), f"builtin:{chat_format}"
    if entry is not None and entry.model.prompt.chat_template:
        return entry.model.prompt.chat_template, "catalog"
    if info.chat_template:
        return info.chat_template, "gguf"
    return builtin_template(FALLBACK_FORMAT), f"builtin:{FALLBACK_FORMAT}"


def _match_file(catalog: Catalog, filename: str) -> Resolved | None:
    """The catalog entry a local file came from, by its file name, if any."""
    for model in catalog.models:
        for quant in model.quants:
            if Path(quant.primary_file).name == filename:
                return Resolved(model, quant)
    return None


def catalog_policy(entry: Resolved) -> tuple[PromptPolicy, SamplingParams]:
    """The prompt policy and recommended sampling of a catalog entry."""
    return model_policy(entry.model)


def model_policy(model: ModelEntry | ServedEntry) -> tuple[PromptPolicy, SamplingParams]:
    """The prompt policy and recommended sampling of a catalog model."""
    prompt, sampling = model.prompt, model.sampling
    policy = PromptPolicy(
        system_prompt=prompt.system_prompt,
        think_prefill=prompt.think_prefill,
        strip_reasoning_in_history=prompt.strip_reasoning_in_history,
    )
    recommended = {o.name: getattr(sampling, o.name) for o in CATALOG_OPTIONS}
    return policy, SamplingParams().with_overrides(recommended)


def looks_like_path(ref: str) -> bool:
    return ref.endswith(".gguf") or "/" in ref or "\\" in ref or ref.startswith((".", "~"))
