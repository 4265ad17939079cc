"""What the planner needs to know about a model: :class:`ModelFacts`.

From a GGUF header (exact tensor sizes), or before a download from a catalog entry. Sizes
from the catalog are estimates: the embedding and output matrices are ``vocab × hidden`` at
the bits per weight llama.cpp's quant recipes give them, and the rest of the file is split
evenly over the layers. Also :func:`repack_share`, the part of a CPU layer's bytes that
llama.cpp copies into a second buffer (see :mod:`ponder.hardware.footprint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

from ponder.catalog import ModelEntry, QuantEntry
from ponder.gguf_info import GGUFInfo
from ponder.hardware.profile import HardwareProfile

KV_BYTES_PER_ELEMENT = 2


# Bits per weight of token_embd and output.weight in llama.cpp's quant recipes (output is
# Q6_K for the K- and IQ-quants); used to split a catalog size before download.
_EDGE_BPW: dict[str, tuple[float, float]] = {
    "Q2_K": (2.625, 6.5625),
    "Q3_K_M": (3.4375, 6.5625),
    "Q4_0": (4.5, 6.5625),
    "Q4_K_S": (4.5, 6.5625),
    "Q4_K_M": (4.5, 6.5625),
    "IQ4_NL": (4.5, 6.5625),
    "IQ4_XS": (4.25, 6.5625),
    "Q5_K_S": (5.5, 6.5625),
    "Q5_K_M": (5.5, 6.5625),
    "Q6_K": (6.5625, 6.5625),
    "Q8_0": (8.5, 8.5),
    "F16": (16.0, 16.0),
    "BF16": (16.0, 16.0),
}
_DEFAULT_EDGE_BPW = (6.0, 6.5625)
_TIED_RATIO = 0.85  # other_bytes well below two matrices' worth: one tied matrix (even Q8_0)

# Share of a CPU layer's bytes that llama.cpp repacks into a second buffer (see the
# docstring of ponder.hardware.footprint). x86 needs AVX2; ARM needs the dot-product extension.
_REPACK_X86 = {"Q4_0": 1.0, "IQ4_NL": 1.0, "Q4_K_S": 0.95, "Q4_K_M": 0.8}
_REPACK_ARM = dict.fromkeys(("Q4_0", "IQ4_NL", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"), 1.0)
_REPACK_UNKNOWN = 0.8  # a file whose quant is unknown: assume a Q4_K_M


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the planner needs to know about a model, from its GGUF or its catalog entry."""

    name: str
    quant: str | None
    file_size: int
    n_layer: int
    layer_bytes: tuple[int, ...]  # per repeating block
    output_bytes: int  # goes with the output layer (to the GPU first)
    embd_bytes: int  # token_embd: always on the CPU
    tied: bool  # output is a copy of token_embd (only made when the output is offloaded)
    n_ctx_train: int
    kv_bytes_per_token: int  # all layers, f16
    n_vocab: int
    n_embd: int
    exact: bool  # True: from the GGUF's tensor sizes; False: estimated from the catalog
    layer_type_bytes: tuple[
        tuple[str, int], ...
    ] = ()  # from the GGUF: repeating-layer bytes per type
    # Derived once, so an estimate sums any run of layers in constant time.
    layer_prefix: tuple[int, ...] = field(init=False, repr=False, compare=False)
    largest_layer: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer_prefix", (0, *accumulate(self.layer_bytes)))
        object.__setattr__(self, "largest_layer", max(self.layer_bytes, default=0))

    def layers_bytes(self, first: int, end: int) -> int:
        """The repeating layers ``first … end - 1`` together."""
        prefix = self.layer_prefix
        end = min(end, len(prefix) - 1)
        return prefix[end] - prefix[first] if end > first else 0

    @property
    def weight_bytes(self) -> int:
        return sum(self.layer_bytes) + self.embd_bytes + (0 if self.tied else self.output_bytes)

    @property
    def kv_bytes_per_token_layer(self) -> int:
        return self.kv_bytes_per_token // max(1, self.n_layer)

    @classmethod
    def from_gguf(cls, info: GGUFInfo, *, output_bytes: int | None = None) -> ModelFacts:
        """From a GGUF header. ``output_bytes`` (the ``output.*`` tensors) is exact when the
        caller has it; otherwise ``other_bytes`` is split by the quant recipe's bits per
        weight, and a file with one matrix's worth is taken as tied."""
        embd, output, tied = _split_other(
            info.other_bytes, info.n_vocab, info.n_embd, info.file_type, output_bytes
        )
        return cls(
            name=info.name or info.path.name,
            quant=info.file_type,
            file_size=info.file_size,
            n_layer=info.n_layer,
            layer_bytes=tuple(info.layer_bytes),
            output_bytes=output,
            embd_bytes=embd,
            tied=tied,
            n_ctx_train=info.n_ctx_train,
            kv_bytes_per_token=info.kv_bytes_per_token,
            n_vocab=info.n_vocab,
            n_embd=info.n_embd,
            exact=True,
            layer_type_bytes=info.layer_type_bytes,
        )

    @classmethod
    def from_catalog(cls, model: ModelEntry, quant: QuantEntry) -> ModelFacts | None:
        """An estimate before download; None when the entry has no architecture numbers."""
        arch = model.arch
        if arch is None:
            return None
        embd_bpw, out_bpw = _EDGE_BPW.get(quant.quant.upper(), _DEFAULT_EDGE_BPW)
        matrix = arch.vocab_size * arch.hidden_size
        embd, output = int(matrix * embd_bpw / 8), int(matrix * out_bpw / 8)
        rest = quant.size_bytes - embd - output
        if rest <= 0:  # a size that cannot be right for this shape: spread it all
            embd, output, rest = 0, 0, quant.size_bytes
        return cls(
            name=model.short_name,
            quant=quant.quant,
            file_size=quant.size_bytes,
            n_layer=arch.layers,
            layer_bytes=_spread(rest, arch.layers),
            output_bytes=output,
            embd_bytes=embd,
            tied=False,
            n_ctx_train=arch.context_length,
            kv_bytes_per_token=arch.kv_cache_bytes_per_token(KV_BYTES_PER_ELEMENT),
            n_vocab=arch.vocab_size,
            n_embd=arch.hidden_size,
            exact=False,
        )


def _split_other(
    other: int, n_vocab: int, n_embd: int, quant: str | None, output_bytes: int | None
) -> tuple[int, int, bool]:
    """(token_embd bytes, output-layer bytes, tied) from the non-layer tensor bytes."""
    if output_bytes == 0:  # no output.weight: llama.cpp offloads a copy of token_embd
        return other, other, True
    if output_bytes is not None:
        return max(0, other - output_bytes), output_bytes, False
    embd_bpw, out_bpw = _EDGE_BPW.get((quant or "").upper(), _DEFAULT_EDGE_BPW)
    untied = n_vocab * n_embd * (embd_bpw + out_bpw) / 8
    if untied and other < _TIED_RATIO * untied:
        return other, other, True
    output = int(other * out_bpw / (embd_bpw + out_bpw))
    return other - output, output, False


def _spread(total: int, parts: int) -> tuple[int, ...]:
    share, extra = divmod(total, parts)
    return tuple(share + (1 if i < extra else 0) for i in range(parts))


# The ggml tensor types llama.cpp repacks on the CPU (what the quant names above stand for).
_REPACK_TYPES_X86 = frozenset({"Q4_0", "Q4_K", "IQ4_NL"})
_REPACK_TYPES_ARM = frozenset({"Q4_0", "Q4_K", "IQ4_NL", "Q5_K", "Q6_K"})


def model_repack_share(model: ModelFacts, hw: HardwareProfile) -> float:
    """The share of a CPU layer's bytes llama.cpp repacks, exact when the GGUF's tensor
    types are known: a "Q4_K_M" file mixes types (Gemma 3 270M's is mostly Q5_0, and only
    its Q4_K tensors are repacked), so a share by quant name can be several times off."""
    if not model.layer_type_bytes:
        return repack_share(model.quant, hw)
    flags = set(hw.cpu_flags)
    if "AVX2" in flags:
        types = _REPACK_TYPES_X86
    elif "DOTPROD" in flags:
        types = _REPACK_TYPES_ARM | ({"Q8_0"} if "MATMUL_INT8" in flags else set())
    else:
        return 0.0
    total = sum(n for _, n in model.layer_type_bytes)
    repacked = sum(n for name, n in model.layer_type_bytes if name in types)
    return repacked / total if total else 0.0


def repack_share(quant: str | None, hw: HardwareProfile) -> float:
    """The share of a CPU layer's bytes llama.cpp copies into its repack buffer, by the
    file's quant name (for catalog entries, before the file's tensor types are known)."""
    flags = set(hw.cpu_flags)
    if quant is None:
        return _REPACK_UNKNOWN if flags & {"AVX2", "DOTPROD"} else 0.0
    name = quant.upper()
    if "AVX2" in flags:
        return _REPACK_X86.get(name, 0.0)
    if "DOTPROD" in flags:
        if name == "Q8_0":
            return 1.0 if "MATMUL_INT8" in flags else 0.0
        return _REPACK_ARM.get(name, 0.0)
    return 0.0
