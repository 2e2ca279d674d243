"""What a token costs, per model: the packaged table, and `prices:` in supervisor.yaml over it.

Source of the table: LiteLLM's `model_prices_and_context_window.json`, as shipped in litellm 1.81.10
(`model_prices_and_context_window_backup.json`), read on 2026-12-06. Only the models the supported CLIs run are
taken: input, output, cache read and cache write in USD per token, and the context window in tokens (for Claude,
the window Claude Code 2.1.332 gives the model by default, from its own model catalog: 200k for claude-opus-4-6,
where LiteLLM says 1M, the window it has only when chosen with the `[1m]` tag). Where
LiteLLM gives no cache-write price (OpenAI and Gemini bill no cache writes) the input price stands in.
Not modelled: long-context surcharges (input above 200k tokens) and Claude's 1-hour cache writes; a user who
needs them, or a model newer than the table, sets `prices:` (a model missing from both shows tokens and no
cost: never a guessed one).

A model is looked up as written, then without a provider prefix (`openai/gpt-5`, aider's way), a context
suffix (`claude-opus-4-6[1m]`) or a release date (`claude-sonnet-4-5-20250929`), longest name first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class ModelPrice:
    """USD per token; `context_window` in tokens (None: unknown)."""

    input: float
    output: float
    cache_read: float | None = None  # None: the input price
    cache_write: float | None = None  # None: the input price
    context_window: int | None = None

    def cost(self, input: int, output: int, cache_read: int, cache_write: int) -> float:
        read = self.input if self.cache_read is None else self.cache_read
        write = self.input if self.cache_write is None else self.cache_write
        return input * self.input + output * self.output + cache_read * read + cache_write * write


M = 1e-6  # the table is written in USD per million tokens, as the vendors publish it
PACKAGED: Final[Mapping[str, ModelPrice]] = MappingProxyType({
    # Anthropic (Claude Code)
    "claude-opus-4-6": ModelPrice(5 * M, 25 * M, 0.5 * M, 6.25 * M, 200_000),  # 1M only as opus[1m], as Sonnet
    "claude-opus-4-5": ModelPrice(5 * M, 25 * M, 0.5 * M, 6.25 * M, 200_000),
    "claude-opus-4-1": ModelPrice(15 * M, 75 * M, 1.5 * M, 18.75 * M, 200_000),
    "claude-opus-4": ModelPrice(15 * M, 75 * M, 1.5 * M, 18.75 * M, 200_000),
    "claude-sonnet-4-5": ModelPrice(3 * M, 15 * M, 0.3 * M, 3.75 * M, 200_000),
    "claude-sonnet-4": ModelPrice(3 * M, 15 * M, 0.3 * M, 3.75 * M, 200_000),  # 1M only with the [1m] beta
    "claude-haiku-4-5": ModelPrice(1 * M, 5 * M, 0.1 * M, 1.25 * M, 200_000),
    "claude-3-5-haiku": ModelPrice(0.8 * M, 4 * M, 0.08 * M, 1 * M, 200_000),
    # OpenAI (Codex)
    "gpt-5.2-codex": ModelPrice(1.75 * M, 14 * M, 0.175 * M, None, 272_000),
    "gpt-5.1-codex-max": ModelPrice(1.25 * M, 10 * M, 0.125 * M, None, 272_000),
    "gpt-5.1-codex": ModelPrice(1.25 * M, 10 * M, 0.125 * M, None, 272_000),
    "gpt-5.1-codex-mini": ModelPrice(0.25 * M, 2 * M, 0.025 * M, None, 272_000),
    "gpt-5-codex": ModelPrice(1.25 * M, 10 * M, 0.125 * M, None, 272_000),
    "gpt-5.2": ModelPrice(1.75 * M, 14 * M, 0.175 * M, None, 272_000),
    "gpt-5.1": ModelPrice(1.25 * M, 10 * M, 0.125 * M, None, 272_000),
    "gpt-5": ModelPrice(1.25 * M, 10 * M, 0.125 * M, None, 272_000),
    "gpt-5-mini": ModelPrice(0.25 * M, 2 * M, 0.025 * M, None, 272_000),
    "gpt-5-nano": ModelPrice(0.05 * M, 0.4 * M, 0.005 * M, None, 272_000),
    "codex-mini-latest": ModelPrice(1.5 * M, 6 * M, 0.375 * M, None, 200_000),
    "o4-mini": ModelPrice(1.1 * M, 4.4 * M, 0.275 * M, None, 200_000),
    "gpt-4.1": ModelPrice(2 * M, 8 * M, 0.5 * M, None, 1_047_576),
    # Google (Gemini CLI)
    "gemini-3-pro-preview": ModelPrice(2 * M, 12 * M, 0.2 * M, None, 1_048_576),
    "gemini-3-flash-preview": ModelPrice(0.5 * M, 3 * M, 0.05 * M, None, 1_048_576),
    "gemini-2.5-pro": ModelPrice(1.25 * M, 10 * M, 0.125 * M, None, 1_048_576),
    "gemini-2.5-flash": ModelPrice(0.3 * M, 2.5 * M, 0.03 * M, None, 1_048_576),
    "gemini-2.5-flash-lite": ModelPrice(0.1 * M, 0.4 * M, 0.01 * M, None, 1_048_576),
})

_DATE = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")
_CONTEXT_SUFFIX = re.compile(r"\[[^\]]*\]$")


def candidates(model: str) -> list[str]:
    """The names `model` is looked up by, in order."""
    names = [model]
    bare = model.rsplit("/", 1)[-1]
    bare = _CONTEXT_SUFFIX.sub("", bare)
    names.append(bare)
    names.append(_DATE.sub("", bare))
    return list(dict.fromkeys(names))


class Prices:
    """The packaged table with the user's `prices:` over it (theirs win, model by model)."""

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None) -> None:
        self.table: dict[str, ModelPrice] = {**PACKAGED, **(overrides or {})}
        self._found: dict[str, ModelPrice | None] = {}

    def get(self, model: str | None) -> ModelPrice | None:
        if not model:
            return None
        if model not in self._found:
            self._found[model] = next((self.table[name] for name in candidates(model) if name in self.table), None)
        return self._found[model]

    def window(self, model: str | None) -> int | None:
        """The model's context window; a name with the `[1m]` tag has 1M (unless `prices:` names it so)."""
        if model and "[1m]" in model.lower() and model not in self.table:
            return 1_000_000
        price = self.get(model)
        return price.context_window if price is not None else None
