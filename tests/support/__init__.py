"""What the tests share, none of it a test: the loopback fake Hub (:mod:`.fakehub`), the
scripted engine (:mod:`.scripted`), recorded machines (:mod:`.machines`), the real model's
grammars and R1 copy (:mod:`.models`), running ``ponder`` as a user does (:mod:`.cli`), and
building the chat UI (:mod:`.tuikit`)."""
