"""The chat UI's own widgets: the chat list, the prompt box, the status line, a reply,
and how a download reads.

Widgets show what they are given and post messages for what the user asks; they
never reach the app, the session or the screens.
"""
