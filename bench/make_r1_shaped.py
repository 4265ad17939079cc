"""Write a random-weight GGUF shaped exactly like DeepSeek-R1-Distill-Qwen-1.5B, as Q4_K_M.

Why: decode speed on a CPU depends on tensor shapes and quantization types, not on
the weights' values (docs/architecture.md#benchmarks), and the benchmarks must
run without a network. So this script builds the real model's skeleton offline:
architecture ``qwen2`` with 28 blocks, hidden 1536, FFN 8960, 12 query heads and 2
KV heads of 128, a 151,936-token vocabulary, Q/K/V biases and a separate (untied)
``output.weight``. Weights are small random F16 values (norms and biases F32),
generated in chunks and streamed to disk so memory stays near one tensor. llama.cpp
then quantizes the F16 file to Q4_K_M with the same per-tensor type choices it
makes for the real model (Q6_K for ``output`` and for some ``attn_v``/``ffn_down``),
giving a file of about the real one's 1.12 GB.

The tokenizer is a synthetic GPT-2-style byte-level BPE that llama.cpp accepts for
qwen2: the 256 byte tokens of GPT-2's byte-to-unicode table, every two-letter
lowercase pair (with and without the leading-space marker ``Ġ``) plus merges that
build them, then unique filler words up to id 151,642, then the distill's special
tokens at their real ids (BOS 151646, EOS 151643, ``<think>`` 151648, ...), and
padding tokens to the full vocabulary.

Random weights sample near-uniformly from the whole vocabulary, which no trained
model does: they would emit lone bytes 0x80-0xFF (invalid UTF-8 that never
completes) and special tokens (end-of-generation, ``</think>``) at random. So the
``output.weight`` rows of those tokens are zero: their logit is 0, the median of
the random logits, far below the top 40 the sampler keeps, so they are never
sampled. Generated text is then valid UTF-8 and runs to the requested length, as a
real reasoning trace does, and the matrix shapes (hence the speed) are unchanged.

Usage: ``.venv/bin/python bench/make_r1_shaped.py [--out PATH] [--force]``.
Idempotent: does nothing when the output already exists.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import string
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import gguf
import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
DEFAULT_OUT = CACHE_DIR / "r1-distill-qwen-1.5b-shaped-Q4_K_M.gguf"

# DeepSeek-R1-Distill-Qwen-1.5B (config.json of the Hugging Face repo).
N_LAYER = 28
N_EMBD = 1536
N_FF = 8960
N_HEAD = 12
N_HEAD_KV = 2
HEAD_DIM = 128
N_VOCAB = 151_936
N_CTX_TRAIN = 131_072
ROPE_THETA = 10_000.0
RMS_EPS = 1e-6

BOS_ID = 151_646
EOS_ID = 151_643
FIRST_SPECIAL_ID = 151_643
# The distill's added tokens, in id order from 151643 (tokenizer.json).
SPECIAL_TOKENS: list[tuple[str, gguf.TokenType]] = [
    ("<｜end▁of▁sentence｜>", gguf.TokenType.CONTROL),
    ("<｜User｜>", gguf.TokenType.USER_DEFINED),
    ("<｜Assistant｜>", gguf.TokenType.USER_DEFINED),
    ("<｜begin▁of▁sentence｜>", gguf.TokenType.CONTROL),
    ("<|EOT|>", gguf.TokenType.USER_DEFINED),
    ("<think>", gguf.TokenType.USER_DEFINED),
    ("</think>", gguf.TokenType.USER_DEFINED),
    ("<|quad_start|>", gguf.TokenType.USER_DEFINED),
    ("<|quad_end|>", gguf.TokenType.USER_DEFINED),
    ("<|vision_start|>", gguf.TokenType.USER_DEFINED),
    ("<|vision_end|>", gguf.TokenType.USER_DEFINED),
    ("<|vision_pad|>", gguf.TokenType.USER_DEFINED),
    ("<|image_pad|>", gguf.TokenType.USER_DEFINED),
    ("<|video_pad|>", gguf.TokenType.USER_DEFINED),
    ("<tool_call>", gguf.TokenType.USER_DEFINED),
    ("</tool_call>", gguf.TokenType.USER_DEFINED),
    ("<|fim_prefix|>", gguf.TokenType.CONTROL),
    ("<|fim_middle|>", gguf.TokenType.CONTROL),
    ("<|fim_suffix|>", gguf.TokenType.CONTROL),
    ("<|fim_pad|>", gguf.TokenType.CONTROL),
    ("<|repo_name|>", gguf.TokenType.CONTROL),
    ("<|file_sep|>", gguf.TokenType.CONTROL),
]

# A short DeepSeek-R1-style template: BOS, user/assistant markers, and the
# "<think>\n" prefill that newer distill templates carry.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- set ns = namespace(system='') -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{%- set ns.system = message['content'] -%}"
    "{%- endif -%}{%- endfor -%}"
    "{{ ns.system }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}{{ '<｜User｜>' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- set content = message['content'] -%}"
    "{%- if '</think>' in content -%}{%- set content = content.split('</think>')[-1] -%}"
    "{%- endif -%}"
    "{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<｜Assistant｜><think>\\n' }}{%- endif -%}"
)

CHUNK_ELEMENTS = 16 * 1024 * 1024  # random values generated per step (64 MiB as float32)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (as in its encoder.py)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def _filler_words() -> Iterator[str]:
    """Unique lowercase words of three letters and more, in a fixed order."""
    letters = string.ascii_lowercase
    length = 3
    while True:
        for n in range(len(letters) ** length):
            word = []
            for _ in range(length):
                n, r = divmod(n, len(letters))
                word.append(letters[r])
            yield "".join(reversed(word))
        length += 1


def build_vocab() -> tuple[list[str], list[int], list[str]]:
    """Token texts, token types and BPE merges for the synthetic tokenizer."""
    byte_chars = bytes_to_unicode()
    tokens: list[str] = [byte_chars[b] for b in range(256)]
    merges: list[str] = []
    space = byte_chars[ord(" ")]  # "Ġ"
    letters = string.ascii_lowercase
    for a in letters:  # " a" -> "Ġa"
        tokens.append(space + a)
        merges.append(f"{space} {a}")
    for a in letters:  # "ab", then "Ġab"
        for b in letters:
            tokens.append(a + b)
            merges.append(f"{a} {b}")
    for a in letters:
        for b in letters:
            tokens.append(space + a + b)
            merges.append(f"{space}{a} {b}")
    seen = set(tokens)
    words = _filler_words()
    while len(tokens) < FIRST_SPECIAL_ID:
        word = next(words)
        for text in (space + word, word):
            if len(tokens) < FIRST_SPECIAL_ID and text not in seen:
                tokens.append(text)
                seen.add(text)
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    for text, kind in SPECIAL_TOKENS:
        tokens.append(text)
        types.append(int(kind))
    while len(tokens) < N_VOCAB:
        tokens.append(f"[PAD{len(tokens)}]")
        types.append(int(gguf.TokenType.UNUSED))
    assert len(tokens) == N_VOCAB and len(set(tokens)) == N_VOCAB
    return tokens, types, merges


def tensor_plan() -> list[tuple[str, tuple[int, ...], type[np.floating]]]:
    """(name, numpy shape, dtype) for every tensor, in llama.cpp's usual order.

    numpy shapes are (rows, cols) = (n_out, n_in); GGUF stores them reversed.
    """
    names = gguf.TENSOR_NAMES
    t = gguf.MODEL_TENSOR
    n_kv = N_HEAD_KV * HEAD_DIM
    plan: list[tuple[str, tuple[int, ...], type[np.floating]]] = [
        (names[t.TOKEN_EMBD] + ".weight", (N_VOCAB, N_EMBD), np.float16),
    ]
    for i in range(N_LAYER):

        def name(kind: gguf.MODEL_TENSOR, suffix: str, bid: int = i) -> str:
            return names[kind].format(bid=bid) + suffix

        plan += [
            (name(t.ATTN_NORM, ".weight"), (N_EMBD,), np.float32),
            (name(t.ATTN_Q, ".weight"), (N_HEAD * HEAD_DIM, N_EMBD), np.float16),
            (name(t.ATTN_Q, ".bias"), (N_HEAD * HEAD_DIM,), np.float32),
            (name(t.ATTN_K, ".weight"), (n_kv, N_EMBD), np.float16),
            (name(t.ATTN_K, ".bias"), (n_kv,), np.float32),
            (name(t.ATTN_V, ".weight"), (n_kv, N_EMBD), np.float16),
            (name(t.ATTN_V, ".bias"), (n_kv,), np.float32),
            (name(t.ATTN_OUT, ".weight"), (N_EMBD, N_HEAD * HEAD_DIM), np.float16),
            (name(t.FFN_NORM, ".weight"), (N_EMBD,), np.float32),
            (name(t.FFN_GATE, ".weight"), (N_FF, N_EMBD), np.float16),
            (name(t.FFN_UP, ".weight"), (N_FF, N_EMBD), np.float16),
            (name(t.FFN_DOWN, ".weight"), (N_EMBD, N_FF), np.float16),
        ]
    plan += [
        (names[t.OUTPUT_NORM] + ".weight", (N_EMBD,), np.float32),
        (names[t.OUTPUT] + ".weight", (N_VOCAB, N_EMBD), np.float16),
    ]
    return plan


def muted_token_ids() -> np.ndarray:
    """Tokens a trained model would not emit at random: lone high bytes, specials."""
    return np.concatenate([np.arange(128, 256), np.arange(FIRST_SPECIAL_ID, N_VOCAB)])


def random_tensor(
    rng: np.random.Generator, name: str, shape: tuple[int, ...], dtype: type[np.floating]
) -> np.ndarray:
    """Norm weights near 1 (as trained models have), everything else normal * 0.02."""
    if name.endswith("_norm.weight"):
        return (1.0 + 0.02 * rng.standard_normal(shape, dtype=np.float32)).astype(dtype)
    out = np.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, CHUNK_ELEMENTS):
        stop = min(flat.size, start + CHUNK_ELEMENTS)
        chunk = rng.standard_normal(stop - start, dtype=np.float32)
        chunk *= 0.02
        flat[start:stop] = chunk
    if name == gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.OUTPUT] + ".weight":
        out[muted_token_ids()] = 0
    return out


def write_f16(path: Path, seed: int) -> None:
    """Stream the F16 GGUF to ``path``: header and tensor infos first, then each tensor."""
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.QWEN2])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("DeepSeek-R1-Distill-Qwen-1.5B shaped (random weights)")
    writer.add_context_length(N_CTX_TRAIN)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    tokens, types, merges = build_vocab()
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("deepseek-r1-qwen")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_pad_token_id(EOS_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    plan = tensor_plan()
    for name, shape, dtype in plan:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        writer.add_tensor_info(name, shape, np.dtype(dtype), nbytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    for name, shape, dtype in plan:
        writer.write_tensor_data(random_tensor(rng, name, shape, dtype))
    writer.close()


_QUIET_LOG: list[object] = []  # keeps the C callback alive


def quiet_llama_log() -> None:
    """Drop llama.cpp's log lines (load dumps, per-tensor quantize lines)."""
    import llama_cpp

    if not _QUIET_LOG:

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def _drop(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            return None

        _QUIET_LOG.append(_drop)
    llama_cpp.llama_log_set(_QUIET_LOG[0], ctypes.c_void_p(0))


def quantize(src: Path, dst: Path, threads: int) -> None:
    """llama.cpp's own quantizer: Q4_K_M with its usual mixed per-tensor types."""
    import llama_cpp

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed with code {rc}")


def make(
    out: Path, *, threads: int = 2, seed: int = 0, force: bool = False, report: TextIO | None = None
) -> Path:
    """Build ``out`` unless it exists; returns its path. Progress goes to ``report``."""
    report = report or sys.stdout
    if out.exists() and not force:
        print(f"exists: {out} ({out.stat().st_size / 1e9:.3f} GB)", file=report)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    f16 = out.with_name(out.stem + ".F16.gguf.tmp")
    partial = out.with_name(out.name + ".part")
    started = time.monotonic()
    try:
        write_f16(f16, seed)
        wrote = time.monotonic()
        print(
            f"wrote F16 {f16.stat().st_size / 1e9:.2f} GB in {wrote - started:.1f} s; quantizing…",
            file=report,
            flush=True,
        )
        quantize(f16, partial, threads)
        os.replace(partial, out)
    finally:
        f16.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    took = time.monotonic() - started
    print(f"made {out} ({out.stat().st_size / 1e9:.3f} GB, Q4_K_M) in {took:.1f} s", file=report)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    parser.add_argument("--threads", type=int, default=2, help="quantizer threads")
    parser.add_argument("--seed", type=int, default=0, help="for the random weights")
    parser.add_argument("--force", action="store_true", help="rebuild even if the file exists")
    parser.add_argument("--verbose", action="store_true", help="show llama.cpp's log")
    args = parser.parse_args(argv)
    if not args.verbose:
        quiet_llama_log()
    make(args.out, threads=args.threads, seed=args.seed, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
