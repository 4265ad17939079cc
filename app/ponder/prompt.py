"""Turn a conversation into the exact prompt text a reasoning model expects.

The DeepSeek-R1 model card asks for three things that generic chat code gets wrong:
no system prompt (fold it into the user turn), earlier assistant turns sent back
without their reasoning, and every reply starting with ``<think>\\n``. Newer distill
templates prefill ``<think>\\n`` themselves and older GGUF uploads do not, so the
rendered prompt is checked and the prefill appended when it is missing. When the
prompt ends inside thinking, the reply stream starts inside thinking too, which the
caller passes on to the reasoning splitter.

Templates are Jinja, rendered in a sandbox like the Hugging Face tokenizers do, and
within limits of time and size (:mod:`ponder.template_sandbox`): a template is code from
a downloaded file.
A GGUF without a template (a base model) falls back to ``chatml``, the same fallback
llama.cpp's server uses; ``--chat-format`` picks another built-in, and
``--chat-template FILE`` supplies any Jinja template.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from ponder import template_sandbox
from ponder.catalog import PromptPolicy
from ponder.errors import ModelLoadError, UsageError
from ponder.reasoning import strip_reasoning

Role = Literal["system", "user", "assistant"]

THINK_OPEN = "<think>"


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    content: str


R1_POLICY = PromptPolicy(system_prompt=False, think_prefill="<think>\n")

# Built-in templates, written for Ponder. "deepseek-r1" follows the layout of the
# official distill template (BOS, system text, <｜User｜>/<｜Assistant｜> turns).
BUILTIN_TEMPLATES: dict[str, str] = {
    "deepseek-r1": (
        "{{ bos_token }}"
        "{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}{% endif %}{% endfor %}"
        "{% for m in messages %}"
        "{% if m.role == 'user' %}<｜User｜>{{ m.content }}"
        "{% elif m.role == 'assistant' %}<｜Assistant｜>{{ m.content }}<｜end▁of▁sentence｜>"
        "{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
    ),
    "chatml": (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for m in messages %}"
        "<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"
        "{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
    "gemma": (
        "{{ bos_token }}{% for m in messages %}"
        "<start_of_turn>{{ 'model' if m.role == 'assistant' else 'user' }}\n"
        "{{ m.content }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
    # For base models: a plain transcript the model simply continues.
    "plain": (
        "{% for m in messages %}"
        "{% if m.role == 'system' %}{{ m.content }}\n\n"
        "{% elif m.role == 'user' %}User: {{ m.content }}\n"
        "{% else %}Assistant: {{ m.content }}\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}"
    ),
}
FALLBACK_FORMAT = "chatml"


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    text: str
    starts_in_reasoning: bool  # the prompt ends inside <think>
    template_source: str  # "gguf", "catalog", "builtin:NAME", "file"
    prefill_added: bool  # Ponder appended the think prefill itself


def builtin_template(name: str) -> str:
    try:
        return BUILTIN_TEMPLATES[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_TEMPLATES))
        raise UsageError(f"unknown chat format '{name}'", hint=f"choose one of: {known}") from None


def apply_policy(turns: Sequence[Turn], policy: PromptPolicy) -> list[Turn]:
    """Fold the system prompt and strip earlier reasoning as the policy says."""
    result: list[Turn] = []
    pending_system: list[str] = []
    for turn in turns:
        if turn.role == "system" and not policy.system_prompt:
            if turn.content.strip():
                pending_system.append(turn.content.strip())
            continue
        if turn.role == "user" and pending_system:
            turn = Turn("user", "\n\n".join([*pending_system, turn.content]))
            pending_system = []
        if turn.role == "assistant" and policy.strip_reasoning_in_history:
            turn = Turn("assistant", strip_reasoning(turn.content))
        result.append(turn)
    return result


def render(
    template: str,
    turns: Sequence[Turn],
    *,
    bos_token: str,
    eos_token: str,
    add_generation_prompt: bool = True,
    template_source: str = "file",
) -> str:
    """Render a Jinja chat template in a sandbox, within limits of time and size.

    A failure is one line naming where the template came from and the way out: a
    :class:`UsageError` (exit 2) for the user's own ``--chat-template`` file, a
    :class:`ModelLoadError` (exit 4) for the model's (or the catalog's) template.
    """

    def raise_exception(message: str) -> None:
        raise UsageError(f"the chat template refused the conversation: {message}")

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    messages = [{"role": t.role, "content": t.content} for t in turns]
    try:
        return template_sandbox.render(
            template,
            {
                "messages": messages,
                "bos_token": bos_token,
                "eos_token": eos_token,
                "add_generation_prompt": add_generation_prompt,
                "raise_exception": raise_exception,
                "strftime_now": strftime_now,
            },
            context_chars=sum(len(t.content) for t in turns) + len(bos_token) + len(eos_token),
        )
    except template_sandbox.TemplateFailure as failure:
        raise template_error(template_source, str(failure)) from None


def template_error(source: str, reason: str) -> UsageError | ModelLoadError:
    """One line for a template that cannot be rendered, by where it came from."""
    if source == "file":
        return UsageError(
            f"the --chat-template file could not be rendered: {reason}",
            hint="fix the file, or pass --chat-format NAME to use a built-in template",
        )
    where = {
        "gguf": "the model's own chat template (in its GGUF)",
        "catalog": "the catalog's chat template for this model",
    }.get(source, f"the chat template ({source})")
    return ModelLoadError(
        f"{where} could not be rendered: {reason}",
        hint="pass --chat-format NAME or --chat-template FILE to use another",
    )


def build_prompt(
    turns: Sequence[Turn],
    *,
    policy: PromptPolicy,
    template: str,
    template_source: str,
    bos_token: str,
    eos_token: str,
) -> RenderedPrompt:
    """Apply the policy, render the template and settle the ``<think>`` prefill."""
    text = render(
        template,
        apply_policy(turns, policy),
        bos_token=bos_token,
        eos_token=eos_token,
        template_source=template_source,
    )
    prefill_added = False
    if policy.think_prefill and not _ends_with_think(text):
        text += policy.think_prefill
        prefill_added = True
    return RenderedPrompt(
        text=text,
        starts_in_reasoning=_ends_with_think(text),
        template_source=template_source,
        prefill_added=prefill_added,
    )


# A thinking budget of 0: the assistant's turn starts with an empty, closed thinking,
# so the model answers at once (as Qwen3's template does with enable_thinking=False).
EMPTY_THINKING = "<think>\n\n</think>\n\n"


def without_thinking(prompt: RenderedPrompt) -> RenderedPrompt:
    """``prompt`` with its thinking closed before it starts (``--no-think``): the
    open ``<think>`` the prompt ends with is closed, or an empty block is added."""
    if prompt.starts_in_reasoning:
        text = prompt.text.rstrip() + "\n\n</think>\n\n"
    else:
        text = prompt.text + EMPTY_THINKING
    return replace(prompt, text=text, starts_in_reasoning=False)


def _ends_with_think(text: str) -> bool:
    return text.rstrip().endswith(THINK_OPEN)


def guess_policy(template: str | None, model_name: str) -> PromptPolicy:
    """A policy for a GGUF that is not in the catalog, from its name and template."""
    name = model_name.lower()
    if "deepseek-r1" in name and "0528" not in name:
        return R1_POLICY
    if template and "<｜Assistant｜>" in template and "think>" in template:
        return R1_POLICY
    return PromptPolicy()
