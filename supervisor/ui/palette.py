"""The colours of states, badges and diffs, taken from the dashboard's theme, without Textual.

A fixed colour reads on one background and not on another (black on a dark theme's yellow, a dark blue on a
dark background): every colour here is one of the theme's (its error, warning, success, primary…), a badge's
text is black or white, whichever reads better on it, and a coloured word is moved toward the theme's
foreground until it stands out from the background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rich.color import Color, ColorParseError

MIN_TEXT_CONTRAST = 3.0  # WCAG's large-text ratio: coloured words on the background at least this distinct

# Each state and each badge, by the theme colour it takes (a badge: as its background).
STATE_COLOURS = {
    "starting": "secondary", "working": "success", "idle": "primary", "waiting": "warning", "stalled": "accent",
    "failed": "error", "killed": "error", "limited": "warning", "unreachable": "error",
}
STATE_BOLD = frozenset({"working", "waiting", "stalled", "failed", "limited", "unreachable"})
BADGE_COLOURS = {
    "ASK": "warning", "STALL": "secondary", "BOUNDARY": "error", "CONFLICT": "warning-darken-2", "FAIL": "error",
    "EXIT": "error", "EXIT 0": "foreground", "TIMEOUT": "error-darken-2", "MERGE": "error", "MERGED": "foreground",
    "READY": "success", "LIMIT": "warning-darken-2",
}  # (never primary: the selected row is drawn in it, and a badge of that colour would vanish there)

# Before a theme is known (and for tests of the model): the colours of Textual's default dark theme.
DARK_THEME = {
    "primary": "#0178D4", "secondary": "#004578", "accent": "#FEA62B", "warning": "#FEA62B", "error": "#B93C5B",
    "success": "#4EBF71", "foreground": "#E0E0E0", "background": "#121212",
    "warning-darken-2": "#CF7E00", "error-darken-2": "#8D0638",
}


def _rgb(colour: str) -> tuple[int, int, int] | None:
    try:
        triplet = Color.parse(colour.split()[0]).get_truecolor()
    except (ColorParseError, IndexError):
        return None
    return triplet.red, triplet.green, triplet.blue


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def luminance(rgb: tuple[int, int, int]) -> float:
    """Relative luminance (WCAG 2)."""
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _toward(rgb: tuple[int, int, int], target: tuple[int, int, int], share: float) -> tuple[int, int, int]:
    r, g, b = (round(c + (t - c) * share) for c, t in zip(rgb, target, strict=True))
    return r, g, b


@dataclass(frozen=True)
class Palette:
    """Rich styles for what the dashboard colours."""

    states: dict[str, str] = field(default_factory=dict)  # state -> style of its name
    badges: dict[str, str] = field(default_factory=dict)  # badge -> style (its background is the colour)
    good: str = "green"  # lines added, a trigger resolved
    bad: str = "red"  # lines removed, a failure
    warn: str = "yellow"  # context filling up, a trigger raised
    mark: str = "bold magenta"  # a marked row's ●
    added_line: str = "on #12321c"  # a diff's added line (a tint of the theme's success colour)
    removed_line: str = "on #3a1420"  # … a removed one (of its error colour)
    hunk: str = "bold cyan"  # a diff's `@@ … @@` line
    syntax: dict[str, str] = field(default_factory=dict)  # pygments token kind (Keyword, String…) -> style

    def state(self, state: str) -> str:
        return self.states.get(state, "")

    def badge(self, badge: str) -> str:
        return self.badges.get(badge, "dim")


def palette(theme: Mapping[str, str]) -> Palette:
    """The palette of a theme, from its colour variables (`App.get_css_variables()`); a colour it lacks is
    taken from the default dark theme."""
    def colour(name: str) -> tuple[int, int, int]:
        return _rgb(theme.get(name) or "") or _rgb(DARK_THEME.get(name, "#808080")) or (128, 128, 128)

    background, foreground = colour("background"), colour("foreground")

    def word(name: str) -> str:
        """The colour as text on the background: moved toward the foreground until it stands out."""
        rgb = colour(name)
        for step in range(11):
            shifted = _toward(rgb, foreground, step / 10)
            if contrast(shifted, background) >= MIN_TEXT_CONTRAST:
                return _hex(shifted)
        return _hex(foreground)

    def badge(name: str) -> str:
        rgb = colour(name)
        text = max(((0, 0, 0), (255, 255, 255)), key=lambda candidate: contrast(candidate, rgb))
        return f"bold {_hex(text)} on {_hex(rgb)}"

    def tint(name: str) -> str:
        """A background for a whole line: the colour, faint, over the theme's background."""
        return "on " + _hex(_toward(background, colour(name), 0.22))

    syntax = {"Keyword": "bold " + word("primary"), "Name.Builtin": word("secondary"),
              "Name.Function": word("accent"), "Name.Class": "bold " + word("accent"),
              "Name.Decorator": word("secondary"), "Literal.String": word("success"),
              "Literal.Number": word("warning"),
              "Comment": "italic " + _hex(_toward(foreground, background, 0.4)), "Operator.Word": word("primary")}
    states = {state: ("bold " if state in STATE_BOLD else "") + word(name) for state, name in STATE_COLOURS.items()}
    states.update({state: "dim" for state in ("queued", "exited", "stopped")})
    badges = {label: badge(name) for label, name in BADGE_COLOURS.items()}
    badges["ZZ"] = "dim"
    return Palette(states=states, badges=badges, good=word("success"), bad=word("error"), warn=word("warning"),
                   mark="bold " + word("accent"), added_line=tint("success"), removed_line=tint("error"),
                   hunk="bold " + word("primary"), syntax=syntax)


DEFAULT = palette(DARK_THEME)
