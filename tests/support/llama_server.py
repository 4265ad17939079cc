"""A real llama.cpp server (llama-server, from the ``xllamacpp`` wheel) in a process of its own.

Never in the pytest process: xllamacpp bundles its own ggml, which must not share a
process with llama-cpp-python's. The child runs a few lines of Python that build
``xllamacpp.CommonParams``, start ``xllamacpp.Server`` on 127.0.0.1 and print the address
it listens on; the parent waits for ``/health`` and stops the child when done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx2

# The shared test server's key and model name (tests/conftest.py: the llama_server fixture).
REMOTE_KEY = "sk-e2e-remote-key"
REMOTE_ALIAS = "DeepSeek-R1-Distill-Test"

# Attribute names checked against xllamacpp 2026.10 (CommonParams, CpuParams, Server).
_SCRIPT = """
import sys, time, xllamacpp
model, alias, key, n_ctx = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
p = xllamacpp.CommonParams()
p.model.path = model
p.model_alias = {alias}
p.n_ctx = n_ctx
p.n_parallel = 1
p.cpuparams.n_threads = 2
p.cpuparams_batch.n_threads = 2
p.use_jinja = True
p.hostnames = ["127.0.0.1"]
p.port = 0
p.api_keys = [key]
p.endpoint_props = True
p.warmup = False
server = xllamacpp.Server(p)
print("LISTENING", server.listening_address, flush=True)
while True:
    time.sleep(3600)
"""


class LlamaServer:
    def __init__(self, model: Path, *, alias: str, api_key: str, n_ctx: int = 4096) -> None:
        self.model = model
        self.alias = alias
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.root = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return self.root + "/v1"

    def start(self, timeout_s: float = 300) -> None:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _SCRIPT,
                str(self.model),
                self.alias,
                self.api_key,
                str(self.n_ctx),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        for line in self._proc.stdout:
            if line.startswith("LISTENING "):
                self.root = line.split()[1].rstrip("/")
                break
        if not self.root:
            self.stop()
            raise RuntimeError("llama-server did not start")
        while time.monotonic() < deadline:
            try:
                if httpx2.get(self.root + "/health", timeout=5).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("llama-server did not become healthy")

    def slots_busy(self) -> bool:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        slots = httpx2.get(self.root + "/slots", headers=headers, timeout=10).json()
        return any(s.get("is_processing") for s in slots)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
