"""The R1 prompt policy: system folding, reasoning stripped from history, <think> prefill."""

from __future__ import annotations

import pytest

from ponder.errors import UsageError
from ponder.prompt import (
    BUILTIN_TEMPLATES,
    R1_POLICY,
    PromptPolicy,
    Turn,
    apply_policy,
    build_prompt,
    builtin_template,
    guess_policy,
    render,
)

BOS, EOS = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"

# The older distill template (January 2025 uploads) ends with <｜Assistant｜> only.
OLD_R1_TEMPLATE = BUILTIN_TEMPLATES["deepseek-r1"].replace(
    "<｜Assistant｜><think>\n{% endif %}", "<｜Assistant｜>{% endif %}"
)


def _build(turns: list[Turn], template: str, policy: PromptPolicy = R1_POLICY) -> str:
    return build_prompt(
        turns,
        policy=policy,
        template=template,
        template_source="test",
        bos_token=BOS,
        eos_token=EOS,
    ).text


def test_old_template_gets_the_think_prefill_appended() -> None:
    assert BUILTIN_TEMPLATES["deepseek-r1"] != OLD_R1_TEMPLATE
    rendered = build_prompt(
        [Turn("user", "What is 17*23?")],
        policy=R1_POLICY,
        template=OLD_R1_TEMPLATE,
        template_source="gguf",
        bos_token=BOS,
        eos_token=EOS,
    )
    assert rendered.text == f"{BOS}<｜User｜>What is 17*23?<｜Assistant｜><think>\n"
    assert rendered.prefill_added and rendered.starts_in_reasoning


def test_new_template_is_not_prefilled_twice() -> None:
    rendered = build_prompt(
        [Turn("user", "hi")],
        policy=R1_POLICY,
        template=BUILTIN_TEMPLATES["deepseek-r1"],
        template_source="gguf",
        bos_token=BOS,
        eos_token=EOS,
    )
    assert rendered.text.endswith("<｜Assistant｜><think>\n")
    assert rendered.text.count("<think>") == 1
    assert not rendered.prefill_added and rendered.starts_in_reasoning


def test_system_prompt_is_folded_into_the_first_user_turn_for_r1() -> None:
    turns = [Turn("system", "Answer in French."), Turn("user", "What is 2+2?")]
    text = _build(turns, BUILTIN_TEMPLATES["deepseek-r1"])
    assert text == f"{BOS}<｜User｜>Answer in French.\n\nWhat is 2+2?<｜Assistant｜><think>\n"


def test_system_prompt_stays_a_system_turn_when_the_model_accepts_one() -> None:
    turns = [Turn("system", "Be brief."), Turn("user", "hi")]
    text = _build(turns, BUILTIN_TEMPLATES["chatml"], PromptPolicy())
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi")
    assert text.endswith("<|im_start|>assistant\n")


def test_earlier_reasoning_is_stripped_before_going_back_to_the_model() -> None:
    turns = [
        Turn("user", "What is 17*23?"),
        Turn("assistant", "<think>\n17*20=340, 17*3=51</think>\n\n391"),
        Turn("user", "and times 3?"),
    ]
    text = _build(turns, BUILTIN_TEMPLATES["deepseek-r1"])
    assert "340" not in text
    assert "<｜Assistant｜>391<｜end▁of▁sentence｜><｜User｜>and times 3?" in text


def test_reasoning_is_kept_when_the_policy_says_so() -> None:
    policy = PromptPolicy(strip_reasoning_in_history=False)
    turns = apply_policy([Turn("assistant", "<think>a</think>b")], policy)
    assert turns == [Turn("assistant", "<think>a</think>b")]


def test_qwq_style_template_ending_in_think_starts_in_reasoning_without_policy() -> None:
    template = BUILTIN_TEMPLATES["chatml"].replace(
        "<|im_start|>assistant\n{% endif %}", "<|im_start|>assistant\n<think>\n{% endif %}"
    )
    rendered = build_prompt(
        [Turn("user", "hi")],
        policy=PromptPolicy(),
        template=template,
        template_source="gguf",
        bos_token="",
        eos_token="",
    )
    assert rendered.starts_in_reasoning and not rendered.prefill_added


def test_plain_model_does_not_start_in_reasoning() -> None:
    rendered = build_prompt(
        [Turn("user", "hi")],
        policy=PromptPolicy(),
        template=builtin_template("plain"),
        template_source="builtin:plain",
        bos_token="",
        eos_token="",
    )
    assert rendered.text == "User: hi\nAssistant:"
    assert not rendered.starts_in_reasoning


def test_unknown_builtin_format_lists_the_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        builtin_template("vicuna")
    assert "unknown chat format 'vicuna'" in str(info.value)
    assert "deepseek-r1" in str(info.value) and "chatml" in str(info.value)


def test_broken_template_is_a_usage_error_not_a_traceback() -> None:
    with pytest.raises(UsageError, match="could not be rendered"):
        render("{% for m in messages %}", [Turn("user", "x")], bos_token="", eos_token="")


def test_template_raise_exception_becomes_a_usage_error() -> None:
    template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(UsageError, match="roles must alternate"):
        render(template, [Turn("user", "x")], bos_token="", eos_token="")


def test_template_sandbox_blocks_attribute_escapes() -> None:
    template = "{{ messages.__class__.__mro__ }}"
    with pytest.raises(UsageError):
        render(template, [Turn("user", "x")], bos_token="", eos_token="")


@pytest.mark.parametrize(
    ("template", "name", "expected"),
    [
        (None, "DeepSeek-R1-Distill-Qwen-7B", R1_POLICY),
        (BUILTIN_TEMPLATES["deepseek-r1"], "some-finetune", R1_POLICY),
        (None, "DeepSeek-R1-0528-Qwen3-8B", PromptPolicy()),
        (BUILTIN_TEMPLATES["chatml"], "Qwen3-8B", PromptPolicy()),
    ],
)
def test_policy_guess_for_files_outside_the_catalog(
    template: str | None, name: str, expected: PromptPolicy
) -> None:
    assert guess_policy(template, name) == expected
