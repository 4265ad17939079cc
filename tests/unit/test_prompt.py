"""The R1 prompt policy: system folding, reasoning stripped from history, <think> prefill."""

from __future__ import annotations

import re

import pytest

from ponder import template_sandbox
from ponder.errors import ExitCode, ModelLoadError, UsageError
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


# -- hostile templates (issue 13, part 4): each one line, naming the source and the way out

HOSTILE_TEMPLATES = {
    "syntax error": "{% for m in messages %}{{ m.content }",
    "unknown tag": "{% frobnicate %}",
    "include": "{% include 'other.jinja' %}",
    "extends": "{% extends 'base.jinja' %}",
    "import": "{% import 'macros.jinja' as m %}",
    "from import": "{% from 'macros.jinja' import x %}",
    "recursive macro": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "lone surrogate": "{{ '\\ud800' }}",
    "huge range": "{% for i in range(10**9) %}{{ i }}{% endfor %}",
    "nested range": (
        "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
    ),
    "string bomb": "{{ 'x' * 10**10 }}",
    "string bomb via a filter": "{{ 'x' | center(10**10) }}",
    "string bomb via a method": "{{ 'x'.ljust(10**10) }}",
    "doubling in a namespace": (
        "{% set ns = namespace(s='xxxxxxxx') %}"
        "{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
    ),
    "doubling through a macro": (
        "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% else %}{{ s | length }}"
        "{% endif %}{% endmacro %}{{ f('x', 40) }}"
    ),
    "power bomb": "{{ 10 ** 100000000 }}",
    "format width bomb": "{{ '%999999999d' % 1 }}",
    "output flood": "{% for i in range(99999) %}{{ 'y' * 99999 }}{% endfor %}",
    "replace bomb": "{{ ('x' * 900000) | replace('x', 'x' * 900000) }}",
    "replace method bomb": "{{ ('x' * 900000).replace('x', 'x' * 900000) }}",
    "join bomb": "{{ ('x' * 900000) | join('x' * 900000) }}",
    "format bomb": "{{ '{:>999999999}'.format(1) }}",
    "tab bomb": "{{ ('\t' * 900000).expandtabs(900000) }}",
    "a type error": "{{ messages + 1 }}",
    "undefined call": "{{ nothing() }}",
}


@pytest.fixture(autouse=True)
def _short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # the nested loops would run to the 5 s deadline; half a second shows the same
    monkeypatch.setattr(template_sandbox, "TIME_LIMIT", 0.5)


def render_hostile(template: str, source: str) -> str:
    return render(
        template, [Turn("user", "hi")], bos_token="<s>", eos_token="</s>", template_source=source
    )


@pytest.mark.parametrize("name", list(HOSTILE_TEMPLATES))
def test_a_hostile_user_template_is_one_usage_error(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        render_hostile(HOSTILE_TEMPLATES[name], "file")
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    assert "\n" not in str(error)
    assert error.message.startswith("the --chat-template file could not be rendered: ")
    assert error.hint and "--chat-format" in error.hint


@pytest.mark.parametrize("name", list(HOSTILE_TEMPLATES))
def test_a_hostile_model_template_is_one_load_error(name: str) -> None:
    with pytest.raises(ModelLoadError) as caught:
        render_hostile(HOSTILE_TEMPLATES[name], "gguf")
    error = caught.value
    assert error.exit_code == ExitCode.MODEL_LOAD
    assert "\n" not in str(error)
    assert error.message.startswith("the model's own chat template (in its GGUF)")
    assert error.hint and "--chat-format" in error.hint and "--chat-template" in error.hint


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("include", "{% include %}"),
        ("huge range", "1,000,000,000"),
        ("nested range", "ran for more than"),
        ("lone surrogate", "lone surrogate (U+D800)"),
        ("recursive macro", "recursed too deeply"),
        ("syntax error", "line 1"),
    ],
)
def test_the_line_says_what_went_wrong(name: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=re.escape(fragment)):
        render_hostile(HOSTILE_TEMPLATES[name], "file")


def test_a_long_conversation_still_renders() -> None:
    # the size limit grows with the conversation: 3 MB of content is no bomb
    turns = [Turn("user", "word " * 200_000), Turn("assistant", "ok"), Turn("user", "x" * 10**6)]
    text = render(BUILTIN_TEMPLATES["chatml"], turns, bos_token="", eos_token="")
    assert len(text) > 2 * 10**6


def test_namespace_loops_and_macros_still_work() -> None:
    template = (
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
        "{% endfor %}{% macro tag(r) %}<{{ r }}>{% endmacro %}"
        "{% for m in messages %}{{ tag(m.role) }}{{ m.content | trim }}{% endfor %}"
        "{{ ns.n }}{{ range(3) | list | join(',') }}{{ 'ab' * 2 }}{{ '%d' % 7 }}"
    )
    turns = [Turn("user", " hi "), Turn("assistant", "yo")]
    assert render(template, turns, bos_token="", eos_token="") == "<user>hi<assistant>yo20,1,2abab7"
