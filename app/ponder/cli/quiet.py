"""A Ctrl-C before the CLI has anything to save: one line on stderr and exit 130 at once.

Its own module, importing only ``os`` (loaded at interpreter start-up), so the package
can take over SIGINT before it imports anything else, and so the modules that use it
import it without importing the package that starts them.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing itself costs ~10 ms, the window for a stray traceback
if TYPE_CHECKING:
    from types import FrameType
    from typing import NoReturn

INTERRUPTED = "ponder: interrupted"


def exit_quietly(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGINT while modules import: nothing to save, so one line and exit 130 at once."""
    os.write(2, f"{INTERRUPTED}\n".encode())
    os._exit(130)  # ExitCode.INTERRUPTED
