"""The real test model and what the tests make of it: grammars that make Gemma 3 270M
write ``<think>…</think>answer``, and a copy of its GGUF with a DeepSeek-R1 template."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

THINK_GRAMMAR = 'root ::= "<think>" [a-z ]{20,60} "</think>" [A-Za-z ]{3,24} "."\n'
# For a prompt that already ends in "<think>\n": the model only closes the block.
PREFILLED_GRAMMAR = 'root ::= [a-z ]{20,60} "</think>" [A-Za-z ]{3,24} "."\n'
# What the two grammars' parts look like once the reasoning splitter has trimmed the
# whitespace at their ends (the grammars allow leading and trailing spaces).
THOUGHT = r"[a-z](?:[a-z ]{0,58}[a-z])?"
ANSWER = r"(?:[A-Za-z][A-Za-z ]{0,23})?\."
LONG_GRAMMAR = 'root ::= "<think>" [a-z ]{1500,2000} "</think>" "done."\n'

# The January-2025 layout of the distill template: ends at <｜Assistant｜> without <think>\n.
OLD_R1_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}<｜User｜>{{ m.content }}"
    "{% elif m.role == 'assistant' %}<｜Assistant｜>{{ m.content }}<｜end▁of▁sentence｜>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<｜Assistant｜>{% endif %}"
)


def write_r1_copy(gguf: Path, folder: Path, name: str = "DeepSeek-R1-Distill-Test") -> Path:
    """A copy of ``gguf`` carrying the old-style R1 template (gguf-new-metadata)."""
    out = folder / f"{name}.gguf"
    tool = Path(sys.executable).with_name("gguf-new-metadata")
    subprocess.run(
        [
            str(tool),
            "--chat-template",
            OLD_R1_TEMPLATE,
            "--general-name",
            name,
            str(gguf),
            str(out),
        ],
        check=True,
        capture_output=True,
        input=b"y\n",
    )
    return out
