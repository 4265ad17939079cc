"""Tests of the GGUF header reader: the real Gemma 3 270M file, and broken tiny files."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ponder.errors import ExitCode, GGUFError
from ponder.gguf_info import GGUFInfo, inspect

APP = Path(__file__).resolve().parents[2] / "app"


# -- the real model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def gemma(gemma_path: Path) -> GGUFInfo:
    return inspect(gemma_path)


def test_gemma_facts(gemma: GGUFInfo, gemma_path: Path) -> None:
    print(
        f"\ngemma: arch={gemma.architecture} layers={gemma.n_layer} ctx={gemma.n_ctx_train} "
        f"embd={gemma.n_embd} heads={gemma.n_head} kv_heads={gemma.n_head_kv} "
        f"head_dim={gemma.head_dim_k}/{gemma.head_dim_v} vocab={gemma.n_vocab} "
        f"type={gemma.file_type} template={gemma.chat_template is not None}"
    )
    assert gemma.path == gemma_path
    assert gemma.file_size == gemma_path.stat().st_size == 253_113_024
    assert gemma.architecture == "gemma3"
    assert gemma.name == "Gemma 3 270m"
    assert gemma.file_type == "Q4_K_M"
    assert (gemma.n_layer, gemma.n_ctx_train, gemma.n_embd) == (18, 32768, 640)
    assert (gemma.n_head, gemma.n_head_kv, gemma.head_dim_k, gemma.head_dim_v) == (4, 1, 256, 256)
    assert gemma.n_vocab == 262_144
    assert (gemma.bos_token, gemma.eos_token, gemma.add_bos_token) == ("<bos>", "<eos>", True)
    assert gemma.split_count == 1
    assert gemma.kv_bytes_per_token == 18 * 1 * (256 + 256) * 2


def test_gemma_is_a_base_model_without_template(gemma_path: Path) -> None:
    """Checked in the raw bytes too, not only through our own parser."""
    assert inspect(gemma_path).chat_template is None
    with gemma_path.open("rb") as file:
        header = file.read(8 << 20)
    assert b"tokenizer.chat_template" not in header


def test_gemma_tensor_bytes(gemma: GGUFInfo) -> None:
    assert len(gemma.layer_bytes) == gemma.n_layer
    assert all(n > 0 for n in gemma.layer_bytes)
    header = gemma.file_size - sum(gemma.layer_bytes) - gemma.other_bytes
    print(f"\ngemma: header {header:,} bytes, other tensors {gemma.other_bytes:,}")
    assert 0 < header < 8 << 20  # the header: metadata with the 262k-token vocabulary
    assert gemma.other_bytes > 170_000_000  # token_embd, Q8_0 640 x 262144


def test_gemma_inspect_is_fast(gemma_path: Path) -> None:
    inspect(gemma_path)
    start = time.perf_counter()
    inspect(gemma_path)
    elapsed = time.perf_counter() - start
    print(f"\ninspect(gemma) took {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0


# -- tiny made-up models -------------------------------------------------------------


def write_tiny(
    path: Path,
    *,
    block_count: int | None = 2,
    template: str | None = None,
    split_max_tensors: int = 0,
) -> list[Path]:
    """A tiny llama-shaped GGUF; returns the files written (several when split)."""
    writer = gguf.GGUFWriter(path, "llama", split_max_tensors=split_max_tensors)
    writer.add_name("tiny")
    if block_count is not None:
        writer.add_block_count(block_count)
    writer.add_context_length(256)
    writer.add_embedding_length(32)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_token_list(["<s>", "</s>", "a", "b", "c"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.add_add_bos_token(False)
    if template is not None:
        writer.add_chat_template(template)
    rng = np.random.default_rng(0)
    writer.add_tensor("token_embd.weight", rng.random((5, 32), dtype=np.float32))
    for i in range(2):
        weights = rng.random((32, 32), dtype=np.float32)
        q8 = gguf.quants.quantize(weights, gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(f"blk.{i}.attn_q.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(32, dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return writer.format_shard_names(path)


LAYER_BYTES = 32 * 34 + 32 * 4  # Q8_0 32x32 (34 bytes per 32 values) + f32 norm
OTHER_BYTES = 5 * 32 * 4 + 32 * 4


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    write_tiny(path)
    return path


def test_tiny_model(tiny: Path) -> None:
    info = inspect(str(tiny))
    assert info.path == tiny
    assert info.architecture == "llama"
    assert (info.n_layer, info.n_ctx_train, info.n_embd, info.n_head, info.n_head_kv) == (
        2,
        256,
        32,
        4,
        2,
    )
    assert (info.head_dim_k, info.head_dim_v) == (8, 8)  # n_embd // n_head by default
    assert (info.n_vocab, info.bos_token, info.eos_token) == (5, "<s>", "</s>")
    assert info.add_bos_token is False
    assert info.file_type == "Q8_0"
    assert info.chat_template is None
    assert info.layer_bytes == (LAYER_BYTES, LAYER_BYTES)
    assert info.other_bytes == OTHER_BYTES
    assert info.kv_bytes_per_token == 2 * 2 * (8 + 8) * 2


def test_tensor_bytes_agree_with_gguf_reader(tiny: Path) -> None:
    reader = gguf.GGUFReader(tiny)
    by_reader = sum(int(t.n_bytes) for t in reader.tensors)
    info = inspect(tiny)
    assert sum(info.layer_bytes) + info.other_bytes == by_reader
    last = max(reader.tensors, key=lambda t: t.data_offset)
    assert info.file_size >= last.data_offset + last.n_bytes


def test_chat_template_is_read(tmp_path: Path) -> None:
    template = "{% for m in messages %}{{ m.content }}{% endfor %}<think>\n"
    write_tiny(tmp_path / "t.gguf", template=template)
    assert inspect(tmp_path / "t.gguf").chat_template == template


def expect_error(path: Path, fragment: str) -> GGUFError:
    with pytest.raises(GGUFError) as caught:
        inspect(path)
    assert fragment in str(caught.value)
    assert caught.value.exit_code == ExitCode.MODEL_LOAD
    assert "\n" not in str(caught.value)
    return caught.value


def test_truncated_in_tensor_data(tiny: Path, tmp_path: Path) -> None:
    data = tiny.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[:-100])
    error = expect_error(cut, "is truncated: 100 bytes missing")
    assert error.hint == "download the model again"


def test_truncated_in_header(tiny: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny.read_bytes()[:60])
    expect_error(cut, "is truncated: the GGUF header runs past the end of the file")


def test_every_cut_is_refused_cleanly(tiny: Path) -> None:
    """Cut at every byte of the header and every 37th of the data (shrinking one file)."""
    full = inspect(tiny)
    tensor_bytes = sum(full.layer_bytes) + full.other_bytes
    header_end = full.file_size - tensor_bytes  # an upper bound: padding included
    cuts = sorted({*range(header_end), *range(header_end, full.file_size, 37)}, reverse=True)
    for n in cuts:
        os.truncate(tiny, n)
        try:
            info = inspect(tiny)
        except GGUFError as error:
            assert str(error).startswith(f"{tiny} is truncated: " if n >= 8 else f"{tiny} is ")
        else:  # only padding after the last tensor may go
            assert n > tensor_bytes and info.layer_bytes == full.layer_bytes


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "model.zip.gguf"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    expect_error(path, "is not a GGUF file (it starts with b'PK\\x03\\x04")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.gguf"
    path.write_bytes(random.Random(1).randbytes(4096))
    expect_error(path, "is not a GGUF file")


def test_html_error_page(tmp_path: Path) -> None:
    path = tmp_path / "page.gguf"
    path.write_bytes(b"<!DOCTYPE html><html>Rate limited</html>")
    error = expect_error(path, "is not a GGUF file (it starts with b'<!DOCTYP")
    assert error.hint == "download a .gguf model"


def test_git_lfs_pointer(tmp_path: Path) -> None:
    path = tmp_path / "lfs.gguf"
    path.write_bytes(b"version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 1\n")
    expect_error(path, "is a Git LFS pointer")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.touch()
    expect_error(path, "is empty (0 bytes)")


def test_directory(tmp_path: Path) -> None:
    expect_error(tmp_path, "is a directory, not a GGUF file")


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nope.gguf", f"no such file: {tmp_path / 'nope.gguf'}")


@pytest.mark.parametrize(
    ("version", "fragment"),
    [(1, "GGUF version 1; only versions 2 and 3"), (3 << 24, "big-endian")],
)
def test_unsupported_version(tiny: Path, version: int, fragment: str) -> None:
    data = bytearray(tiny.read_bytes())
    data[4:8] = version.to_bytes(4, "little")
    tiny.write_bytes(data)
    expect_error(tiny, fragment)


def test_missing_block_count(tmp_path: Path) -> None:
    path = tmp_path / "nolayers.gguf"
    write_tiny(path, block_count=None)
    expect_error(path, "lacks the required metadata key 'llama.block_count'")


@pytest.mark.parametrize("count", [0, 1 << 20])
def test_implausible_block_count(tmp_path: Path, count: int) -> None:
    path = tmp_path / "odd.gguf"
    write_tiny(path, block_count=count)
    expect_error(path, f"corrupt GGUF header in {path}: llama.block_count is {count}")


def test_missing_architecture(tiny: Path) -> None:
    data = tiny.read_bytes().replace(b"general.architecture", b"general.architecturX")
    tiny.write_bytes(data)
    expect_error(tiny, "lacks the required metadata key 'general.architecture'")


def test_wrong_value_type(tmp_path: Path) -> None:
    path = tmp_path / "strlayers.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_string("llama.block_count", "two")
    writer.add_context_length(8)
    writer.add_embedding_length(8)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    expect_error(path, "corrupt GGUF header in")


def test_unknown_tensor_type(tiny: Path) -> None:
    data = bytearray(tiny.read_bytes())
    name = b"output_norm.weight"
    at = data.index(name) + len(name) + 4 + 8  # n_dims, one dim, then the type
    data[at : at + 4] = (200).to_bytes(4, "little")
    tiny.write_bytes(data)
    expect_error(tiny, "corrupt GGUF header in")


# -- split models ------------------------------------------------------------------


@pytest.fixture()
def split(tmp_path: Path) -> list[Path]:
    shards = write_tiny(tmp_path / "tiny.gguf", split_max_tensors=2)
    assert [p.name for p in shards] == [
        "tiny-00001-of-00003.gguf",
        "tiny-00002-of-00003.gguf",
        "tiny-00003-of-00003.gguf",
    ]
    return shards


def test_split_model(split: list[Path]) -> None:
    info = inspect(split[0])
    assert info.split_count == 3
    assert info.file_size == sum(p.stat().st_size for p in split)
    assert info.layer_bytes == (LAYER_BYTES, LAYER_BYTES)  # tensors from every shard
    assert info.other_bytes == OTHER_BYTES


def test_split_model_missing_shard(split: list[Path]) -> None:
    split[1].unlink()
    expect_error(split[0], f"shard 2 of 3 of tiny-00001-of-00003.gguf is missing: {split[1]}")


def test_split_model_truncated_shard(split: list[Path]) -> None:
    split[2].write_bytes(split[2].read_bytes()[:-10])
    expect_error(split[0], f"{split[2]} is truncated: 10 bytes missing")


def test_split_model_needs_first_shard(split: list[Path]) -> None:
    expect_error(split[1], "is shard 2 of a 3-part split model; give the first shard")


def test_split_model_renamed(split: list[Path]) -> None:
    renamed = split[0].with_name("renamed.gguf")
    split[0].rename(renamed)
    expect_error(renamed, "is shard 1 of a 3-part split model")


# -- robustness --------------------------------------------------------------------


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_header_gives_info_or_gguf_error(
    tiny: Path, tmp_path: Path, changes: list[tuple[int, int]]
) -> None:
    data = bytearray(tiny.read_bytes())
    header_end = len(data) - sum(inspect(tiny).layer_bytes) - OTHER_BYTES
    for at, byte in changes:
        data[at % header_end] = byte
    path = tmp_path / "mutant.gguf"
    path.write_bytes(data)
    try:
        inspect(path)
    except GGUFError as error:
        assert "\n" not in str(error)


SCRIPT = textwrap.dedent(
    """
    import sys
    from ponder.errors import GGUFError
    from ponder.gguf_info import inspect
    for path in sys.argv[1:]:
        try:
            inspect(path)
        except GGUFError as error:
            print(f"error: {error}", file=sys.stderr)
        else:
            print(f"ok: {path}")
    sys.exit(4)
    """
)


def test_broken_files_do_not_crash_the_interpreter(tiny: Path, tmp_path: Path) -> None:
    data = tiny.read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(data[:24] + b"\xff" * 64 + data[88:])
    env = {**os.environ, "PYTHONPATH": str(APP)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(truncated), str(corrupt), str(tiny)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = proc.stderr.splitlines()
    assert errors[0].startswith(f"error: {truncated} is truncated")
    assert errors[1].startswith("error: ")
    assert proc.stdout == f"ok: {tiny}\n"
