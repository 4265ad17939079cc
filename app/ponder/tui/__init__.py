"""The Textual UI: the only package that imports ``textual``.

It is a front end over :class:`ponder.session.Session`, like the CLI: it never
reaches into the engine or the model files. Blocking work (loading a model,
generating, downloading) runs in thread workers that talk back with past-tense
messages (:mod:`ponder.tui.messages`); everything a reply shows is written to the
SQLite history by the session while it streams.
"""

from __future__ import annotations
