"""Run ``ponder ARGS`` in this process over the scripted engine, under a file-size limit.

``python -m support.limited ARGS`` with ``PONDER_FSIZE`` set to a byte count: every write
that would grow a file past it fails, as on a full disk (``RLIMIT_FSIZE`` with SIGXFSZ
ignored gives EFBIG, or a short write that SQLite reports as full). This works without
root or a tmpfs, so the disk-full tests run everywhere, deterministically. The model is a
real GGUF (only its header is read); the replies come from the scripted engine, its
reasoning played ``PONDER_LOOPS`` times at ``PONDER_TOKENS_PER_S`` (default: as fast as
it is read), on the recorded 8 GB laptop.
"""

from __future__ import annotations

import os
import resource
import signal
import sys

from ponder.catalog import load_catalog
from ponder.cli import main
from ponder.config import load_settings
from ponder.paths import default_paths
from ponder.session import Session
from support.machines import machine
from support.scripted import Script, loader


def _session() -> Session:
    paths = default_paths()
    return Session(
        settings=load_settings(paths),
        paths=paths,
        catalog=load_catalog(paths.user_catalog),
        history_path=paths.history_db,
        load_engine=loader(
            Script(
                loops=int(os.environ.get("PONDER_LOOPS", "1")),
                tokens_per_s=float(os.environ.get("PONDER_TOKENS_PER_S", "0")) or None,
            )
        ),
        hardware_profile=machine("cpu_laptop_8gb"),
    )


if __name__ == "__main__":
    limit = os.environ.get("PONDER_FSIZE")
    if limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
    sys.exit(main(sys.argv[1:], session_factory=_session))
