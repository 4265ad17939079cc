"""The Textual UI: the only package that imports ``textual``.

It is a front end over :class:`ponder.session.Session`, like the CLI: it imports
the session and the basics (events, errors, units, ...), never the services under
them. The app (:mod:`.app`) owns the loaded model and the downloads; the screens
(:mod:`.screens`) are given what they show and ask the app for the rest with
messages (:mod:`.messages`), so none imports the app; the widgets
(:mod:`.widgets`) show what they are given. Blocking work (loading a model,
generating, downloading) runs in thread workers that talk back with past-tense
messages; everything a reply shows is written to the SQLite history by the session
while it streams.
"""

from __future__ import annotations
