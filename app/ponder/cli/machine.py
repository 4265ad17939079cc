"""``ponder doctor | fit | setup``: what this machine can run, and getting a model on it.

The reports come from :mod:`ponder.session.machine`; this module prints them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from ponder.cli.context import Env, confirm
from ponder.cli.progress import pull_with_progress
from ponder.errors import ExitCode, ModelLoadError
from ponder.units import decimal_size


@click.command(
    "doctor",
    short_help="what this machine has, what llama.cpp can use, and the fixes",
    help="What this machine has, what the installed llama.cpp can use, and the fixes.",
)
@click.pass_obj
def doctor(env: Env) -> int:
    with env.session() as session:
        from ponder.session import machine

        report = machine.doctor(session)
    print(report.text)
    return ExitCode.ERROR if report.has_errors else ExitCode.OK


@click.command(
    "fit",
    short_help="which catalog models fit this machine (GPU / partly / CPU / too big)",
    help="Which catalog models fit this machine: fully on the GPU, partly, CPU only, too big.",
)
@click.argument("model", required=False)
@click.pass_obj
def fit(env: Env, model: str | None) -> int:
    """One model, with the plan it would load with; or every catalog model."""
    with env.session() as session:
        from ponder.session import machine

        print(machine.fit_report(session, model))
        root = session.store.root
    free = shutil.disk_usage(_existing_parent(root)).free
    print(f"\nfree disk for models: {decimal_size(free)} in {root}")
    return ExitCode.OK


@click.command(
    "setup",
    short_help="check the llama.cpp build, recommend a model that fits, and pull it",
    help="Check the llama.cpp build, recommend the R1 distill that fits, and pull it.",
)
@click.option("-y", "--yes", is_flag=True, help="pull without asking")
@click.pass_obj
def setup(env: Env, yes: bool) -> int:
    with env.session() as session:
        from ponder.session import machine

        for severity, message, fix in machine.doctor(session).problems:
            if severity in ("error", "warning"):
                print(f"ponder: {severity}: {message}", file=sys.stderr)
                if fix:
                    print(f"  fix: {fix}", file=sys.stderr)
        choice = machine.recommend(session)
        if choice is None:
            raise ModelLoadError(
                "no R1 distill fits this machine", hint="`ponder fit` shows every model's needs"
            )
        ref = choice.ref
        print(f"recommended: {ref} ({decimal_size(choice.size)}): {choice.reason}")
        print(choice.plan)
        if choice.installed:
            print(f'already installed; try: ponder run {ref} "What is 17*23?"')
            return ExitCode.OK
        if not yes and not confirm(
            f"download {ref} now?",
            refusal=f"not downloading {ref} without asking",
            hint="pass --yes",
        ):
            print(f"not downloaded; `ponder pull {ref}` does it later", file=sys.stderr)
            return ExitCode.OK
        pull_with_progress(session, ref, quiet=False)
    print(f'ready: ponder run {ref} "What is 17*23?"')
    return ExitCode.OK


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
