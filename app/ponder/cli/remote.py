"""``ponder remote add | list | test | rm``: OpenAI-compatible servers, by name.

A remote's models are then ``NAME:MODEL`` everywhere a model is named (``ponder run
lab:deepseek-ai/DeepSeek-R1``, ``ponder chat lab:``). The key is never given on the
command line or stored: ``--api-key-env`` names the environment variable that holds it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from ponder.cli.context import Env
from ponder.cli.options import OrderedGroup
from ponder.errors import ExitCode, UsageError


@click.group(
    "remote",
    cls=OrderedGroup,
    short_help="add, list, test and remove OpenAI-compatible servers",
    help=(
        "Add, list, test and remove OpenAI-compatible servers (llama-server, vLLM, SGLang, "
        "Ollama, LM Studio). Their models are then NAME:MODEL, e.g. "
        "`ponder run lab:deepseek-ai/DeepSeek-R1`; NAME: alone is the remote's default."
    ),
)
def remote() -> None:
    pass


def _command(name: str, short_help: str) -> Callable[[Callable[..., int]], click.Command]:
    return remote.command(
        name, short_help=short_help, help=short_help[0].upper() + short_help[1:] + "."
    )


def _header(value: str) -> tuple[str, str]:
    name, eq, text = value.partition("=")
    if not eq or not name.strip():
        raise UsageError(f"--header {value!r} is not K=V", hint="for example --header X-Team=ml")
    return name.strip(), text


@_command("add", "add a server (or replace one of the same name)")
@click.argument("name")
@click.argument("url")
@click.option(
    "--api-key-env",
    metavar="VAR",
    help="environment variable that holds the API key (the key itself is never stored)",
)
@click.option("--model", metavar="MODEL", help="the model NAME: alone means")
@click.option("--header", "headers", multiple=True, metavar="K=V", help="extra request header")
@click.option("--no-verify-tls", is_flag=True, help="do not check the server's certificate")
@click.option("--timeout", type=float, metavar="SECONDS", help="how long to wait (default 300)")
@click.pass_obj
def add(
    env: Env,
    name: str,
    url: str,
    api_key_env: str | None,
    model: str | None,
    headers: tuple[str, ...],
    no_verify_tls: bool,
    timeout: float | None,
) -> int:
    fields: dict[str, object] = {"url": url, "verify_tls": not no_verify_tls}
    if api_key_env:
        fields["api_key_env"] = api_key_env
    if model:
        fields["model"] = model
    if headers:
        fields["headers"] = dict(_header(h) for h in headers)
    if timeout is not None:
        fields["timeout"] = timeout
    with env.session() as session:
        added = session.remotes.add(name, **fields)
        status = session.remotes.status(name)
    click.echo(f"added remote '{name}' ({status.url})", err=True)
    if added.plain_http_off_loopback:
        click.echo(
            f"ponder: warning: {status.url} is plain http:// to another machine: prompts, "
            "replies and any key cross the network unencrypted; use https:// if it can",
            err=True,
        )
    if status.info is not None:
        models = ", ".join(status.info.models) or "no models listed"
        click.echo(f"{name}: {status.info.label}; {models}", err=True)
    else:
        click.echo(f"ponder: warning: {name} is not reachable now: {status.error}", err=True)
    return ExitCode.OK


@_command("list", "the servers, what each one is and serves, reachable or not")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_obj
def list_remotes(env: Env, as_json: bool) -> int:
    with env.session() as session:
        statuses = [session.remotes.status(n) for n in sorted(session.remotes.configured)]
    if as_json:
        rows = [
            {
                "name": s.name,
                "url": s.url,
                "api_key_env": s.config.api_key_env,
                "kind": s.info.kind if s.info else None,
                "version": s.info.version if s.info else None,
                "models": list(s.info.models) if s.info else [],
                "reachable": s.info is not None,
                "error": s.error,
            }
            for s in statuses
        ]
        click.echo(json.dumps(rows, indent=2))
        return ExitCode.OK
    if not statuses:
        click.echo("no remotes yet: `ponder remote add NAME URL` adds one", err=True)
        return ExitCode.OK
    for s in statuses:
        if s.info is None:
            click.echo(f"{s.name}\t{s.url}\tunreachable: {s.error}")
        else:
            models = ", ".join(s.info.models) or "(no models listed)"
            click.echo(f"{s.name}\t{s.url}\t{s.info.label}\t{models}")
    return ExitCode.OK


@_command("test", "one short request: server kind, where reasoning arrives, usage, speed")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@click.pass_obj
def test(env: Env, name: str, as_json: bool) -> int:
    with env.session() as session:
        report = session.remotes.test(name)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": report.name,
                    "kind": report.info.kind,
                    "version": report.info.version,
                    "model": report.model,
                    "reasoning_via": report.reasoning_via,
                    "usage": {
                        "prompt_tokens": report.prompt_tokens,
                        "completion_tokens": report.completion_tokens,
                    },
                    "usage_source": report.usage_source,
                    "time_to_first_token_s": report.time_to_first_token_s,
                    "tokens_per_s": round(report.tokens_per_s, 2),
                    "timings_source": report.timings_source,
                    "answer": report.answer,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return ExitCode.OK
    ttft = report.time_to_first_token_s
    lines = [
        f"server     {report.info.label}",
        f"model      {report.model}",
        f"reasoning  {report.reasoning_via}",
        f"usage      {report.prompt_tokens} prompt + {report.completion_tokens} completion"
        f" tokens ({'from the server' if report.usage_source == 'server' else 'counted here'})",
        "first      " + (f"{ttft:.2f} s to the first token" if ttft is not None else "no tokens"),
        f"speed      {report.tokens_per_s:.1f} tokens/s"
        f" ({'server timings' if report.timings_source == 'server' else 'client clock'})",
    ]
    click.echo("\n".join(lines))
    return ExitCode.OK


@_command("rm", "remove a server from the config")
@click.argument("name")
@click.pass_obj
def rm(env: Env, name: str) -> int:
    with env.session() as session:
        session.remotes.remove(name)
    click.echo(f"removed remote '{name}'", err=True)
    return ExitCode.OK
