"""Resolving what a user types (``r1:7b``, ``r1:7b@q8_0``, a full id) against the catalog.

:class:`Catalog` holds the models in catalog order with lookup by id or alias, and
suggests close names ("did you mean ...?") for a miss; :class:`Resolved` is one model
and one of its quants. :func:`_build_index` is the one place a name used twice is caught.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ponder.catalog.schema import ModelEntry, QuantEntry, _names
from ponder.catalog.served import ServedEntry
from ponder.errors import CatalogError, ModelNotFoundError


@dataclass(frozen=True, slots=True)
class Resolved:
    """A model reference resolved to one catalog entry and one of its quants."""

    model: ModelEntry
    quant: QuantEntry

    @property
    def display_ref(self) -> str:
        """A reference that resolves back to this, e.g. ``r1:7b@Q4_K_M``."""
        return f"{self.model.short_name}@{self.quant.quant}"

    @property
    def primary_file(self) -> str:
        return self.quant.primary_file

    @property
    def files(self) -> list[str]:
        return list(self.quant.files)

    @property
    def size_bytes(self) -> int:
        return self.quant.size_bytes


class Catalog:
    """The models Ponder knows, in catalog order, with lookup by id or alias."""

    def __init__(self, models: Iterable[ModelEntry], *, served: Iterable[ServedEntry] = ()) -> None:
        self._models = list(models)
        self._index = _build_index([(entry, "catalog") for entry in self._models])
        self._served = list(served)
        for entry in self._served:
            for name in (entry.id, *entry.aliases):
                if name in self._index:
                    raise CatalogError(
                        f"catalog: served model '{entry.id}': '{name}' is already used "
                        f"by model '{self._index[name].id}'"
                    )

    @property
    def served(self) -> list[ServedEntry]:
        """Models that run only on a server (the 671B R1s): no download, a serving guide."""
        return list(self._served)

    def served_entry(self, ref: str) -> ServedEntry | None:
        """The served entry ``ref`` names (its id or an alias), or None."""
        return next((entry for entry in self._served if entry.matches(ref)), None)

    @property
    def models(self) -> list[ModelEntry]:
        return list(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._models)

    def names(self) -> list[str]:
        """Every id and alias a user may type, in catalog order."""
        return list(self._index)

    def get(self, model_id: str) -> ModelEntry | None:
        """The entry with this id (case-insensitive), or None. Aliases are not matched."""
        key = model_id.strip().lower()
        return next((entry for entry in self._models if entry.id == key), None)

    def resolve(self, ref: str, preferred_quant: str | None = None) -> Resolved:
        """Resolve ``name[@QUANT]`` (id or alias, case-insensitive).

        Without ``@QUANT`` the quant is ``preferred_quant`` when the model has it (the
        hardware planner's pick), else the model's ``default_quant``. An explicit
        ``@QUANT`` the model lacks is an error; a preference it lacks is not.
        """
        name, at, quant_name = ref.strip().partition("@")
        model = self._lookup(name.strip())
        if at:
            return Resolved(model, self._explicit_quant(model, quant_name.strip()))
        preferred = model.quant(preferred_quant) if preferred_quant else None
        return Resolved(model, preferred or model.default)

    def _lookup(self, name: str) -> ModelEntry:
        entry = self._index.get(name.lower())
        if entry is not None:
            return entry
        message = f"unknown model '{name}'" if name else "no model given"
        raise ModelNotFoundError(message, hint=self._suggest(name.lower()))

    def _suggest(self, name: str) -> str:
        matches = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        if not matches:
            return "`ponder catalog` lists the models it knows"
        if len(matches) == 1:
            return f"did you mean {matches[0]}?"
        return f"did you mean {', '.join(matches[:-1])} or {matches[-1]}?"

    @staticmethod
    def _explicit_quant(model: ModelEntry, quant_name: str) -> QuantEntry:
        entry = model.quant(quant_name) if quant_name else None
        if entry is not None:
            return entry
        what = f"no quant '{quant_name}'" if quant_name else "no quant named after '@'"
        raise ModelNotFoundError(
            f"model '{model.id}': {what}",
            hint=f"available quants: {_names(model.quants)}",
        )


def _build_index(entries: Sequence[tuple[ModelEntry, str]]) -> dict[str, ModelEntry]:
    """Map every id and alias to its entry; a name used twice is a CatalogError."""
    index: dict[str, ModelEntry] = {}
    for entry, source in entries:
        names = [(entry.id, "id")] + [(alias, "aliases") for alias in entry.aliases]
        for name, field in names:
            owner = index.get(name)
            if owner is not None:
                what = "id" if field == "id" else "alias"
                raise CatalogError(
                    f"{source}: model '{entry.id}': field '{field}': "
                    f"{what} '{name}' is already used by model '{owner.id}'"
                )
            index[name] = entry
    return index
