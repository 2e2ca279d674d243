"""A desk: the engine's requests of one kind (`op_*`), in a service with no thread of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine


class Desk:
    """Answers its requests in the requesting thread; nothing to start or stop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
