"""The demo agent's terminal: raw mode with bracketed paste, writing at once, and raw input decoded into keys."""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import select
import termios
import time
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"
ESC_WAIT = 0.05  # a lone ESC not followed by more bytes within this time is the Esc key

# One complete escape sequence: CSI (ESC [ params final), SS3 (ESC O x) or ESC + one character.
_ESC_SEQ = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|O.|[^\[O])", re.DOTALL)
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")
_CONTROLS = {"\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace",
             "\x03": "ctrl-c", "\x04": "ctrl-d", "\x15": "ctrl-u"}


def out(text: str) -> None:
    """Write to the terminal at once (UTF-8 whatever the locale, no buffering)."""
    data = text.encode("utf-8", "replace")
    while data:
        data = data[os.write(1, data):]



@contextlib.contextmanager
def terminal_mode(fd: int) -> Iterator[None]:
    """Raw input (no echo, no line editing, Ctrl-C as a byte), output processing kept; bracketed paste.

    Both are undone on the way out, whatever the reason (exceptions, SystemExit, SIGTERM).
    """
    saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    if saved is not None:
        mode = termios.tcgetattr(fd)
        mode[0] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON)
        mode[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
        termios.tcsetattr(fd, termios.TCSANOW, mode)
    out("\x1b[?2004h")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            out("\x1b[?2004l")
            if saved is not None:
                termios.tcsetattr(fd, termios.TCSAFLUSH, saved)  # unread input is dropped too


class Key(NamedTuple):
    """One input event: name is text, paste, enter, backspace, ctrl-c, ctrl-d, ctrl-u, esc, eof, other."""

    name: str
    text: str = ""


class KeyReader:
    """Decodes raw terminal input into keys, bracketed pastes and escape sequences."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.buf = ""
        self.in_paste = False
        self.eof = False
        self.keys: deque[Key] = deque()

    def next_key(self, timeout: float) -> Key | None:
        """The next key, waiting at most ``timeout`` seconds; None when none came."""
        deadline = time.monotonic() + timeout
        while not self.keys:
            left = deadline - time.monotonic()
            partial = bool(self.buf) and not self.in_paste  # an unfinished escape sequence
            if self.eof:
                time.sleep(max(0.0, left))
                return None
            if left <= 0 and not partial:
                return None
            ready, _, _ = select.select([self.fd], [], [], ESC_WAIT if partial else left)
            if ready:
                data = os.read(self.fd, 65536)
                if not data:
                    self.eof = True
                    self.keys.append(Key("eof"))
                self.buf += self.decoder.decode(data)
            elif partial:
                self.buf = self.buf[1:]
                self.keys.append(Key("esc"))
            self._parse()
        return self.keys.popleft()

    def discard(self) -> None:
        """Forget everything typed so far (also what the kernel holds)."""
        with contextlib.suppress(termios.error):
            termios.tcflush(self.fd, termios.TCIFLUSH)
        self.buf, self.in_paste = "", False
        self.keys.clear()

    def _parse(self) -> None:
        while self.buf:
            if self.in_paste:
                end = self.buf.find(PASTE_END)
                if end < 0:
                    return
                text = self.buf[:end].replace("\r\n", "\n").replace("\r", "\n")
                self.keys.append(Key("paste", text))
                self.buf, self.in_paste = self.buf[end + len(PASTE_END):], False
            elif self.buf.startswith(PASTE_START):
                self.buf, self.in_paste = self.buf[len(PASTE_START):], True
            elif self.buf.startswith("\x1b"):
                if PASTE_START.startswith(self.buf) or not (match := _ESC_SEQ.match(self.buf)):
                    return  # wait for the rest of the sequence
                self.keys.append(Key("esc" if match.group() == "\x1b\x1b" else "other", match.group()))
                self.buf = self.buf[match.end():]
            elif match := _PRINTABLE.match(self.buf):
                self.keys.append(Key("text", match.group()))
                self.buf = self.buf[match.end():]
            else:
                char, self.buf = self.buf[0], self.buf[1:]
                self.keys.append(Key(_CONTROLS.get(char, "other"), char))
