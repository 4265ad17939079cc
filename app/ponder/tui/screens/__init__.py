"""The chat UI's screens: the chat, the model picker, the first-run welcome, the
hardware report, the per-chat settings and the small dialogs."""
