"""A loopback OpenAI-compatible server that replays recorded streams, with faults on demand.

Real HTTP on 127.0.0.1 (stdlib ``http.server`` in a thread, port 0), so the remote engine's
whole path runs: httpx2, chunked transfer, the SSE parser, the dialects. Each
``POST /v1/chat/completions`` takes the next queued :class:`Reply` (or the default one) and
sends its body in the pieces it says, so a test chooses where events and UTF-8 characters
are cut. Faults: any status with any body, a stall before the answer or in the middle, a
pause between pieces, a connection closed mid-stream.

It answers the probe endpoints of the server ``kind`` it plays (``/props`` for
llama-server, ``/version`` for vLLM, ...) and ``/v1/models``. With ``api_key`` set, every
request without ``Authorization: Bearer <key>`` gets llama-server's 401.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["FakeOpenAI", "RecordedRequest", "Reply", "error_reply"]


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/event-stream"
    pieces: Sequence[int] = ()  # cut the body into pieces of these sizes, cycling; () = whole
    pause_s: float = 0.0  # between pieces
    stall_s: float = 0.0  # before the status line
    stall_after: int | None = None  # after this many bytes of body, stall for stall_s
    headers: dict[str, str] = field(default_factory=dict)


def error_reply(
    status: int, message: str, kind: str = "invalid_request_error", **extra: Any
) -> Reply:
    body = {"error": {"code": status, "message": message, "type": kind, **extra}}
    return Reply(json.dumps(body).encode(), status=status, content_type="application/json")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


_PROBES: dict[str, dict[str, Any]] = {
    "llama-server": {
        "/props": {"default_generation_settings": {"n_ctx": 4096}, "build_info": "b6500-abc"}
    },
    "sglang": {
        "/get_server_info": {
            "model_path": "deepseek-ai/DeepSeek-R1",
            "tp_size": 16,
            "context_length": 163840,
            "version": "0.5.3",
        }
    },
    "vllm": {"/version": {"version": "0.19.1"}},
    "ollama": {"/api/version": {"version": "0.12.6"}},
    "lmstudio": {
        "/api/v0/models": {
            "object": "list",
            "data": [
                {
                    "id": "deepseek-r1-distill-qwen-7b",
                    "object": "model",
                    "type": "llm",
                    "publisher": "lmstudio-community",
                    "state": "loaded",
                    "max_context_length": 131072,
                }
            ],
        }
    },
    "openai": {},
}


class FakeOpenAI:
    def __init__(
        self,
        *,
        kind: str = "vllm",
        models: Sequence[str] = ("deepseek-ai/DeepSeek-R1",),
        api_key: str | None = None,
        default: Reply | None = None,
    ) -> None:
        self.kind = kind
        self.models = list(models)
        self.api_key = api_key
        self.default = default or Reply()
        self.replies: list[Reply] = []
        self.requests: list[RecordedRequest] = []
        self.client_gone = threading.Event()  # a write failed: the client closed the stream
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def next_reply(self) -> Reply:
        with self._lock:
            return self.replies.pop(0) if self.replies else self.default

    def completions(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_event.set()  # release stalled handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self, body: Any) -> None:
            fake.requests.append(
                RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
            )

        def _authorised(self) -> bool:
            if (
                fake.api_key is None
                or self.headers.get("Authorization") == f"Bearer {fake.api_key}"
            ):
                return True
            self._send(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Invalid API Key",
                        "type": "authentication_error",
                    }
                },
            )
            return False

        def _send(self, status: int, obj: Any) -> None:
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._record(None)
            if not self._authorised():
                return
            path = self.path.split("?")[0]
            if path == "/v1/models":
                self._send(
                    200,
                    {
                        "object": "list",
                        "data": [
                            {"id": m, "object": "model", "owned_by": fake.kind} for m in fake.models
                        ],
                    },
                )
                return
            probe = _PROBES.get(fake.kind, {}).get(path)
            if probe is None:
                self._send(404, {"error": {"code": 404, "message": "Not Found"}})
            else:
                self._send(200, probe)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                body = raw
            self._record(body)
            if not self._authorised():
                return
            reply = fake.next_reply()
            if reply.stall_s and reply.stall_after is None and fake.stop_event.wait(reply.stall_s):
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                sent = 0
                for piece in _pieces(reply.body, reply.pieces):
                    if reply.stall_after is not None and sent >= reply.stall_after:
                        if fake.stop_event.wait(reply.stall_s):
                            return
                        reply = Reply(reply.body, pieces=reply.pieces, pause_s=reply.pause_s)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                    sent += len(piece)
                    if reply.pause_s and fake.stop_event.wait(reply.pause_s):
                        return
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                fake.client_gone.set()
                self.close_connection = True

    return Handler


def _pieces(body: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    if not sizes:
        if body:
            yield body
        return
    i = n = 0
    while i < len(body):
        size = sizes[n % len(sizes)]
        yield body[i : i + size]
        i += size
        n += 1


@contextlib.contextmanager
def fake_openai(**kwargs: Any) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(**kwargs) as fake:
        yield fake
