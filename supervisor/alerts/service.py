"""The alert service: reads `trigger` events from the store's log and notifies people (SPEC §8).

Placeholder wired into the engine; the router, outbox and channels arrive with the alerts issue."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor.engine.engine import Engine


class AlertService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
