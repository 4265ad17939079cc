"""Read what Ponder needs from a GGUF header, and refuse a bad file with one clear line.

The facts (architecture, layer and head counts, trained context, chat template,
tensor bytes per layer) drive the prompt policy and the offload planner, and a
broken download must be caught here, before llama.cpp sees it.

Why not ``gguf.GGUFReader``: it builds a numpy view for every element of every
metadata array. On Gemma 3 270M (262,144 tokens, each with a score and a type)
that took 12.5 s here, against a budget of ~0.3 s. So this package walks the
header itself with :mod:`struct` over an ``mmap``: arrays it does not need are
skipped by length, strings are decoded only when wanted, and no tensor data is
touched. The ``gguf`` package still provides the format's constants (magic,
value types, quantization block sizes, key names, file type names).

The checks mirror llama.cpp's loader (``gguf.cpp``): magic, version 2 or 3,
little-endian, every read inside the file, known value and tensor types, at
most four dimensions, tensor offsets contiguous and aligned, and a data region
that ends inside the file (otherwise the file is reported as truncated, with
the number of bytes missing). For a split model (``split.count`` > 1) the path
must be the first shard, ``NAME-00001-of-0000N.gguf``; every shard's header is
read, so ``file_size`` and ``layer_bytes`` cover the whole model.

The parts, from the bottom up (each imports only from those above it):

* :mod:`~ponder.gguf_info.values` — bounds-checked reads over the ``mmap``, value types.
* :mod:`~ponder.gguf_info.header` — one file's header, checked; failures become
  :class:`~ponder.errors.GGUFError`.
* :mod:`~ponder.gguf_info.meta` — typed access to the metadata (``_Meta``).
* :mod:`~ponder.gguf_info.split` — the other shards of a split model.
* :mod:`~ponder.gguf_info.info` — :class:`GGUFInfo` and :func:`inspect`.

Callers import from here (``from ponder.gguf_info import GGUFInfo, inspect``).
"""

from __future__ import annotations

from ponder.gguf_info.header import MAX_DIMS, SUPPORTED_VERSIONS
from ponder.gguf_info.info import MAX_LAYERS, GGUFInfo, inspect
from ponder.gguf_info.values import Number, Value

__all__ = ["MAX_DIMS", "MAX_LAYERS", "SUPPORTED_VERSIONS", "GGUFInfo", "Number", "Value", "inspect"]
