"""``ponder pull | list | rm | import | verify | catalog``: the models and the catalog.

Each goes through the session: pulls through :meth:`Session.pull`, the installed
files through ``session.store``, the curated names through ``session.catalog``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ponder.cli.context import Env, confirm
from ponder.cli.errors import print_error
from ponder.cli.progress import pull_with_progress
from ponder.errors import ExitCode
from ponder.units import decimal_size

if TYPE_CHECKING:
    from ponder.session import Session


@click.command(
    "pull",
    short_help="download a model (catalog name, hf:OWNER/REPO:QUANT or hf:OWNER/REPO/FILE.gguf)",
    help="Download a model into the store: resumable, verified by sha256.",
)
@click.argument("model")
@click.option("-q", "--quiet", is_flag=True, help="sparse progress lines only")
@click.option(
    "--allow-unverified",
    is_flag=True,
    help="take a file that has no sha256 to check it against (listed as unverified)",
)
@click.pass_obj
def pull(env: Env, model: str, quiet: bool, allow_unverified: bool) -> int:
    with env.session() as session:
        pull_with_progress(session, model, quiet=quiet, allow_unverified=allow_unverified)
    return ExitCode.OK


@click.command("list", short_help="installed models", help="Installed models.")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_obj
def list_models(env: Env, as_json: bool) -> int:
    with env.session() as session:
        store = session.store
        rows: list[dict[str, Any]] = []
        for model in store.installed():
            rows.append(
                {
                    "name": model.name,
                    "quant": model.quant,
                    "size": model.size,
                    "path": str(store.primary_path(model)),
                    "last_used": model.last_used,
                    "installed_at": model.installed_at,
                    "missing": [str(p) for p in store.missing(model)],
                    "verified": not model.unverified,
                }
            )
    if as_json:
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    if not rows:
        print("no models installed; `ponder pull r1:1.5b` fetches a small one", file=sys.stderr)
    for row in rows:
        used = (row["last_used"] or "never")[:16].replace("T", " ")
        state = "  MISSING FILES" if row["missing"] else ""
        state += "" if row["verified"] else "  UNVERIFIED"
        size = decimal_size(row["size"])
        quant = row["quant"] or "-"
        print(f"{row['name']:<34} {quant:<8} {size:>9}  {used:<16}  {row['path']}{state}")
    return ExitCode.OK


@click.command(
    "rm",
    short_help="remove an installed model and free its space",
    help="Remove an installed model and free its space (a linked file is left alone).",
)
@click.argument("model")
@click.option("-y", "--yes", is_flag=True, help="do not ask")
@click.pass_obj
def remove(env: Env, model: str, yes: bool) -> int:
    with env.session() as session:
        installed = session.installed(model)
        name = installed.name
        if not yes and not confirm(
            f"remove {name} ({decimal_size(installed.size)})?",
            refusal=f"refusing to remove {name} without asking",
            hint="pass --yes",
        ):
            print("kept", file=sys.stderr)
            return ExitCode.OK
        removal = session.remove_model(name)  # its saved chat states go with it
    for path in removal.kept:
        print(
            f"ponder: warning: left {path} alone: it lies outside the model store",
            file=sys.stderr,
        )
    print(f"removed {name}; freed {decimal_size(removal.freed)}", file=sys.stderr)
    return ExitCode.OK


@click.command(
    "import",
    short_help="register a GGUF file you already have",
    help="Register a GGUF file you already have: copied into the store, or linked.",
)
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="the name to run it by")
@click.option("--link", is_flag=True, help="keep the file where it is (no copy)")
@click.pass_obj
def import_model(env: Env, path: Path, name: str, link: bool) -> int:
    with env.session() as session:
        model = session.import_model(path, name=name, link=link)
    where = "linked" if model.linked else "copied"
    print(f"imported {model.name} ({decimal_size(model.size)}, {where})", file=sys.stderr)
    return ExitCode.OK


@click.command(
    "verify",
    short_help="re-hash installed files against their sha256",
    help="Re-hash installed files against their recorded sha256.",
)
@click.argument("model", required=False)
@click.pass_obj
def verify(env: Env, model: str | None) -> int:
    with env.session() as session:
        bad = _verify(session, model)
    if bad:
        print_error(f"{bad} file(s) failed verification", "`ponder pull` fetches them again")
        return ExitCode.ERROR
    return ExitCode.OK


def _verify(session: Session, ref: str | None) -> int:
    """Print one line per file; how many failed."""
    store = session.store
    models = [session.installed(ref)] if ref else store.installed()
    bad = 0
    for model in models:
        for check in store.verify(model):
            bad += check.status != "ok"
            detail = f" ({check.detail})" if check.detail else ""
            if model.unverified and check.status == "ok":
                detail = " (unverified: unchanged since the pull, but no sha256 vouched for it)"
            print(f"{check.status:<8} {model.name}  {check.path}{detail}")
    return bad


@click.command(
    "catalog",
    short_help="the curated models and their short names",
    help="The curated models, their short names and quants.",
)
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_obj
def catalog(env: Env, as_json: bool) -> int:
    with env.session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": model.id,
                "aliases": list(model.aliases),
                "quants": [q.quant for q in model.quants],
                "default_quant": model.default_quant,
            }
            for model in session.catalog.models
        ]
        rows += [
            {
                "id": served.id,
                "aliases": list(served.aliases),
                "quants": [],
                "default_quant": None,
                "served_only": True,
                "upstream": served.upstream,
            }
            for served in session.catalog.served
        ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    for row in rows:
        names = ", ".join(row["aliases"]) or row["id"]
        what = " ".join(row["quants"]) or f"on a server only: {row['upstream']}"
        print(f"{row['id']:<32} {names:<28} {what}")
    return ExitCode.OK
