"""The chat UI's screens: the chat, the model picker, the first-run welcome, the
hardware report, the per-chat settings and the small dialogs.

A screen is given what it needs when it is made (the session, the history, the
loaded model, the downloads as they stand) and learns of changes from the app's
past-tense messages (:class:`~ponder.tui.messages.ModelChanged`,
:class:`~ponder.tui.messages.DownloadsChanged`). What it wants of the app (load a
model, start or stop a download) it asks for with a ``...Requested`` message, so no
screen imports the app.
"""
