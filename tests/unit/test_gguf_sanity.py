"""The header checks that stand between a hostile GGUF and llama.cpp's asserts.

Each mutant is the real Gemma 3 270M header with one thing changed, written with a hole
where the tensor data goes (the checks read only the header). Every one of the named
mutations once aborted ``ponder run`` inside llama.cpp or ended in a traceback (issue 13).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from ponder.errors import ExitCode, GGUFError
from ponder.gguf_info import GGUFInfo, inspect
from support import gguf_corpus as corpus
from support import gguf_mutants as mutants


@pytest.fixture(scope="module")
def layout(gemma_path: Path) -> mutants.Layout:
    return mutants.layout(gemma_path)


def sparse(layout: mutants.Layout, header: bytes, tmp_path: Path, name: str = "m") -> Path:
    return mutants.write_sparse(layout, header, tmp_path / f"{name}.gguf")


def refused(path: Path, *fragments: str) -> GGUFError:
    with pytest.raises(GGUFError) as caught:
        inspect(path)
    error = caught.value
    assert error.exit_code == ExitCode.MODEL_LOAD
    assert "\n" not in str(error)
    for fragment in fragments:
        assert fragment in error.message, error.message
    return error


def test_the_unchanged_header_passes(layout: mutants.Layout, tmp_path: Path) -> None:
    info = inspect(sparse(layout, layout.header, tmp_path))
    assert info.architecture == "gemma3"


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("epsilon-nan", ("layer_norm_rms_epsilon is nan", "finite, positive")),
        ("epsilon-negative", ("layer_norm_rms_epsilon is -1.0",)),
        ("bert-tokenizer-in-gemma3", ("tokenizer.ggml.model is 'bert'", "gemma3")),
        ("norm-tensor-q8_0", ("blk.17.post_ffw_norm.weight", "Q8_0", "F32")),
        ("norm-tensor-type-39", ("blk.17.post_ffw_norm.weight", "MXFP4")),
        ("norm-tensor-type-40", ("blk.17.post_ffw_norm.weight",)),
        ("context-length-2^32-1", ("gemma3.context_length is 4,294,967,295",)),
        ("array-nested-3000-deep", ("'x.nested'", "nested")),
    ],
)
def test_named_crashers_are_refused_in_one_line(
    layout: mutants.Layout, tmp_path: Path, name: str, fragments: tuple[str, ...]
) -> None:
    refused(sparse(layout, corpus.NAMED[name](layout), tmp_path), *fragments)


@pytest.mark.parametrize("value", [0.0, float("inf"), float("-inf"), 2.0])
def test_epsilon_must_be_a_small_positive_number(
    layout: mutants.Layout, tmp_path: Path, value: float
) -> None:
    header = mutants.set_value(layout, corpus.EPSILON, corpus.f32(value))
    refused(sparse(layout, header, tmp_path), "layer_norm_rms_epsilon")


def test_epsilon_of_the_wrong_type_is_refused(layout: mutants.Layout, tmp_path: Path) -> None:
    header = mutants.set_value(layout, corpus.EPSILON, corpus.string("1e-6"))
    refused(sparse(layout, header, tmp_path), "layer_norm_rms_epsilon")


@pytest.mark.parametrize("qtype", ["F16", "BF16"])
def test_norm_tensors_may_be_16_bit_floats(
    layout: mutants.Layout, tmp_path: Path, qtype: str
) -> None:
    raw = gguf.GGMLQuantizationType[qtype].value
    header = mutants.set_tensor_type(layout, corpus.LAST_NORM, raw)
    assert isinstance(inspect(sparse(layout, header, tmp_path)), GGUFInfo)


def tiny_with_matrix(path: Path, qtype: str) -> Path:
    """A tiny llama file whose one matrix has type ``qtype`` (raw zero bytes)."""
    kind = gguf.GGMLQuantizationType[qtype]
    block, size = gguf.GGML_QUANT_SIZES[kind]
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(1)
    writer.add_context_length(256)
    writer.add_embedding_length(256)
    writer.add_head_count(4)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_tokenizer_model("llama")
    raw = np.zeros((2, 256 // block * size), dtype=np.uint8)  # 2 rows of 256 values
    writer.add_tensor("blk.0.attn_q.weight", raw, raw_dtype=kind)
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(256, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_quantized_matrix_passes(tmp_path: Path) -> None:
    assert inspect(tiny_with_matrix(tmp_path / "q.gguf", "Q8_0")).n_layer == 1


@pytest.mark.parametrize("qtype", ["I8", "I32", "F64", "Q8_K", "Q8_1"])
def test_types_that_are_no_weight_type_are_refused(tmp_path: Path, qtype: str) -> None:
    # no llama.cpp matrix product takes these as weights: they are activations' types
    path = tiny_with_matrix(tmp_path / "q.gguf", qtype)
    refused(path, "blk.0.attn_q.weight", qtype)


def test_context_length_at_the_int32_limit_is_accepted(
    layout: mutants.Layout, tmp_path: Path
) -> None:
    header = mutants.set_value(layout, "gemma3.context_length", corpus.u32(2**31 - 1))
    assert inspect(sparse(layout, header, tmp_path)).n_ctx_train == 2**31 - 1


def test_a_shallow_nested_array_is_read(layout: mutants.Layout, tmp_path: Path) -> None:
    header = mutants.add_field(layout, "x.nested", mutants.nested_array(3))
    assert isinstance(inspect(sparse(layout, header, tmp_path)), GGUFInfo)


def test_every_generated_mutant_is_info_or_one_line(layout: mutants.Layout, tmp_path: Path) -> None:
    """A few hundred mutants, in-process: no other exception, no multi-line message.

    With the vocabulary cut to 300 tokens, so that each header takes a millisecond to
    check; the same mutants of the whole file go through `ponder run` in the e2e tests.
    """
    small = mutants.shrunk(layout, 300)
    assert inspect(mutants.write_sparse(small, small.header, tmp_path / "s.gguf")).n_vocab == 300
    outcomes = {"ok": 0, "refused": 0}
    path = tmp_path / "mutant.gguf"
    for name, header in corpus.generated(small):
        mutants.write_sparse(small, header, path)
        try:
            inspect(path)
        except GGUFError as error:
            assert "\n" not in str(error), name
            assert error.exit_code == ExitCode.MODEL_LOAD, name
            outcomes["refused"] += 1
        else:
            outcomes["ok"] += 1
    assert outcomes["refused"] > 100 and outcomes["ok"] > 50, outcomes
