"""One definition of each sampling option: its bounds hold everywhere they are used."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.catalog import Sampling
from ponder.chat_settings import ChatSettings
from ponder.sampling import BY_NAME, CATALOG_OPTIONS, CHAT_OPTIONS, OPTIONS, SamplingParams


def test_every_option_is_a_field_with_its_default() -> None:
    defaults = SamplingParams()
    assert [o.name for o in OPTIONS] == [
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repeat_penalty",
        "seed",
        "max_tokens",
    ]
    for option in OPTIONS:
        assert getattr(defaults, option.name) == option.default
    assert (defaults.temperature, defaults.top_p, defaults.top_k) == (0.6, 0.95, 0)


@pytest.mark.parametrize(
    ("name", "good", "bad", "advice"),
    [
        ("temperature", 2.0, 2.5, "use a value from 0 to 2"),
        ("top_p", 1.0, 0.0, "use a value above 0 and at most 1"),
        ("top_k", 0, -1, "use at least 0"),
        ("max_tokens", 1, 0, "use at least 1"),
        ("repeat_penalty", 1.1, 0.0, "use a value above 0"),
    ],
)
def test_bounds_are_checked_and_explained(name: str, good: float, bad: float, advice: str) -> None:
    option = BY_NAME[name]
    assert option.check(good) == good
    with pytest.raises(ValueError, match=name):
        option.check(bad)
    assert option.advice() == advice


def test_wrong_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="whole number"):
        BY_NAME["max_tokens"].check(2.5)
    with pytest.raises(ValueError, match="a number"):
        BY_NAME["temperature"].check("hot")
    with pytest.raises(ValueError, match="finite"):
        BY_NAME["temperature"].check(float("nan"))
    with pytest.raises(ValueError, match="a number"):
        BY_NAME["temperature"].check(True)


def test_the_catalog_table_is_built_from_the_same_bounds() -> None:
    assert set(Sampling.model_fields) == {o.name for o in CATALOG_OPTIONS}
    assert Sampling(temperature=2.0).temperature == 2.0  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Sampling(temperature=2.5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Sampling(top_p=0.0)  # type: ignore[call-arg]


def test_overrides_go_on_top_and_unknown_names_are_refused() -> None:
    params = SamplingParams().with_overrides({"temperature": 0.2, "top_p": None})
    assert (params.temperature, params.top_p) == (0.2, 0.95)
    with pytest.raises(ValueError, match="unknown sampling option 'temprature'"):
        SamplingParams().with_overrides({"temprature": 0.2})
    assert params.recorded()["temperature"] == 0.2 and params.recorded()["grammar"] is False


def test_chat_settings_round_trip_and_drop_what_is_no_longer_valid() -> None:
    assert [o.name for o in CHAT_OPTIONS] == ["temperature", "top_p", "max_tokens"]
    settings = ChatSettings(
        sampling={"temperature": 0.3, "max_tokens": 20},
        n_ctx=2048,
        system_prompt="be brief",
        keep_reasoning=True,
    )
    saved = settings.to_saved()
    assert saved == {"temperature": 0.3, "max_tokens": 20, "n_ctx": 2048, "keep_reasoning": True}
    assert ChatSettings.from_saved(saved, "be brief") == settings
    # A hand-edited or older row: bad values are dropped, not trusted.
    odd = ChatSettings.from_saved({"temperature": 9, "top_p": "x", "n_ctx": 10}, None)
    assert odd == ChatSettings()
    with pytest.raises(ValueError, match="temperature"):
        ChatSettings(sampling={"temperature": 9})
    with pytest.raises(ValueError, match="not a per-chat setting"):
        ChatSettings(sampling={"seed": 1})
