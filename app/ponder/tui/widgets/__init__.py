"""The chat UI's own widgets: the chat list, the prompt box, the status line, a reply,
and how a download reads."""
