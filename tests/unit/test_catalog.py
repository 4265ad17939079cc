"""The shipped catalog's facts, reference resolution, and errors for malformed catalogs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.catalog import Catalog, ModelEntry, load_catalog, parse_catalog
from ponder.errors import CatalogError, ModelNotFoundError

DISTILLS = {
    "r1-distill-qwen-1.5b": "DeepSeek-R1-Distill-Qwen-1.5B",
    "r1-distill-qwen-7b": "DeepSeek-R1-Distill-Qwen-7B",
    "r1-distill-llama-8b": "DeepSeek-R1-Distill-Llama-8B",
    "r1-distill-qwen-14b": "DeepSeek-R1-Distill-Qwen-14B",
    "r1-distill-qwen-32b": "DeepSeek-R1-Distill-Qwen-32B",
    "r1-distill-llama-70b": "DeepSeek-R1-Distill-Llama-70B",
}
DISTILL_QUANTS = ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "IQ4_XS"]
OTHERS = ["qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwq-32b", "r1-0528-qwen3-8b"]

ALIASES = {
    "r1:1.5b": "r1-distill-qwen-1.5b",
    "r1:7b": "r1-distill-qwen-7b",
    "r1:8b": "r1-distill-llama-8b",
    "r1:14b": "r1-distill-qwen-14b",
    "r1:32b": "r1-distill-qwen-32b",
    "r1:70b": "r1-distill-llama-70b",
    "r1-qwen:1.5b": "r1-distill-qwen-1.5b",
    "r1-qwen:7b": "r1-distill-qwen-7b",
    "r1-qwen:14b": "r1-distill-qwen-14b",
    "r1-qwen:32b": "r1-distill-qwen-32b",
    "r1-llama:8b": "r1-distill-llama-8b",
    "r1-llama:70b": "r1-distill-llama-70b",
    "qwen3:0.6b": "qwen3-0.6b",
    "qwen3:1.7b": "qwen3-1.7b",
    "qwen3:4b": "qwen3-4b",
    "qwen3:8b": "qwen3-8b",
    "qwq:32b": "qwq-32b",
    "qwq": "qwq-32b",
    "r1-0528:8b": "r1-0528-qwen3-8b",
    "r1-0528": "r1-0528-qwen3-8b",
}

MINIMAL = """
[[model]]
id = "tiny"
name = "Tiny"
aliases = ["tiny:1b"]

[[model.quant]]
quant = "Q4_K_M"
repo = "someone/Tiny-GGUF"
files = ["Tiny-Q4_K_M.gguf"]
size_bytes = 1000
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _model(catalog: Catalog, model_id: str) -> ModelEntry:
    entry = catalog.get(model_id)
    assert entry is not None, model_id
    return entry


def _error(text: str, source: str = "models.toml") -> str:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, source)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------ shipped catalog


def test_shipped_catalog_has_every_model_in_order(catalog: Catalog) -> None:
    ids = [entry.id for entry in catalog.models]
    assert ids == [*DISTILLS, *OTHERS]
    assert all(entry.default_quant == "Q4_K_M" for entry in catalog)


@pytest.mark.parametrize("quant", DISTILL_QUANTS)
@pytest.mark.parametrize("model_id", list(DISTILLS))
def test_every_distill_has_every_quant_from_bartowski(
    catalog: Catalog, model_id: str, quant: str
) -> None:
    entry = _model(catalog, model_id).quant(quant)
    assert entry is not None
    assert entry.repo == f"bartowski/{DISTILLS[model_id]}-GGUF"
    assert entry.revision == "main"
    assert entry.size_bytes > 0
    assert entry.files and all(name.startswith(DISTILLS[model_id]) for name in entry.files)
    assert all(f"-{quant}" in name for name in entry.files)


def test_every_quant_file_is_named_after_its_quant(catalog: Catalog) -> None:
    for model in catalog:
        for entry in model.quants:
            for name in entry.files:
                assert entry.quant.lower() in name.lower(), (model.id, name)
                assert name.endswith(".gguf")
            if entry.sha256 is not None:
                assert len(entry.sha256) == len(entry.files)
                assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in entry.sha256)


def test_sizes_grow_with_bits_per_weight(catalog: Catalog) -> None:
    order = ["IQ4_XS", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]
    for model in catalog:
        sizes = [q.size_bytes for name in order if (q := model.quant(name)) is not None]
        assert sizes == sorted(sizes), model.id


def test_exact_sizes_from_lfs_pointers(catalog: Catalog) -> None:
    llama8 = _model(catalog, "r1-distill-llama-8b").quant("Q4_K_M")
    assert llama8 is not None and llama8.size_exact
    assert llama8.size_bytes == 4_920_736_608
    q8 = _model(catalog, "r1-distill-llama-70b").quant("Q8_0")
    assert q8 is not None and q8.size_exact
    assert q8.size_bytes == 39_927_000_896 + 35_048_050_944
    approximate = _model(catalog, "r1-distill-qwen-7b").quant("Q4_K_M")
    assert approximate is not None and not approximate.size_exact


def test_70b_large_quants_are_split_into_a_subfolder(catalog: Catalog) -> None:
    model = _model(catalog, "r1-distill-llama-70b")
    for name in ["Q5_K_M", "Q6_K", "Q8_0"]:
        entry = model.quant(name)
        assert entry is not None and entry.is_split
        stem = f"DeepSeek-R1-Distill-Llama-70B-{name}"
        assert entry.files == [
            f"{stem}/{stem}-00001-of-00002.gguf",
            f"{stem}/{stem}-00002-of-00002.gguf",
        ]
        assert entry.primary_file.endswith("-00001-of-00002.gguf")
    q8 = model.quant("Q8_0")
    assert q8 is not None and q8.sha256 is not None and len(q8.sha256) == 2
    single = model.quant("Q4_K_M")
    assert single is not None and not single.is_split


def test_architecture_numbers_are_plausible(catalog: Catalog) -> None:
    for model in catalog:
        arch = model.arch
        assert arch is not None, model.id
        assert arch.heads % arch.kv_heads == 0
        assert arch.head_dim == 128
        assert 32_768 <= arch.context_length <= 131_072
        assert 100_000 < arch.vocab_size < 200_000
        if arch.gguf_arch in ("qwen2", "llama"):  # Qwen3 decouples head_dim from hidden size
            assert arch.heads * arch.head_dim == arch.hidden_size, model.id


@pytest.mark.parametrize(
    ("model_id", "per_token"),
    [
        ("r1-distill-qwen-1.5b", 28_672),
        ("r1-distill-qwen-7b", 57_344),
        ("r1-distill-llama-8b", 131_072),
        ("r1-distill-qwen-14b", 196_608),
        ("r1-distill-llama-70b", 327_680),
        ("qwen3-0.6b", 114_688),
        ("qwen3-8b", 147_456),
    ],
)
def test_kv_cache_per_token_matches_research_table(
    catalog: Catalog, model_id: str, per_token: int
) -> None:
    arch = _model(catalog, model_id).arch
    assert arch is not None
    assert arch.kv_cache_bytes_per_token() == per_token
    assert arch.kv_cache_bytes_per_token(1.0) == per_token // 2


def test_prompt_and_sampling_policies(catalog: Catalog) -> None:
    for model_id in DISTILLS:
        model = _model(catalog, model_id)
        assert not model.prompt.system_prompt
        assert model.prompt.think_prefill == "<think>\n"
        assert model.prompt.strip_reasoning_in_history
        assert (model.sampling.temperature, model.sampling.top_p) == (0.6, 0.95)
        assert model.license is not None and model.license.startswith("MIT")
    for model_id in ["qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b"]:
        model = _model(catalog, model_id)
        assert model.prompt.system_prompt and model.prompt.think_prefill is None
        sampling = model.sampling
        assert (sampling.temperature, sampling.top_p, sampling.top_k, sampling.min_p) == (
            0.6,
            0.95,
            20,
            0.0,
        )
        assert model.license == "Apache-2.0"
    qwq = _model(catalog, "qwq-32b")
    assert qwq.prompt.think_prefill == "<think>\n" and qwq.license == "Apache-2.0"
    assert qwq.quants[0].files == ["qwq-32b-q4_k_m.gguf"]
    r1_0528 = _model(catalog, "r1-0528-qwen3-8b")
    assert r1_0528.prompt.system_prompt and r1_0528.prompt.think_prefill is None
    assert r1_0528.arch is not None and r1_0528.arch.context_length == 131_072
    assert "Llama 3.1" in (_model(catalog, "r1-distill-llama-8b").license or "")
    assert "Llama 3.3" in (_model(catalog, "r1-distill-llama-70b").license or "")


# ------------------------------------------------------------------------ resolving


@pytest.mark.parametrize(("alias", "model_id"), list(ALIASES.items()))
def test_every_alias_resolves(catalog: Catalog, alias: str, model_id: str) -> None:
    resolved = catalog.resolve(alias)
    assert resolved.model.id == model_id
    assert resolved.quant.quant == "Q4_K_M"
    assert catalog.resolve(resolved.display_ref) == resolved


def test_every_catalog_name_is_covered_by_the_alias_table(catalog: Catalog) -> None:
    aliases = {alias for entry in catalog for alias in entry.aliases}
    assert aliases == set(ALIASES)


@pytest.mark.parametrize("ref", ["r1:7b@Q8_0", "r1:7b@q8_0", "R1:7B@Q8_0", " r1:7b @ q8_0 "])
def test_quant_after_at_is_case_insensitive(catalog: Catalog, ref: str) -> None:
    resolved = catalog.resolve(ref)
    assert resolved.display_ref == "r1:7b@Q8_0"
    assert resolved.primary_file == "DeepSeek-R1-Distill-Qwen-7B-Q8_0.gguf"


def test_full_ids_resolve_case_insensitively(catalog: Catalog) -> None:
    assert catalog.resolve("R1-0528-Qwen3-8B").model.id == "r1-0528-qwen3-8b"
    assert catalog.resolve("R1-Distill-Llama-70B@iq4_xs").display_ref == "r1-llama:70b@IQ4_XS"


def test_preferred_quant_overrides_default_unless_missing(catalog: Catalog) -> None:
    assert catalog.resolve("r1:14b", preferred_quant="q6_k").quant.quant == "Q6_K"
    # QwQ has no IQ4_XS: a preference falls back to the default, an explicit @ does not.
    assert catalog.resolve("qwq", preferred_quant="IQ4_XS").quant.quant == "Q4_K_M"
    assert catalog.resolve("r1:14b@Q8_0", preferred_quant="Q6_K").quant.quant == "Q8_0"


def test_unknown_name_suggests_close_matches(catalog: Catalog) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        catalog.resolve("r1:7")
    assert caught.value.message == "unknown model 'r1:7'"
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("did you mean r1:7b")
    with pytest.raises(ModelNotFoundError) as caught:
        catalog.resolve("qwen3:8")
    assert caught.value.hint is not None and "qwen3:8b" in caught.value.hint


def test_unknown_name_without_close_match(catalog: Catalog) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        catalog.resolve("zzzzzz")
    assert caught.value.hint is not None and "did you mean" not in caught.value.hint


def test_unknown_quant_lists_available_quants(catalog: Catalog) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        catalog.resolve("qwq:32b@IQ4_XS")
    assert "no quant 'IQ4_XS'" in caught.value.message
    assert caught.value.hint == "available quants: Q4_K_M, Q5_K_M, Q6_K, Q8_0"
    with pytest.raises(ModelNotFoundError):
        catalog.resolve("r1:7b@")


def test_get_is_by_id_only(catalog: Catalog) -> None:
    assert _model(catalog, "R1-DISTILL-QWEN-7B").id == "r1-distill-qwen-7b"
    assert catalog.get("r1:7b") is None


@settings(max_examples=150, deadline=None)
@given(ref=st.text(max_size=30))
def test_resolve_either_succeeds_or_says_not_found(catalog: Catalog, ref: str) -> None:
    try:
        resolved = catalog.resolve(ref)
    except ModelNotFoundError as exc:
        assert exc.message
    else:
        assert resolved.quant in resolved.model.quants


# -------------------------------------------------------------- malformed catalogs


def test_minimal_catalog_gets_defaults() -> None:
    (entry,) = parse_catalog(MINIMAL, "models.toml")
    assert entry.default_quant == "Q4_K_M" and entry.arch is None
    assert (entry.sampling.temperature, entry.sampling.top_p) == (0.6, 0.95)
    assert entry.prompt.system_prompt and entry.prompt.think_prefill is None
    prefilled = MINIMAL.replace('name = "Tiny"', 'name = "Tiny"\nprompt = { think_prefill = "" }')
    assert parse_catalog(prefilled, "models.toml")[0].prompt.think_prefill is None


def test_wrong_type_names_model_quant_and_field() -> None:
    text = MINIMAL.replace('id = "tiny"', 'id = "r1-distill-qwen-7b"').replace(
        "size_bytes = 1000", 'size_bytes = "4.68 GB"'
    )
    assert _error(text) == (
        "models.toml: model 'r1-distill-qwen-7b', quant 'Q4_K_M': field 'size_bytes': "
        "Input should be a valid integer"
    )


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ('name = "Tiny"', 'name = "Tiny"\ncolour = "blue"', "model 'tiny': field 'colour'"),
        (
            "size_bytes = 1000",
            "size_bytes = 1000\nsha = 'x'",
            "model 'tiny', quant 'Q4_K_M': field 'sha'",
        ),
        (
            'name = "Tiny"',
            'name = "Tiny"\nsampling = { temprature = 0.6 }',
            "model 'tiny': field 'sampling.temprature'",
        ),
    ],
)
def test_unknown_field_is_named(old: str, new: str, where: str) -> None:
    assert _error(MINIMAL.replace(old, new)) == f"models.toml: {where}: unknown field"


def test_unknown_top_level_table() -> None:
    message = _error(
        MINIMAL.replace("[[model]]", "[[modle]]").replace("model.quant", "modle.quant")
    )
    assert message == "models.toml: field 'modle': unknown field"


def test_missing_id_names_the_entry_by_position() -> None:
    text = MINIMAL + MINIMAL.replace('id = "tiny"\n', "").replace("tiny:1b", "tiny:2b")
    message = _error(text)
    assert message.startswith("models.toml: model #2: field 'id': Field required")


def test_wrong_type_in_arch_and_out_of_range_sampling() -> None:
    arch = 'arch = { gguf_arch = "llama", layers = "32", hidden_size = 1, heads = 1, ' + (
        "kv_heads = 1, head_dim = 1, context_length = 1, vocab_size = 1 }"
    )
    message = _error(MINIMAL.replace('name = "Tiny"', f'name = "Tiny"\n{arch}'))
    assert "model 'tiny': field 'arch.layers': Input should be a valid integer" in message
    message = _error(MINIMAL.replace('name = "Tiny"', 'name = "Tiny"\nsampling = { top_p = 2.0 }'))
    assert "field 'sampling.top_p'" in message


def test_kv_heads_must_divide_heads() -> None:
    arch = 'arch = { gguf_arch = "llama", layers = 2, hidden_size = 64, heads = 12, ' + (
        "kv_heads = 5, head_dim = 16, context_length = 4096, vocab_size = 100 }"
    )
    message = _error(MINIMAL.replace('name = "Tiny"', f'name = "Tiny"\n{arch}'))
    assert "field 'arch.kv_heads': 5 KV heads do not divide 12 attention heads" in message


def test_duplicate_id() -> None:
    message = _error(MINIMAL + MINIMAL.replace("tiny:1b", "tiny:2b"))
    assert message == (
        "models.toml: model 'tiny': field 'id': id 'tiny' is already used by model 'tiny'"
    )


def test_duplicate_alias_across_models() -> None:
    message = _error(MINIMAL + MINIMAL.replace('id = "tiny"', 'id = "other"'))
    assert message == (
        "models.toml: model 'other': field 'aliases': "
        "alias 'tiny:1b' is already used by model 'tiny'"
    )


def test_quant_listed_twice() -> None:
    quant = MINIMAL[MINIMAL.index("[[model.quant]]") :].replace("Q4_K_M", "q4_k_m")
    message = _error(MINIMAL + quant)
    assert message == "models.toml: model 'tiny': field 'quant': quant 'q4_k_m' is listed twice"


def test_bad_toml_syntax() -> None:
    message = _error(MINIMAL.replace('name = "Tiny"', "name = Tiny"))
    assert message.startswith("models.toml: not valid TOML:")
    assert "line 4" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'aliases = ["tiny:1b"]',
            'aliases = ["tiny:1b"]\ndefault_quant = "Q8_0"',
            "field 'default_quant': 'Q8_0' is not one of this model's quants (Q4_K_M)",
        ),
        (
            "size_bytes = 1000",
            'size_bytes = 1000\nsha256 = ["abc"]',
            "field 'sha256': 'abc' is not a sha256 hex digest",
        ),
        (
            "size_bytes = 1000",
            f'size_bytes = 1000\nsha256 = ["{"a" * 64}", "{"b" * 64}"]',
            "field 'sha256': 2 digests for 1 files",
        ),
        (
            'files = ["Tiny-Q4_K_M.gguf"]',
            'files = ["T/T-Q4_K_M-00002-of-00002.gguf", "T/T-Q4_K_M-00001-of-00002.gguf"]',
            "field 'files': 'T/T-Q4_K_M-00002-of-00002.gguf' is shard 2 of 2, "
            "but is listed at position 1 of 2",
        ),
        (
            'files = ["Tiny-Q4_K_M.gguf"]',
            'files = ["../Tiny-Q4_K_M.gguf"]',
            "field 'files': '../Tiny-Q4_K_M.gguf' is not a plain relative path",
        ),
        ('aliases = ["tiny:1b"]', 'aliases = ["Tiny 1b"]', "field 'aliases': alias 'Tiny 1b'"),
        ('id = "tiny"', 'id = "Tiny"', "model 'Tiny': field 'id': String should match pattern"),
        ("size_bytes = 1000", "size_bytes = 0", "field 'size_bytes': Input should be greater"),
    ],
)
def test_invalid_values_are_explained(old: str, new: str, expected: str) -> None:
    assert expected in _error(MINIMAL.replace(old, new))


def test_more_than_one_problem_is_counted() -> None:
    text = MINIMAL.replace("size_bytes = 1000", 'size_bytes = "x"\nrepo2 = 1\nrepo3 = 2')
    assert _error(text).endswith("(and 2 more problems)")


# ----------------------------------------------------------------- user catalogs


def test_user_catalog_adds_and_replaces(tmp_path: Path) -> None:
    user = tmp_path / "models.toml"
    replacement = (
        MINIMAL.replace('id = "tiny"', 'id = "r1-distill-qwen-7b"')
        .replace('name = "Tiny"', 'name = "My R1 7B"')
        .replace('aliases = ["tiny:1b"]', 'aliases = ["r1:7b", "mine"]')
    )
    user.write_text(replacement + MINIMAL, encoding="utf-8")
    catalog = load_catalog(user)
    ids = [entry.id for entry in catalog.models]
    assert ids == [*DISTILLS, *OTHERS, "tiny"]
    assert catalog.resolve("mine").model.name == "My R1 7B"
    assert catalog.resolve("r1:7b").quant.repo == "someone/Tiny-GGUF"
    with pytest.raises(ModelNotFoundError):
        catalog.resolve("r1-qwen:7b")  # the replacement dropped that alias
    assert catalog.resolve("tiny:1b").display_ref == "tiny:1b@Q4_K_M"


def test_user_alias_clash_blames_the_user_file(tmp_path: Path) -> None:
    user = tmp_path / "models.toml"
    user.write_text(MINIMAL.replace("tiny:1b", "r1:7b"), encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(user)
    assert str(caught.value) == (
        f"{user}: model 'tiny': field 'aliases': "
        "alias 'r1:7b' is already used by model 'r1-distill-qwen-7b'"
    )


def test_user_catalog_errors_name_the_user_file(tmp_path: Path) -> None:
    user = tmp_path / "models.toml"
    user.write_text(MINIMAL.replace("size_bytes = 1000", "size_bytes = -1"), encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(user)
    assert str(caught.value).startswith(f"{user}: model 'tiny', quant 'Q4_K_M': field 'size_bytes'")
    user.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(CatalogError, match="not UTF-8"):
        load_catalog(user)


def test_missing_user_catalog_is_ignored(tmp_path: Path) -> None:
    assert len(load_catalog(tmp_path / "absent.toml")) == len(DISTILLS) + len(OTHERS)


# ---------------------------------------------------------------- hostile numbers

REAL_ARCH = {
    "layers": 28,
    "hidden_size": 1536,
    "heads": 12,
    "kv_heads": 2,
    "head_dim": 128,
    "context_length": 131072,
    "vocab_size": 151936,
}


def _with_arch(**numbers: int) -> str:
    fields = ", ".join(f"{k} = {v}" for k, v in {**REAL_ARCH, **numbers}.items())
    return MINIMAL.replace(
        'name = "Tiny"', f'name = "Tiny"\narch = {{ gguf_arch = "qwen2", {fields} }}'
    )


@pytest.mark.parametrize("field", sorted(REAL_ARCH))
def test_architecture_numbers_far_beyond_any_model_are_refused(field: str) -> None:
    """A planner fed a billion layers spreads a file over a billion-entry tuple and walks
    it for every candidate offload: `ponder fit` ran past 60 s. The schema stops it."""
    message = _error(_with_arch(**{field: 2**62}))
    assert f"field 'arch.{field}': Input should be less than or equal to" in message


def test_sizes_and_quant_lists_are_bounded() -> None:
    assert "field 'size_bytes': Input should be less than or equal to" in _error(
        MINIMAL.replace("size_bytes = 1000", f"size_bytes = {2**62}")
    )
    quant = MINIMAL.split("[[model.quant]]")[1]
    many = MINIMAL + "".join(
        "[[model.quant]]" + quant.replace("Q4_K_M", f"Q{i}") for i in range(200)
    )
    assert "field 'quant': List should have at most" in _error(many)


def test_the_largest_allowed_architecture_is_accepted() -> None:
    from ponder.catalog.schema import ARCH_LIMITS

    (entry,) = parse_catalog(_with_arch(**ARCH_LIMITS), "t")  # kv_heads == heads divides it
    assert entry.arch is not None and entry.arch.layers == ARCH_LIMITS["layers"]
