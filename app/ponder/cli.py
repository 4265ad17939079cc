"""The ``ponder`` command: headless runs for pipes and scripts, and chat management.

Headless output is an API. stdout carries the answer only (or one JSON object with
``--json``, or one JSON event per line with ``--jsonl``). Reasoning, progress and
errors go to stderr. Every failure a user can cause ends in one line on stderr and
a documented exit code (:class:`ponder.errors.ExitCode`), never a traceback.

Ctrl-C sets a cancel event that the generation loop checks after every token, so
the partial reply is saved (marked interrupted) before the process exits with 130.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from ponder import __version__
from ponder.catalog import load_catalog
from ponder.errors import ExitCode, ModelLoadError, ModelNotFoundError, PonderError, UsageError
from ponder.events import (
    AnswerDelta,
    ChatEvent,
    DownloadProgress,
    Finished,
    Notice,
    OpenEvent,
    Planned,
    PullFinished,
    PullStarted,
    ReasoningDelta,
    Started,
)
from ponder.hardware import (
    diagnose,
    fit_table,
    plan_quant,
    recommend,
    render_doctor,
    render_fit_table,
    render_plan,
)
from ponder.history import History
from ponder.paths import default_paths
from ponder.progress import ProgressPrinter
from ponder.sampling import OPTIONS, Number
from ponder.session import (
    ModelOptions,
    Reply,
    ReplyRequest,
    RunRequest,
    Session,
    open_session,
)
from ponder.units import decimal_size

EXIT_CODES_HELP = """exit codes:
  0    success
  1    other error (I/O, malformed config or catalog)
  2    usage error (bad arguments, empty prompt, invalid UTF-8 input)
  3    model not found
  4    model cannot load (not a GGUF, truncated, corrupt, out of memory)
  5    prompt exceeds the context window
  130  interrupted (Ctrl-C); the partial reply is saved
"""

DIM, RESET = "\x1b[2m", "\x1b[0m"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ponder",
        description="Run distilled reasoning models locally.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ponder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(run_parser=_add_run(sub))
    _add_chats(sub)
    _add_models(sub)
    _add_hardware(sub)
    _add_catalog(sub)
    _add_chat_ui(sub)
    return parser


def _add_chat_ui(sub: Any) -> None:
    ui = sub.add_parser(
        "chat",
        help="open the chat UI (the default when no command is given)",
        description="Open the chat UI. Also what `ponder` alone does.",
    )
    ui.add_argument("model", nargs="?", help="model to load first (default: the last used)")
    ui.add_argument("--grammar", type=Path, metavar="FILE", help="GBNF grammar for every reply")


def _add_run(sub: Any) -> argparse.ArgumentParser:
    run: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="answer one prompt (from arguments and/or stdin)",
        description="Answer one prompt. The answer goes to stdout; the reasoning to stderr.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("model", help="catalog name (r1:7b, r1:7b@Q8_0) or a path to a .gguf file")
    run.add_argument("prompt", nargs="*", help="the prompt; stdin is appended when piped")
    out = run.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object at the end")
    out.add_argument("--jsonl", action="store_true", help="stream one JSON event per line")
    run.add_argument(
        "--reasoning",
        choices=["stderr", "hide", "inline"],
        default=None,
        help="where the thinking goes (default: stderr, dimmed on a terminal)",
    )
    run.add_argument("--system", help="system prompt (folded into the user turn for R1 models)")
    run.add_argument("--temperature", type=float)
    run.add_argument("--top-p", type=float)
    run.add_argument("--top-k", type=int)
    run.add_argument("--min-p", type=float)
    run.add_argument("--repeat-penalty", type=float)
    run.add_argument("--max-tokens", type=_positive_int)
    run.add_argument("--seed", type=int)
    run.add_argument("--ctx", type=_positive_int, help="context size in tokens")
    run.add_argument("--threads", type=_positive_int)
    run.add_argument(
        "--gpu-layers", type=int, metavar="N", help="layers to offload to the GPU (-1: all)"
    )
    run.add_argument("--grammar", type=Path, metavar="FILE", help="GBNF grammar file")
    run.add_argument(
        "--chat-format", help="built-in template: deepseek-r1, chatml, llama3, gemma, plain"
    )
    run.add_argument("--chat-template", type=Path, metavar="FILE", help="Jinja chat template file")
    run.add_argument("--no-save", action="store_true", help="do not save this chat")
    chat = run.add_mutually_exclusive_group()
    chat.add_argument(
        "-c", "--continue", dest="cont", action="store_true", help="continue the last chat"
    )
    chat.add_argument("--chat", type=int, metavar="ID", help="continue chat ID")
    run.add_argument(
        "-v", "--verbose", action="store_true", help="print the load plan and its memory estimate"
    )
    return run


def _add_chats(sub: Any) -> None:
    chats = sub.add_parser("chats", help="list, show, search, export and remove saved chats")
    verbs = chats.add_subparsers(dest="verb", metavar="VERB", required=True)
    ls = verbs.add_parser("list", help="saved chats, newest first")
    ls.add_argument("-n", "--limit", type=_positive_int, default=50)
    ls.add_argument("--json", action="store_true")
    show = verbs.add_parser("show", help="print a chat")
    show.add_argument("id", type=int)
    search = verbs.add_parser("search", help="full-text search over answers and prompts")
    search.add_argument("text", nargs="+")
    search.add_argument("--reasoning", action="store_true", help="search the reasoning too")
    search.add_argument("--json", action="store_true")
    export = verbs.add_parser("export", help="export a chat with its reasoning")
    export.add_argument("id", type=int)
    export.add_argument("--format", choices=["md", "json"], default="md")
    export.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    rm = verbs.add_parser("rm", help="delete a chat")
    rm.add_argument("id", type=int)


def _add_models(sub: Any) -> None:
    pull = sub.add_parser(
        "pull",
        help="download a model (catalog name, hf:OWNER/REPO:QUANT or hf:OWNER/REPO/FILE.gguf)",
        description="Download a model into the store: resumable, verified by sha256.",
    )
    pull.add_argument("model")
    pull.add_argument("-q", "--quiet", action="store_true", help="sparse progress lines only")
    ls = sub.add_parser("list", help="installed models")
    ls.add_argument("--json", action="store_true")
    rm = sub.add_parser("rm", help="remove an installed model and free its space")
    rm.add_argument("model")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask")
    imp = sub.add_parser("import", help="register a GGUF file you already have")
    imp.add_argument("path", type=Path)
    imp.add_argument("--name", required=True, help="the name to run it by")
    imp.add_argument("--link", action="store_true", help="keep the file where it is (no copy)")
    verify = sub.add_parser("verify", help="re-hash installed files against their sha256")
    verify.add_argument("model", nargs="?", help="one model (default: all)")


def _add_hardware(sub: Any) -> None:
    sub.add_parser("doctor", help="what this machine has, what llama.cpp can use, and the fixes")
    fit = sub.add_parser(
        "fit", help="which catalog models fit this machine (GPU / partly / CPU / too big)"
    )
    fit.add_argument("model", nargs="?", help="one model, with the plan it would load with")
    setup = sub.add_parser(
        "setup", help="check the llama.cpp build, recommend a model that fits, and pull it"
    )
    setup.add_argument("-y", "--yes", action="store_true", help="pull without asking")


def _add_catalog(sub: Any) -> None:
    cat = sub.add_parser("catalog", help="the curated models and their short names")
    cat.add_argument("--json", action="store_true")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' must be positive")
    return value


# -- entry point -------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "run":
        # Options may follow the prompt words (`ponder run m "hi" --json`), which a
        # plain parse cannot do with a `*` positional; intermixed parsing can.
        run_args = args.run_parser.parse_intermixed_args(argv[argv.index("run") + 1 :])
        run_args.command = "run"
        args = run_args
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "chats":
            return _cmd_chats(args)
        if args.command == "catalog":
            return _cmd_catalog(args)
        if args.command in MODEL_COMMANDS:
            return MODEL_COMMANDS[args.command](args)
        return _cmd_chat_ui(args)
    except PonderError as exc:
        _error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ponder: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return ExitCode.OK


def _cmd_chat_ui(args: argparse.Namespace) -> int:
    """The Textual UI, imported only here so headless commands never load textual."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the chat UI needs a terminal",
            hint='for pipes and scripts use `ponder run MODEL "prompt"`',
        )
    grammar_file = getattr(args, "grammar", None)
    grammar = _read_text(grammar_file, "grammar") if grammar_file else None
    from ponder.tui.app import PonderApp

    session = open_session()
    try:
        session.require_history()  # a broken history is one line here, not a crash later
        PonderApp(session, model=getattr(args, "model", None), grammar=grammar).run()
    finally:
        session.close()
    return ExitCode.OK


def _error(exc: PonderError) -> None:
    line = f"ponder: error: {exc.message}"
    if exc.hint:
        line += f" — {exc.hint}"
    print(line, file=sys.stderr)


def _silence_stdout() -> None:
    """After a closed pipe (`ponder run ... | head`), stop Python's flush from failing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# -- run ---------------------------------------------------------------------------


def read_prompt(parts: Sequence[str], stdin: Any) -> str:
    """The argument prompt, then stdin (when it is not a terminal), joined by a blank line."""
    pieces = [" ".join(parts)] if parts else []
    if stdin is not None and not stdin.isatty():
        raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read()
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(
                    f"stdin is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                    hint="convert it first, e.g. `iconv -f latin1 -t utf-8`",
                ) from None
        if raw.strip():
            pieces.append(raw.rstrip("\n"))
    prompt = "\n\n".join(p for p in pieces if p.strip())
    if not prompt.strip():
        raise UsageError(
            "the prompt is empty",
            hint='give one as an argument or on stdin: ponder run MODEL "..."',
        )
    return prompt


def _cmd_run(args: argparse.Namespace) -> int:
    prompt = read_prompt(args.prompt, sys.stdin)
    grammar = _read_text(args.grammar, "grammar") if args.grammar else None
    overrides = _sampling_flags(args)
    session = open_session()
    request = RunRequest(
        model=args.model,
        reply=ReplyRequest(
            prompt=prompt,
            chat_id=args.chat,
            system=args.system,
            save=not args.no_save,
            overrides=overrides,
            grammar=grammar,
        ),
        options=ModelOptions(
            n_ctx=args.ctx,
            n_threads=args.threads,
            n_gpu_layers=args.gpu_layers,
            chat_format=args.chat_format,
            chat_template=args.chat_template,
        ),
        continue_last=args.cont,
    )
    mode = args.reasoning or session.settings.reasoning
    observer = _OpenObserver(verbose=args.verbose)
    try:
        with _cancel_on_sigint() as cancel:
            try:
                reply = session.run(request, on_event=observer, cancel=cancel)
            finally:
                observer.close()
            try:
                if args.json:
                    finished = reply.drain()
                    _print_json(reply, finished)
                elif args.jsonl:
                    finished = _write_jsonl(reply, sys.stdout)
                else:
                    finished = _write_text(reply, mode, sys.stdout, sys.stderr)
            finally:
                # A closed pipe or a second Ctrl-C leaves the stream half-read: end it
                # now, while the history is open, so the partial reply is recorded.
                reply.close()
        if finished.finish_reason == "interrupted":
            print("ponder: interrupted; the partial reply was saved", file=sys.stderr)
            return ExitCode.INTERRUPTED
        return ExitCode.OK
    finally:
        session.close()


def _sampling_flags(args: argparse.Namespace) -> dict[str, Number | None]:
    values: dict[str, Number | None] = {}
    for opt in OPTIONS:
        value = getattr(args, opt.name, None)
        if value is not None:
            try:
                value = opt.check(value)
            except ValueError as exc:
                raise UsageError(f"{opt.flag}: {exc}") from None
        values[opt.name] = value
    return values


class _OpenObserver:
    """What `ponder run` prints while the model opens: the plan, warnings, a pull."""

    def __init__(self, *, verbose: bool = False, quiet: bool = False) -> None:
        self.verbose = verbose
        self.quiet = quiet
        self._printer: ProgressPrinter | None = None

    def __call__(self, event: OpenEvent) -> None:
        match event:
            case Planned():
                if self.verbose:
                    print(f"ponder: {event.summary}", file=sys.stderr)
                    print(event.plan, file=sys.stderr)
                for warning in event.warnings:
                    print(f"ponder: warning: {warning}", file=sys.stderr)
            case PullStarted():
                self._printer = ProgressPrinter(sys.stderr, quiet=self.quiet).__enter__()
                self._printer.note(
                    f"pulling {event.name}: {event.files} file(s), {decimal_size(event.size)}"
                )
            case DownloadProgress():
                if self._printer is not None:
                    self._printer.update(event)
            case PullFinished():
                self.close()
                print(
                    f"ponder: installed {event.name} ({decimal_size(event.size)}) in {event.where}",
                    file=sys.stderr,
                )
            case Notice():
                if self._printer is not None:
                    self._printer.note(event.text)
                else:
                    print(f"ponder: {event.text}", file=sys.stderr)

    def close(self) -> None:
        if self._printer is not None:
            self._printer.__exit__(None, None, None)
            self._printer = None


def _notice(text: str) -> None:
    print(f"ponder: {text}", file=sys.stderr)


@contextmanager
def _cancel_on_sigint() -> Iterator[threading.Event]:
    """First Ctrl-C: stop after the current token. A second one: stop at once."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} file {path}: {exc}") from None


def _write_text(events: Iterator[ChatEvent], mode: str, out: TextIO, err: TextIO) -> Finished:
    dim = err.isatty() and "NO_COLOR" not in os.environ
    answer_tail = ""
    reasoning_open = False  # inline mode: inside <think> on stdout
    reasoning_on_stderr = False  # stderr mode: thinking was shown and needs a line break
    finished: Finished | None = None
    for event in events:
        match event:
            case ReasoningDelta(text=text):
                if mode == "stderr":
                    err.write(f"{DIM}{text}{RESET}" if dim else text)
                    err.flush()
                    reasoning_on_stderr = True
                elif mode == "inline":
                    if not reasoning_open:
                        out.write("<think>\n")
                        reasoning_open = True
                    out.write(text)
                    out.flush()
            case AnswerDelta(text=text):
                if reasoning_open:
                    out.write("\n</think>\n\n")
                    reasoning_open = False
                elif reasoning_on_stderr:
                    err.write("\n")
                    err.flush()
                    reasoning_on_stderr = False
                out.write(text)
                out.flush()
                answer_tail = text or answer_tail
            case Finished():
                finished = event
            case Started():
                pass
    if reasoning_open:
        out.write("\n</think>\n")
    if reasoning_on_stderr:
        err.write("\n")
    if answer_tail and not answer_tail.endswith("\n"):
        out.write("\n")
    out.flush()
    assert finished is not None
    return finished


def _event_json(event: ChatEvent) -> dict[str, Any]:
    match event:
        case Started(model=model, chat_id=chat_id):
            return {"type": "start", "model": model, "chat_id": chat_id}
        case ReasoningDelta(text=text):
            return {"type": "reasoning", "text": text}
        case AnswerDelta(text=text):
            return {"type": "answer", "text": text}
        case Finished():
            return {"type": "finish", **_finish_fields(event)}
    raise AssertionError(f"unknown event {event!r}")


def _finish_fields(finished: Finished) -> dict[str, Any]:
    u, t = finished.usage, finished.timings
    return {
        "finish_reason": finished.finish_reason,
        "usage": {
            "prompt_tokens": u.prompt_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "answer_tokens": u.answer_tokens,
            "completion_tokens": u.completion_tokens,
        },
        "timings": t.as_dict(),
    }


def _write_jsonl(events: Iterator[ChatEvent], out: TextIO) -> Finished:
    finished: Finished | None = None
    for event in events:
        out.write(json.dumps(_event_json(event), ensure_ascii=False) + "\n")
        out.flush()
        if isinstance(event, Finished):
            finished = event
    assert finished is not None
    return finished


def _print_json(reply: Reply, finished: Finished) -> None:
    document = {
        "model": reply.model,
        "chat_id": reply.chat_id,
        "answer": reply.answer,
        "reasoning": reply.reasoning,
        **_finish_fields(finished),
    }
    print(json.dumps(document, ensure_ascii=False, indent=2))


# -- chats -------------------------------------------------------------------------


def _cmd_chats(args: argparse.Namespace) -> int:
    paths = default_paths()
    with History.open(paths.history_db) as history:
        match args.verb:
            case "list":
                chats = history.list_chats(limit=args.limit)
                if args.json:
                    print(json.dumps([_summary_json(c) for c in chats], indent=2))
                elif not chats:
                    print(
                        "no saved chats yet; `ponder run MODEL PROMPT` starts one", file=sys.stderr
                    )
                for c in chats if not args.json else []:
                    model = c.model or "-"
                    when = c.updated_at[:16].replace("T", " ")
                    print(f"{c.id:>5}  {when}  {model:<24}  {c.message_count:>3}  {c.title}")
            case "show":
                print(history.export_markdown(args.id), end="")
            case "search":
                hits = history.search(" ".join(args.text), include_reasoning=args.reasoning)
                if args.json:
                    print(json.dumps([h.__dict__ for h in hits], indent=2, ensure_ascii=False))
                for h in hits if not args.json else []:
                    print(f"{h.chat_id:>5}  {h.chat_title}: {h.snippet}")
                if not hits:
                    print("no matches", file=sys.stderr)
            case "export":
                text = (
                    history.export_json(args.id)
                    if args.format == "json"
                    else history.export_markdown(args.id)
                )
                if args.output:
                    _write_file(args.output, text)
                    print(f"wrote {args.output}", file=sys.stderr)
                else:
                    sys.stdout.write(text if text.endswith("\n") else text + "\n")
            case "rm":
                history.delete_chat(args.id)
                print(f"deleted chat {args.id}", file=sys.stderr)
    return ExitCode.OK


def _summary_json(c: Any) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "model": c.model,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "message_count": c.message_count,
    }


def _write_file(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


# -- catalog -----------------------------------------------------------------------


def _cmd_catalog(args: argparse.Namespace) -> int:
    catalog = load_catalog(default_paths().user_catalog)
    rows = []
    for model in catalog.models:
        rows.append(
            {
                "id": model.id,
                "aliases": list(model.aliases),
                "quants": [q.quant for q in model.quants],
                "default_quant": model.default_quant,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    for row in rows:
        names = ", ".join(row["aliases"]) or row["id"]
        print(f"{row['id']:<32} {names:<28} {' '.join(row['quants'])}")
    return ExitCode.OK


# -- models ------------------------------------------------------------------------


def _pull(session: Session, ref: str, *, quiet: bool) -> None:
    observer = _OpenObserver(quiet=quiet)
    try:
        with _cancel_on_sigint() as cancel:
            session.pull(ref, on_event=observer, cancel=cancel)
    finally:
        observer.close()


def _cmd_pull(args: argparse.Namespace) -> int:
    session = open_session()
    _pull(session, args.model, quiet=args.quiet)
    return ExitCode.OK


def _cmd_list(args: argparse.Namespace) -> int:
    session = open_session()
    store = session.store
    rows: list[dict[str, Any]] = []
    for model in store.installed():
        path = store.primary_path(model)
        missing = store.missing(model)
        rows.append(
            {
                "name": model.name,
                "quant": model.quant,
                "size": model.size,
                "path": str(path),
                "last_used": model.last_used,
                "installed_at": model.installed_at,
                "missing": [str(p) for p in missing],
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return ExitCode.OK
    if not rows:
        print("no models installed; `ponder pull r1:1.5b` fetches a small one", file=sys.stderr)
    for row in rows:
        used = (row["last_used"] or "never")[:16].replace("T", " ")
        state = "  MISSING FILES" if row["missing"] else ""
        size = decimal_size(row["size"])
        quant = row["quant"] or "-"
        print(f"{row['name']:<34} {quant:<8} {size:>9}  {used:<16}  {row['path']}{state}")
    return ExitCode.OK


def _cmd_rm(args: argparse.Namespace) -> int:
    session = open_session()
    name = session.store_name(args.model)
    model = session.store.find(name)
    if model is None:
        raise ModelNotFoundError(
            f"{args.model} is not installed", hint="`ponder list` shows what is"
        )
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to remove {name} without asking", hint="pass --yes")
        answer = input(f"remove {name} ({decimal_size(model.size)})? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("kept", file=sys.stderr)
            return ExitCode.OK
    freed = session.store.remove(name)
    print(f"removed {name}; freed {decimal_size(freed)}", file=sys.stderr)
    return ExitCode.OK


def _cmd_import(args: argparse.Namespace) -> int:
    session = open_session()
    model = session.import_model(args.path, name=args.name, link=args.link)
    where = "linked" if model.linked else "copied"
    print(f"imported {model.name} ({decimal_size(model.size)}, {where})", file=sys.stderr)
    return ExitCode.OK


def _cmd_verify(args: argparse.Namespace) -> int:
    session = open_session()
    store = session.store
    if args.model:
        found = store.find(session.store_name(args.model))
        if found is None:
            raise ModelNotFoundError(
                f"{args.model} is not installed", hint="`ponder list` shows what is"
            )
        models = [found]
    else:
        models = store.installed()
    bad = 0
    for model in models:
        for check in store.verify(model):
            bad += check.status != "ok"
            detail = f" ({check.detail})" if check.detail else ""
            print(f"{check.status:<8} {model.name}  {check.path}{detail}")
    if bad:
        print(
            f"ponder: error: {bad} file(s) failed verification — `ponder pull` fetches them again",
            file=sys.stderr,
        )
        return ExitCode.ERROR
    return ExitCode.OK


def _cmd_doctor(args: argparse.Namespace) -> int:
    session = open_session()
    hw = session.machine(os_gpus=True)
    findings = diagnose(hw)
    print(render_doctor(hw, findings))
    return ExitCode.ERROR if any(f.severity == "error" for f in findings) else ExitCode.OK


def _cmd_fit(args: argparse.Namespace) -> int:
    session = open_session()
    hw = session.machine()
    if args.model:
        entry = session.default_quant(args.model)
        plan = plan_quant(entry.model, entry.quant, hw)
        if plan is None:
            raise UsageError(f"{entry.display_ref} has no architecture numbers in the catalog")
        print(f"{entry.display_ref}: {decimal_size(entry.quant.size_bytes)} on disk")
        print(render_plan(plan))
        print(render_fit_table(fit_table([entry.model], hw)))
    else:
        print(render_fit_table(fit_table(session.catalog, hw)))
    free = shutil.disk_usage(_existing_parent(session.store.root)).free
    print(f"\nfree disk for models: {decimal_size(free)} in {session.store.root}")
    return ExitCode.OK


def _cmd_setup(args: argparse.Namespace) -> int:
    session = open_session()
    hw = session.machine(os_gpus=True)
    for finding in diagnose(hw):
        if finding.severity in ("error", "warning"):
            print(f"ponder: {finding.severity}: {finding.message}", file=sys.stderr)
            if finding.fix:
                print(f"  fix: {finding.fix}", file=sys.stderr)
    choice = recommend(session.catalog, hw)
    if choice is None:
        raise ModelLoadError(
            "no R1 distill fits this machine", hint="`ponder fit` shows every model's needs"
        )
    ref = f"{choice.model.short_name}@{choice.quant.quant}"
    print(f"recommended: {ref} ({decimal_size(choice.quant.size_bytes)}): {choice.reason}")
    print(render_plan(choice.plan))
    installed = session.store.find_catalog(choice.model.id, choice.quant.quant)
    if installed is not None:
        print(f'already installed; try: ponder run {ref} "What is 17*23?"')
        return ExitCode.OK
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"not downloading {ref} without asking", hint="pass --yes")
        if input(f"download {ref} now? [y/N] ").strip().lower() not in {"y", "yes"}:
            print(f"not downloaded; `ponder pull {ref}` does it later", file=sys.stderr)
            return ExitCode.OK
    _pull(session, ref, quiet=False)
    print(f'ready: ponder run {ref} "What is 17*23?"')
    return ExitCode.OK


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


MODEL_COMMANDS = {
    "pull": _cmd_pull,
    "list": _cmd_list,
    "rm": _cmd_rm,
    "import": _cmd_import,
    "verify": _cmd_verify,
    "doctor": _cmd_doctor,
    "fit": _cmd_fit,
    "setup": _cmd_setup,
}
