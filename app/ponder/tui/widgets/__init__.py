"""The chat UI's own widgets: the chat list, the prompt box, the status line, a reply
and the follower that streams text into it, and how a download reads.

Widgets show what they are given (the session's records among it) and post messages
for what the user asks; they call neither the app, the session nor the screens.
"""
