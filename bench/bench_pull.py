"""Pull throughput: Ponder's download path against curl, same URL, one run.

A 1 GB file is served by the loopback fake Hub (tests/support/fakehub.py). Ponder goes the
whole way a user's `ponder pull` goes: HEAD for metadata through huggingface_hub,
the redirect, the Range transfer into a partial file with sha256 on the fly, fsync,
verification, the atomic rename and the manifest. curl fetches the same resolve
URL, follows the redirect and writes the bytes to a file (no hashing). Runs are
interleaved (curl, ponder, curl, ponder, ...) so machine noise hits both alike.

    .venv/bin/python bench/bench_pull.py [--size-mb 1000] [--repeats 3]

Target (issue 3): ponder >= 0.9 x curl.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from ponder.download import Hub, TransferPolicy, plan_files, pull  # noqa: E402
from ponder.store import Store  # noqa: E402
from support.fakehub import FakeHub  # noqa: E402

REPO = "bench/Big-GGUF"
FILE = "Big-Q4_K_M.gguf"


def make_file(path: Path, size: int) -> None:
    block = os.urandom(8 * 1024 * 1024)
    with path.open("wb") as out:
        left = size
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)


def time_curl(url: str, dest: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sSfL", "-o", str(dest), url], check=True)
    elapsed = time.perf_counter() - started
    dest.unlink()
    return elapsed


def time_curl_sha(url: str, dest: Path) -> float:
    """curl, then sha256sum: what fetching a file *and* verifying it costs with tools."""
    started = time.perf_counter()
    subprocess.run(["curl", "-sSfL", "-o", str(dest), url], check=True)
    subprocess.run(["sha256sum", str(dest)], check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    dest.unlink()
    return elapsed


def time_ponder(hub: FakeHub, work: Path) -> float:
    store_dir = work / "store"
    client = Hub(endpoint=hub.url)
    started = time.perf_counter()
    plan = plan_files(client, name="big", repo=REPO, revision="main", paths=[FILE])
    pull(plan, Store(store_dir), hub=client, policy=TransferPolicy())
    elapsed = time.perf_counter() - started
    shutil.rmtree(store_dir)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("curl is not installed", file=sys.stderr)
        return 1
    size = args.size_mb * 1_000_000
    os.environ.pop("HF_HUB_OFFLINE", None)
    with tempfile.TemporaryDirectory(prefix="ponder-bench-pull-") as tmp:
        work = Path(tmp)
        source = work / "source.bin"
        make_file(source, size)
        with FakeHub() as hub:
            hub.add_file(REPO, FILE, source)
            url = f"{hub.url}/{REPO}/resolve/main/{FILE}"
            curl_s: list[float] = []
            curl_sha_s: list[float] = []
            ponder_s: list[float] = []
            time_curl(url, work / "warm.bin")  # page cache and connection warm-up
            for _ in range(args.repeats):
                curl_s.append(time_curl(url, work / "curl.bin"))
                ponder_s.append(time_ponder(hub, work))
                curl_sha_s.append(time_curl_sha(url, work / "curl.bin"))
    curl_rate = size / statistics.median(curl_s) / 1e6
    ponder_rate = size / statistics.median(ponder_s) / 1e6
    ratio = ponder_rate / curl_rate
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"file: {size / 1e9:.2f} GB from the loopback fake Hub, {args.repeats} interleaved runs")
    print(f"{'tool':<8} {'median s':>9} {'MB/s':>9}   runs (s)")
    print(
        f"{'curl':<8} {statistics.median(curl_s):>9.2f} {curl_rate:>9.0f}   "
        + " ".join(f"{t:.2f}" for t in curl_s)
    )
    print(
        f"{'ponder':<8} {statistics.median(ponder_s):>9.2f} {ponder_rate:>9.0f}   "
        + " ".join(f"{t:.2f}" for t in ponder_s)
    )
    sha_rate = size / statistics.median(curl_sha_s) / 1e6
    print(
        f"{'curl+sha':<8} {statistics.median(curl_sha_s):>9.2f} {sha_rate:>9.0f}   "
        + " ".join(f"{t:.2f}" for t in curl_sha_s)
        + "   (curl, then sha256sum)"
    )
    verdict = "PASS" if ratio >= 0.9 else "FAIL"
    print(f"ponder/curl = {ratio:.2f}  (target >= 0.90: {verdict})")
    print(f"ponder/(curl+sha256sum) = {ponder_rate / sha_rate:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
