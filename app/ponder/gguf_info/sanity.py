"""What llama.cpp asserts on rather than checks: refused here, before it sees the file.

llama.cpp validates a GGUF's structure (``gguf.cpp``), and :mod:`.header` mirrors that.
But some values it takes on trust, and a bad one aborts the whole process (SIGABRT, a
backtrace on stderr) instead of failing the load: issue 13 found six such files among 982
mutations of the Gemma 3 header. Each check below answers one of them:

* **Epsilons** (``*.layer_norm_rms_epsilon`` and the like) go straight into
  ``ggml_rms_norm``, which asserts ``eps >= 0``: NaN and -1.0 aborted. A finite number
  in (0, 1) is required.
* **Tensor types that suit their tensor.** Norms and other one-dimensional tensors are
  multiplied element-wise with F32 activations; a Q8_0 (or MXFP4, NVFP4) norm aborted in
  the CPU backend. llama-quantize never quantizes them, so F32/F16/BF16 are required.
  Integer types, F64 and the activation-only Q8_1/Q8_K have no matrix product in
  llama.cpp, so no tensor may have them.
* **A tokenizer the architecture uses.** A BERT (WPM) tokenizer in a gemma3 file aborted
  in llama.cpp's vocabulary code. WPM belongs to BERT-style encoders, the RWKV tokenizer
  to RWKV, and the Gemma family always uses SentencePiece (``llama``).
* **A context length llama.cpp can address:** it returns ``n_ctx_train`` as an int32, so
  4,294,967,295 came back as -1 and llama-cpp-python failed with a ValueError.

What no check foresees is caught by opening the file once in a child process
(``ponder.engine.preflight``), so an abort there costs the child, not the user's chat.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from gguf import GGMLQuantizationType as Q
from gguf import Keys

from ponder.errors import GGUFError
from ponder.gguf_info.header import _HINT_REDOWNLOAD, _Header, _Tensor
from ponder.gguf_info.meta import _Meta

MAX_CONTEXT = 2**31 - 1  # llama_model_n_ctx_train() returns an int32
_FLOAT_TYPES = frozenset({Q.F32.name, Q.F16.name, Q.BF16.name})
_NOT_WEIGHT_TYPES = frozenset(t.name for t in (Q.I8, Q.I16, Q.I32, Q.I64, Q.F64, Q.Q8_1, Q.Q8_K))


def check(first: _Header, meta: _Meta, headers: Iterable[_Header]) -> None:
    """Raise GGUFError for what would abort llama.cpp; ``first`` carries the metadata."""
    _check_epsilons(first, meta)
    _check_context(first, meta)
    _check_tokenizer(first, meta)
    for header in headers:
        for tensor in header.tensors:
            _check_tensor(header, tensor)


def _corrupt(header: _Header, detail: str) -> GGUFError:
    return GGUFError(f"corrupt GGUF header in {header.path}: {detail}", hint=_HINT_REDOWNLOAD)


def _check_epsilons(header: _Header, meta: _Meta) -> None:
    for key, value in header.kv.items():
        if not key.rsplit(".", 1)[-1].endswith("epsilon"):
            continue
        number = value if isinstance(value, int | float) and type(value) is not bool else None
        if number is None or not math.isfinite(number) or not 0 < number < 1:
            shown = value if number is not None else f"{type(value).__name__} {value!r}"
            raise _corrupt(
                header, f"{key} is {shown}; an epsilon must be a finite, positive number below 1"
            )


def _check_context(header: _Header, meta: _Meta) -> None:
    key = meta.key(Keys.LLM.CONTEXT_LENGTH)
    value = meta.get_int(Keys.LLM.CONTEXT_LENGTH)
    if value is not None and value > MAX_CONTEXT:
        raise _corrupt(
            header, f"{key} is {value:,}, past the {MAX_CONTEXT:,} tokens llama.cpp can address"
        )


def _tokenizer_fits(model: str, arch: str) -> str | None:
    """Why ``model`` cannot be ``arch``'s tokenizer, or None when it may be."""
    if model == "bert" and "bert" not in arch:
        return "only BERT-style encoders use it"
    if model == "rwkv" and not arch.startswith("rwkv"):
        return "only RWKV models use it"
    if arch.startswith("gemma") and model != "llama":
        return f"{arch} models use 'llama' (SentencePiece)"
    return None


def _check_tokenizer(header: _Header, meta: _Meta) -> None:
    model = meta.get_str(Keys.Tokenizer.MODEL)
    if model is None:
        return
    why = _tokenizer_fits(model, meta.arch)
    if why is not None:
        raise _corrupt(
            header,
            f"{Keys.Tokenizer.MODEL} is {model!r}, which a {meta.arch} model cannot use ({why})",
        )


def _is_norm(name: str) -> bool:
    parts = name.split(".")
    if parts[-1] in ("weight", "bias"):
        parts = parts[:-1]
    return bool(parts) and "norm" in parts[-1]


def _check_tensor(header: _Header, tensor: _Tensor) -> None:
    if tensor.type_name in _NOT_WEIGHT_TYPES:
        raise _corrupt(
            header,
            f"tensor {tensor.name!r} is {tensor.type_name}, "
            "a type llama.cpp does not take for weights",
        )
    if tensor.type_name not in _FLOAT_TYPES and (tensor.n_dims == 1 or _is_norm(tensor.name)):
        kind = "a norm" if _is_norm(tensor.name) else "a one-dimensional tensor"
        raise _corrupt(
            header,
            f"tensor {tensor.name!r} is {tensor.type_name}, but {kind} must be F32, F16 or BF16",
        )
