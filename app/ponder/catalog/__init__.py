"""The curated model catalog: what Ponder can download, and how each model wants to run.

Why a package of its own: the facts about a model (which Hub repo and files, how big,
which hashes, its architecture numbers, and its prompt and sampling policy) are data,
kept in ``models.toml`` where they can be reviewed against their sources, not spread
through the code. This package turns that file into typed, validated objects and
resolves what a user types (``r1:7b``, ``r1:7b@q8_0``, a full id) into one model and
one quantization.

Validation is strict (pydantic, ``extra="forbid"``, strict types): a typo in the
shipped catalog or in a user's own ``models.toml`` is reported as one line naming the
file, the model entry and the field, never silently ignored. A user catalog is merged
over the shipped one: an entry with an existing id replaces it, a new id is added.

The parts, from the bottom up (each imports only from those above it):

* :mod:`~ponder.catalog.schema` — the pydantic models of one entry and their validators.
* :mod:`~ponder.catalog.served` — :class:`ServedEntry`: a model that runs only on a
  server (the 671B R1s), with what serving it takes.
* :mod:`~ponder.catalog.resolve` — :class:`Catalog` and :class:`Resolved`: what a user
  types, resolved to one model and one quant, with "did you mean" for a miss.
* :mod:`~ponder.catalog.loading` — :func:`load_catalog` and :func:`parse_catalog`: reading,
  validating and merging the TOML, and the one-line error messages.

Callers import from here (``from ponder.catalog import ...``), not from the parts.
"""

from __future__ import annotations

from ponder.catalog.loading import load_catalog, parse_catalog
from ponder.catalog.resolve import Catalog, Resolved
from ponder.catalog.schema import (
    DEFAULT_QUANT,
    Architecture,
    ModelEntry,
    PromptPolicy,
    QuantEntry,
    Sampling,
)
from ponder.catalog.served import ServedEntry, ServingOption

__all__ = [
    "DEFAULT_QUANT",
    "Architecture",
    "Catalog",
    "ModelEntry",
    "PromptPolicy",
    "QuantEntry",
    "Resolved",
    "Sampling",
    "ServedEntry",
    "ServingOption",
    "load_catalog",
    "parse_catalog",
]
