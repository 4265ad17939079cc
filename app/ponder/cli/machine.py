"""``ponder doctor | fit | setup``: what this machine can run, and getting a model on it.

The reports come from :mod:`ponder.session.machine`; this module prints them.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ponder.backends import BACKEND_NAMES
from ponder.cli.context import Env, confirm
from ponder.cli.progress import pull_with_progress
from ponder.errors import ExitCode, ModelLoadError, PonderError, UsageError
from ponder.units import decimal_size

if TYPE_CHECKING:
    from ponder.session import Session
    from ponder.session.backend_setup import BackendPlan, MachineProfile
    from ponder.session.machine import Recommendation


@click.command(
    "doctor",
    short_help="what this machine has, what llama.cpp can use, and the fixes",
    help="What this machine has, what the installed llama.cpp can use, and the fixes.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="one JSON object, for scripts and bug reports"
)
@click.pass_obj
def doctor(env: Env, as_json: bool) -> int:
    with env.session() as session:
        from ponder.session import machine

        report = machine.doctor(session)
    print(json.dumps(report.data, indent=2) if as_json else report.text)
    return ExitCode.ERROR if report.has_errors else ExitCode.OK


@click.command(
    "fit",
    short_help="which models fit this machine, and how fast they will think here",
    help="Which catalog models fit this machine (fully on the GPU, partly, CPU only, too "
    "big) and how fast each would decode here, the best choices first. With MODEL (a "
    "catalog name, an installed model or a path to a GGUF), the plan it would load with.",
)
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="one JSON object, for scripts")
@click.pass_obj
def fit(env: Env, model: str | None, as_json: bool) -> int:
    """One model, with the plan it would load with; or every catalog model."""
    with env.session() as session:
        from ponder.session import machine

        if as_json:
            data = machine.fit_data(session, model)
        else:
            print(machine.fit_report(session, model))
        root = session.store.root
    free = shutil.disk_usage(_existing_parent(root)).free
    if as_json:
        data["free_disk_bytes"] = free
        data["models_dir"] = str(root)
        print(json.dumps(data, indent=2))
    else:
        print(f"\nfree disk for models: {decimal_size(free)} in {root}")
    return ExitCode.OK


@click.command(
    "setup",
    short_help="install the llama.cpp build this machine wants, then pick and pull a model",
    help="Install the llama.cpp build this machine's GPU needs (asks first), check in a fresh "
    "process that it offloads, then recommend the most capable R1 distill that fits and "
    "thinks at a usable speed here (the usable_tok_s setting), and pull it.",
)
@click.option(
    "--backend",
    type=click.Choice(["auto", *BACKEND_NAMES]),
    default="auto",
    show_default=True,
    help="the llama.cpp build to install (auto: the best this machine can use)",
)
@click.option(
    "--dry-run", is_flag=True, help="say what would be installed and pulled; change nothing"
)
@click.option("-y", "--yes", is_flag=True, help="install and pull without asking")
@click.option(
    "--reinstall", is_flag=True, help="install the build even when the installed one matches"
)
@click.option("--no-pull", is_flag=True, help="set up llama.cpp only; recommend, never download")
@click.option("--bigger", is_flag=True, help="take the slower, more capable distill that also fits")
@click.option(
    "--wheels",
    metavar="DIR|URL",
    help="take llama-cpp-python from this folder or page of wheels instead of its index",
)
@click.pass_obj
def setup(
    env: Env,
    backend: str,
    dry_run: bool,
    yes: bool,
    reinstall: bool,
    no_pull: bool,
    bigger: bool,
    wheels: str | None,
) -> int:
    with env.session() as session:
        from ponder.session import backend_setup, machine

        for severity, message, fix in machine.doctor(session).problems:
            if severity in ("error", "warning") and not (fix or "").startswith("`ponder setup"):
                print(f"ponder: {severity}: {message}", file=sys.stderr)
                if fix:
                    print(f"  fix: {fix}", file=sys.stderr)
        step = backend_setup.plan(session, backend, wheels=wheels, reinstall=reinstall)
        hw = _backend_step(session, step, dry_run=dry_run, yes=yes)
        choice = machine.recommend(session, hw)
        if choice is None:
            raise ModelLoadError(
                "no R1 distill fits this machine", hint="`ponder fit` shows every model's needs"
            )
        if bigger and choice.bigger is None:
            print(f"ponder: nothing bigger than {choice.ref} fits this machine", file=sys.stderr)
        elif bigger and choice.bigger is not None:
            choice = choice.bigger
        return _model_step(session, choice, dry_run=dry_run, yes=yes, no_pull=no_pull)


def _backend_step(
    session: Session, step: BackendPlan, *, dry_run: bool, yes: bool
) -> MachineProfile | None:
    """Install the wanted llama.cpp build if needed; the machine as the new build sees it."""
    from ponder.session import backend_setup

    choice = step.choice
    print(f"llama.cpp: this machine wants the {step.label} build ({choice.reason})")
    if step.install is None:
        if choice.current:
            print(f"llama.cpp: the installed {step.label} build is the right one")
        else:
            print(
                f"ponder: warning: no prebuilt {step.label} wheel fits this machine "
                f"({choice.no_wheel_reason}); build it from source:\n  {step.source_build}",
                file=sys.stderr,
            )
        return None
    plan = step.install
    print(f"llama.cpp: installed build: {choice.installed}; would install {step.label} into")
    print(f"  {plan.environment.description}")
    print(f"  with: {plan.command}")
    why_not = backend_setup.blocked(step)
    if why_not:
        print(f"ponder: warning: cannot install there: {why_not}", file=sys.stderr)
    if dry_run:
        print("dry run: nothing installed")
        return None
    if not yes and not confirm(
        f"install the {step.label} build of llama-cpp-python now?",
        refusal=f"not installing the {step.label} build without asking",
        hint="pass --yes, or --dry-run to see the command",
    ):
        print("not installed; the command above does it later", file=sys.stderr)
        return None
    result = backend_setup.apply(step, lambda line: print(line, file=sys.stderr))
    if result.ok:
        print(f"llama.cpp: checked in a fresh process: {result.check.summary()}")
        return backend_setup.with_devices(session, result.check)
    restored = result.restored.summary() if result.restored else "nothing to restore"
    kept = f"; the previous build's files are in {result.backup}" if result.backup else ""
    raise PonderError(
        f"the {step.label} build failed its check ({result.check.summary()}); "
        f"put the previous build back ({restored}){kept}",
        hint=f"build it from source instead: {step.source_build}",
    )


def _model_step(
    session: Session, choice: Recommendation, *, dry_run: bool, yes: bool, no_pull: bool
) -> int:
    ref = choice.ref
    speed = f", {choice.speed}" if choice.speed else ""
    print(f"recommended: {ref} ({decimal_size(choice.size)}{speed}): {choice.reason}")
    print(choice.plan)
    bigger = choice.bigger
    if bigger is not None:
        print(
            f"bigger: {bigger.ref} ({decimal_size(bigger.size)}, {bigger.speed}): {bigger.reason}"
            "; `ponder setup --bigger` takes it"
        )
    if choice.installed:
        print(f'already installed; try: ponder run {ref} "What is 17*23?"')
        return ExitCode.OK
    if dry_run or no_pull:
        print(f"{'dry run: ' if dry_run else ''}not downloading; `ponder pull {ref}` does it")
        return ExitCode.OK
    if not yes:
        answer = _ask_download(ref, bigger.ref if bigger is not None else None)
        if answer is None:
            print(f"not downloaded; `ponder pull {ref}` does it later", file=sys.stderr)
            return ExitCode.OK
        ref = answer
    pull_with_progress(session, ref, quiet=False)
    print(f'ready: ponder run {ref} "What is 17*23?"')
    return ExitCode.OK


def _ask_download(ref: str, bigger: str | None) -> str | None:
    """Which model to download: ``ref`` (y), ``bigger`` (b, when there is one), or None."""
    if bigger is None:
        ok = confirm(
            f"download {ref} now?",
            refusal=f"not downloading {ref} without asking",
            hint="pass --yes",
        )
        return ref if ok else None
    if not sys.stdin.isatty():
        raise UsageError(f"not downloading {ref} without asking", hint="pass --yes (or --bigger)")
    try:
        answer = input(f"download {ref} now (b: {bigger} instead)? [y/N/b] ").strip().lower()
    except EOFError:  # Ctrl-D: no
        print(file=sys.stderr)
        return None
    return ref if answer in {"y", "yes"} else bigger if answer in {"b", "bigger"} else None


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
