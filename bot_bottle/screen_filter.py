"""What an agent prints, made safe to hand to the operator's real terminal.

The agent's TUI reaches the operator's terminal through a PTY relay. A prompt-injected agent can
print escape sequences aimed at the host rather than at the screen: write the clipboard (OSC 52)
with a command the operator later pastes, start file transfers (iTerm2 OSC 1337, kitty OSC 5113),
smuggle sequences past tmux to the outer terminal (DCS passthrough), make the terminal answer with
text the agent chose (a title report after setting the title, the ENQ answerback) that lands as
typed input in the host shell once the agent has exited, or leave modes on (mouse reporting,
alternate screen, hidden cursor, keyboard protocols, a shifted charset) that break the shell.

``ScreenFilter`` passes what a TUI needs byte for byte (text, the C0 controls, CSI sequences,
two-byte ESC sequences and an allow-list of OSC commands), holds back the rest whole and counts
it, and at the end gives the bytes that switch off the modes the agent left on.

Parsing follows the DEC/xterm state machine closely enough for one property: whatever passes is
read by a terminal exactly as it is read here, so nothing held back can be smuggled through by
splitting, nesting, mixing 7- and 8-bit forms or chunk boundaries. Two rules carry that:

- A sequence is passed only once it is complete and decided, and passed sequences have one
  reading in every terminal (an allowed OSC holds only printable UTF-8 before its BEL or ESC \\).
- A sequence that goes wrong part way (a control, DEL or 8-bit byte where none belongs) is
  dropped, never half passed: the terminal never saw its start, so it reads what follows from
  the ground state, as this parser does.

The terminal is taken to decode UTF-8 (the agents print UTF-8). Text that is not valid UTF-8 is
replaced byte by byte with U+FFFD, so what passes is always valid UTF-8 and no terminal can read a
stray byte 0x80-0x9F as an 8-bit control. C1 code points (U+0080-U+009F), which some terminals
act on as controls, are held back, and with them the body of an 8-bit CSI or string they start.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# Longest OSC kept in memory while it could still be allowed; beyond this it is held back whole
# and the rest is skipped up to its terminator without being kept.
MAX_OSC = 8192
# Longest clipboard write kept when the bottle lets the agent write the operator's clipboard
# (``clipboard_write``): 1 MiB of base64, about 768 KiB of text, more than most terminals take.
MAX_CLIPBOARD_OSC = 1024 * 1024
# Longest CSI parameter and intermediate runs; a CSI longer than this is dropped as malformed.
MAX_CSI_PARAMS = 256
MAX_CSI_INTERMEDIATES = 16

_ESC = 0x1B
_BEL = 0x07
_CAN = 0x18
_SUB = 0x1A
_ENQ = 0x05
_SO = 0x0E
_SI = 0x0F
_REPLACEMENT = "\ufffd".encode()

# Valid UTF-8 for a code point from U+00A0 up: C1 code points (C2 80-9F), surrogates and
# overlong forms are left out, so they stop a plain run and are looked at one by one.
_UTF8_CHAR = (rb"\xc2[\xa0-\xbf]|[\xc3-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]"
              rb"|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
              rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}")
# Bytes that pass with nothing to decide: ASCII and C0 controls except ENQ (answerback), SO and
# SI (tracked) and ESC; and, so typical TUI output is copied in long runs, the CSIs a TUI prints
# for every frame, which need no decision: SGR, cursor motion and erase, synchronized output on
# and off (the last SGR and synchronized output switch of a run are tracked, see _track_run).
_PLAIN = re.compile(rb"(?:[\x00-\x04\x06-\x0d\x10-\x1a\x1c-\x7f]+|" + _UTF8_CHAR
                    + rb"|\x1b\[[0-9;:]*m|\x1b\[[0-9;]*[A-HJKX]|\x1b\[\?2026[hl])+")
_SYNC = b"\x1b[?2026"
_PLAIN_SGR = re.compile(rb"\x1b\[([0-9;:]*)m")
# A valid start of a UTF-8 character that the end of the data has cut short.
_UTF8_PARTIAL = re.compile(rb"(?:[\xc2-\xdf]|\xe0[\xa0-\xbf]?|[\xe1-\xec\xee\xef][\x80-\xbf]?"
                           rb"|\xed[\x80-\x9f]?|\xf0(?:[\x90-\xbf][\x80-\xbf]?)?"
                           rb"|[\xf1-\xf3](?:[\x80-\xbf][\x80-\xbf]?)?|\xf4(?:[\x80-\x8f][\x80-\xbf]?)?)")
# Bytes that never start a character (continuation bytes, C0, C1, F5-FF): replaced as a run.
_NEVER_LEAD = re.compile(rb"[\x80-\xc1\xf5-\xff]+")
_CSI_BODY = re.compile(rb"([\x30-\x3f]{0,%d})([\x20-\x2f]{0,%d})" % (MAX_CSI_PARAMS, MAX_CSI_INTERMEDIATES))
_ESC_INTERMEDIATES = re.compile(rb"[\x20-\x2f]{1,%d}" % MAX_CSI_INTERMEDIATES)
# Where a string's body ends: BEL ends an OSC only (as in xterm); CAN and SUB cancel; ESC either
# starts ST (ESC \) or cancels the string and starts a new sequence; the 8-bit ST (U+009C) ends a
# string too (C2 at the end of the data may be its first byte).
_OSC_STOP = re.compile(rb"[\x07\x18\x1a\x1b]|\xc2(?:\x9c|\Z)")
_STRING_STOP = re.compile(rb"[\x18\x1a\x1b]|\xc2(?:\x9c|\Z)")

_OSC_NUMBER = re.compile(rb"(\d{1,6})(?:;|\Z)")
_OSC_PROGRESS = re.compile(rb"4(?:;\d{0,3}){0,2}")  # the rest of OSC 9;4;state;percent
# What an allowed OSC may carry: printable text only, so every terminal ends it where we do.
_OSC_CONTROL = re.compile(rb"[\x00-\x1f\x7f]|\xc2[\x80-\x9f]")
_WINDOW_OP = re.compile(rb"(\d{1,5})((?:;\d{0,5}){0,2})")
_NUMBERS = re.compile(rb"\d{1,6}")
_SGR_RESET = re.compile(rb"[0;]*")

# OSC commands that pass: titles, palette and dynamic colours (set, query, reset), hyperlinks,
# shell integration marks. OSC 9 passes as the 9;4 progress report or a notification's text, OSC
# 777 as a notification.
_OSC_ALLOWED = frozenset({0, 1, 2, 4, 5, 8, *range(10, 20), 104, 105, *range(110, 120), 133})
# ConEmu's OSC 9 commands other than text: a number and a semicolon.
_OSC_NUMBERED = re.compile(rb"\d+(?:;|\Z)")
# A query of an OSC command not known here that carries nothing but its question mark: held
# (unknown, its answer could be anything) but not worth the operator's attention, as it sends the
# terminal nothing. TUIs probe terminal features this way (Claude Code asks OSC 7501 at its start).
_OSC_BARE_QUERY = re.compile(rb"\d{1,6};\?")
QUIET_QUERY = "unknown terminal query"
# Agent status reports some TUIs print for the terminals that show them (Codex prints OSC 7501
# ``state=idle:app=codex`` at its start and on every turn, and OSC 21337 ``status=...``): held, as every OSC not
# known here is, but not named to the operator either. They carry a state word or a short status,
# and a line about them at the end of every session would teach the operator to skip the line
# that matters.
_OSC_QUIET_STATUS = re.compile(
    rb"7501;state=[A-Za-z0-9_.-]{0,32}(?::[a-z][a-z0-9-]{0,15}=[A-Za-z0-9_.-]{0,32}){0,4}"
    rb"|21337(?:;(?:status|indicator|status-color|detail)=[\x20-\x3a\x3c-\x7e]{0,160}){1,4}"
)
QUIET_STATUS = "agent status report"
# Hyperlinks (OSC 8 ; params ; URI): clicking one hands its URI to the handler of its scheme,
# whatever text the link shows. Only a web address passes, spelled in printable ASCII (a
# lookalike host, a space, a right-to-left letter never hide in it) and with nothing before its
# host (``https://github.com@evil.example`` leads to evil.example; browsers read a backslash
# there as a slash). mailto: stays out too: some mail clients attach the files its ``attach=``
# names. A link that does not pass leaves its text shown, unlinked.
_LINK_PARAMS = re.compile(rb"(?:[A-Za-z0-9_.-]{1,32}=[\x21-\x39\x3c-\x7e]*"
                          rb"(?::[A-Za-z0-9_.-]{1,32}=[\x21-\x39\x3c-\x7e]*)*)?")
_WEB_LINK = re.compile(rb"https?://([\x21\x22\x24-\x2e\x30-\x3e\x40-\x7e]+)(?:[/?#][\x21-\x7e]*)?", re.IGNORECASE)
# The whole OSC of a link's start or end that may pass, read in one match (the common case).
_LINK_OSC = re.compile(rb"\d{1,6};" + _LINK_PARAMS.pattern + rb";(?:" + _WEB_LINK.pattern + rb")?", re.IGNORECASE)
_LINK_SCHEME = re.compile(rb"([A-Za-z][A-Za-z0-9+.-]{0,31}):")
# Claude Code links the file paths it prints to ``file://`` URIs: inside a bottle they are the
# container's paths, and on the operator's machine a click would open whatever has that name
# there. Held, but not named: it is what the agent prints every turn.
QUIET_FILE_LINK = "local file link"
DISGUISED_LINK = "disguised web link (OSC 8)"
_LINK_END = b"\x1b]8;;\x1b\\"
# A clipboard write: the selections (c, p, q, s, 0-7), then base64 of the text (empty clears it).
# Never a query (``?``): the terminal would answer with the clipboard's content, to the agent.
_OSC_CLIPBOARD_WRITE = re.compile(rb"52;[cpqs0-7]{0,8};[A-Za-z0-9+/]*={0,2}")
_OSC_KINDS = {
    52: "clipboard access (OSC 52)",
    1337: "iTerm2 command (OSC 1337)",
    5113: "kitty file transfer (OSC 5113)",
    50: "font change (OSC 50)",
    7: "working directory (OSC 7)",
    9: "terminal command (OSC 9)",
    99: "notification (OSC 99)",
    777: "terminal command (OSC 777)",
}
_STRING_KINDS = {
    ord("P"): "device control string (DCS)",
    ord("X"): "start of string (SOS)",
    ord("^"): "privacy message (PM)",
    ord("_"): "application command (APC)",
}
TMUX_PASSTHROUGH = "tmux passthrough (DCS)"
C1_CONTROL = "8-bit control (C1)"
ENQ_KIND = "answerback request (ENQ)"
MALFORMED = "malformed escape sequence"
UNFINISHED = "unfinished escape sequence"
# C1 code points that start a string (DCS, SOS, OSC, PM, APC) or a CSI.
_C1_STRINGS = frozenset({0x90, 0x98, 0x9D, 0x9E, 0x9F})
_C1_OSC = 0x9D
_C1_CSI = 0x9B

# Window operations (CSI Ps t) that only report sizes or push/pop the title; the rest move,
# resize or iconify the window or report the title, which answers with text the agent chose.
_WINDOW_OPS_ALLOWED = frozenset({14, 16, 18, 19, 22, 23})

# DEC private modes a TUI may leave set (off by default) or reset (on by default), each put
# back by finish(). The alternate screens (47, 1047, 1049) are tracked apart.
_DEC_DEFAULT_OFF = frozenset({1, 5, 6, 9, 66, 1000, 1001, 1002, 1003, 1004, 1005, 1006, 1015, 1016,
                              2004, 2026})
_DEC_DEFAULT_ON = frozenset({7, 25})
_ALT_SCREENS = frozenset({47, 1047, 1049})
# ANSI modes: keyboard lock (2), insert (4), newline (20) are off by default; send/receive (12,
# local echo off) is on.
_ANSI_DEFAULT_OFF = frozenset({2, 4, 20})
_ANSI_DEFAULT_ON = frozenset({12})


# Kinds counted apart in ``held``: some are named by their number (``other OSC 1234``), and an
# agent can print a million numbers; past this many, a new kind is counted as OTHER_KINDS (or as
# a quiet query), so neither the host's memory nor the operator's line grows with them.
MAX_HELD_KINDS = 32
OTHER_KINDS = "other kinds"


def is_named(kind: str) -> bool:
    """Whether a held-back kind is named to the operator (``summary``); bare queries of unknown
    commands and agents' status reports are held quietly."""
    return not kind.startswith((QUIET_QUERY, QUIET_STATUS, QUIET_FILE_LINK))


def osc_kind(payload: bytes, *, clipboard_write: bool = False) -> str | None:
    """The held-back kind of a complete OSC with this payload (between ``ESC ]`` and its
    terminator), or None when it may pass; ``clipboard_write``: a clipboard write passes (the
    bottle lets the agent write the operator's clipboard), a clipboard query never does."""
    if clipboard_write and _OSC_CLIPBOARD_WRITE.fullmatch(payload):
        return None
    number = _osc_number(payload)
    if number is None:
        return "other OSC"
    if number == 9:
        rest = payload[payload.index(b";") + 1:] if b";" in payload else b""
        # The progress report, or a desktop notification's text (Codex, Claude Code in iTerm2);
        # not ConEmu's other numbered commands (9;7 runs a program, 9;9 sets the directory).
        if not _OSC_PROGRESS.fullmatch(rest) and (not rest or _OSC_NUMBERED.match(rest)):
            return _OSC_KINDS[9]
    elif number == 777:
        if not payload.startswith(b"777;notify;"):  # a notification (Ghostty, foot, rxvt), only
            return _OSC_KINDS[777]
    elif number not in _OSC_ALLOWED:
        if number not in _OSC_KINDS and _OSC_BARE_QUERY.fullmatch(payload):
            return f"{QUIET_QUERY} (OSC {number})"
        if _OSC_QUIET_STATUS.fullmatch(payload):
            return f"{QUIET_STATUS} (OSC {number})"
        return _held_osc_kind(number)
    if number == 8:  # printable ASCII only: no need for the checks below
        return _link_kind(payload)
    if _OSC_CONTROL.search(payload) or not _utf8(payload):
        return f"malformed OSC {number}"
    return None


def _link_kind(payload: bytes) -> str | None:
    """The held-back kind of a hyperlink (``8 ; params ; URI``), or None when it may pass: the
    end of a link (no URI), or a link to a web address (see ``_WEB_LINK``)."""
    link = _LINK_OSC.fullmatch(payload)
    if link:
        host = link.group(1)
        return DISGUISED_LINK if host is not None and (b"@" in host or b"\\" in host) else None
    fields = payload.split(b";", 2)
    if len(fields) < 3 or not _LINK_PARAMS.fullmatch(fields[1]):
        return "malformed OSC 8"
    scheme = _LINK_SCHEME.match(fields[2])
    if scheme is None:
        return "malformed OSC 8"
    name = scheme.group(1).lower()
    if name == b"file":
        return f"{QUIET_FILE_LINK} (OSC 8)"
    if name in (b"http", b"https"):
        return DISGUISED_LINK  # beyond printable ASCII, or no host
    return f"hyperlink to {name.decode('ascii')}: (OSC 8)"


def _osc_number(payload: bytes) -> int | None:
    match = _OSC_NUMBER.match(payload)
    return int(match.group(1)) if match else None


def _held_osc_kind(number: int) -> str:
    return _OSC_KINDS.get(number, f"other OSC {number}")


def _osc_cut_kind(payload: bytes, label: str) -> str:
    """The kind to count for an OSC held back before its end was seen (too long, cut off):
    a held command keeps its own name, an allowed one is named ``label``."""
    number = _osc_number(payload)
    if number is None:
        return "other OSC"
    if number not in _OSC_ALLOWED and not (number == 9 and b";4" in payload[:8]):
        return _held_osc_kind(number)
    return f"{label} OSC {number}"


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def csi_kind(params: bytes, intermediates: bytes, final: int) -> str | None:
    """The held-back kind of a complete CSI, or None when it may pass."""
    if final == ord("t"):
        return _window_op_kind(params, intermediates)
    if final == ord("y") and intermediates == b"*":
        return "screen checksum request (DECRQCRA)"
    if final == ord("i"):
        return "printer control (CSI i)"
    if final == ord("p") and intermediates == b'"':
        return "conformance level change (DECSCL)"
    return None


def _window_op_kind(params: bytes, intermediates: bytes) -> str | None:
    match = _WINDOW_OP.fullmatch(params) if not intermediates else None
    if match is None:
        return "window operation (CSI t)"
    op = int(match.group(1))
    if op in _WINDOW_OPS_ALLOWED:
        return None
    if op in (20, 21):
        return f"title report (CSI {op} t)"
    return f"window operation (CSI {op} t)"


def esc_kind(intermediates: bytes, final: int) -> str | None:
    """The held-back kind of an ESC sequence with intermediates, or None when it may pass."""
    if intermediates.startswith(b"%"):
        # Leaving UTF-8 (ESC % @) would make the terminal read UTF-8 continuation bytes
        # 0x80-0x9F in passed text as 8-bit controls.
        return "character set mode switch (ESC %)"
    if b" " in intermediates and (intermediates, final) != (b" ", ord("F")):
        # A terminal may read a repeated space as one (``ESC SP SP G`` as S8C1T, 8-bit replies).
        return "conformance level change (ESC SP)"
    return None


def _numbers(params: bytes) -> list[int]:
    return [int(n) for n in _NUMBERS.findall(params)]


class _Modes:
    """The terminal modes the agent changed, from what passed, and the bytes that undo them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Back to the terminal's defaults: nothing to put back."""
        self.dec_set: set[int] = set()  # default-off DEC modes now on
        self.dec_reset: set[int] = set()  # default-on DEC modes now off
        self.ansi_set: set[int] = set()
        self.ansi_reset: set[int] = set()
        self.alt_screen: int | None = None
        # Kitty keeps a keyboard-flags stack per screen: pushes on the main (False) and
        # alternate (True) screen.
        self.kitty_pushes = {False: 0, True: 0}
        self.kitty_flags_set = False  # CSI = flags u on an empty stack
        self.modify_other_keys = False
        self.keypad = False
        self.shifted = False  # SO, LS2 or LS3 in effect
        self.g0_changed = False  # G0 designated to something other than ASCII
        self.sgr = False
        self.margins = False
        self.cursor_style = False
        self.tab_stops = False
        self.colours: set[int] = set()  # OSC numbers that reset colours the agent set
        # A hyperlink left open would make the host shell's own output after the agent a link
        # to the agent's address.
        self.hyperlink = False
        self.locator = False

    def csi(self, params: bytes, intermediates: bytes, final: int) -> None:
        """Note what a CSI that passed changes."""
        if intermediates:
            if intermediates == b" " and final == ord("q"):
                self.cursor_style = params not in (b"", b"0")
            elif intermediates == b"'" and final == ord("z"):  # DEC locator reports (DECELR)
                self.locator = params.lstrip(b"0")[:1] not in (b"", b";")
            return
        handler = _CSI_TRACKERS.get(final)
        if handler is not None:
            handler(self, params)

    def _modes(self, params: bytes, on: bool) -> None:
        if params.startswith(b"?"):
            for mode in _numbers(params):
                self._dec_mode(mode, on)
        elif params[:1].isdigit() or not params:
            for mode in _numbers(params):
                self._ansi_mode(mode, on)

    def set_mode(self, params: bytes) -> None:
        self._modes(params, True)

    def reset_mode(self, params: bytes) -> None:
        self._modes(params, False)

    def set_dec(self, mode: int, on: bool) -> None:
        self._dec_mode(mode, on)

    def _dec_mode(self, mode: int, on: bool) -> None:
        if mode in _ALT_SCREENS:
            self.alt_screen = mode if on else None
        elif mode in _DEC_DEFAULT_OFF:
            (self.dec_set.add if on else self.dec_set.discard)(mode)
        elif mode in _DEC_DEFAULT_ON:
            (self.dec_reset.discard if on else self.dec_reset.add)(mode)

    def _ansi_mode(self, mode: int, on: bool) -> None:
        if mode in _ANSI_DEFAULT_OFF:
            (self.ansi_set.add if on else self.ansi_set.discard)(mode)
        elif mode in _ANSI_DEFAULT_ON:
            (self.ansi_reset.discard if on else self.ansi_reset.add)(mode)

    def kitty_keyboard(self, params: bytes) -> None:
        screen = self.alt_screen is not None
        numbers = _numbers(params)
        if params.startswith(b">"):
            self.kitty_pushes[screen] += 1
        elif params.startswith(b"<"):
            count = numbers[0] if numbers else 1
            self.kitty_pushes[screen] = max(0, self.kitty_pushes[screen] - max(count, 1))
        elif params.startswith(b"=") and self.kitty_pushes[screen] == 0:
            flags = numbers[0] if numbers else 0
            how = numbers[1] if len(numbers) > 1 else 1
            if how == 1:
                self.kitty_flags_set = flags != 0
            elif how == 2 and flags:
                self.kitty_flags_set = True

    def sgr_or_key_modifiers(self, params: bytes) -> None:
        if params.startswith(b">"):
            numbers = _numbers(params)
            if numbers[:1] == [4]:
                self.modify_other_keys = len(numbers) > 1 and numbers[1] != 0
        elif not params[:1] or params[:1] in b"0123456789;:":
            self.sgr_params(params)

    def sgr_params(self, params: bytes) -> None:
        # Only a full reset counts as clean: an SGR that happens to undo everything (39, 22...)
        # still gets a reset at the end, which shows nothing and spares modelling SGR.
        self.sgr = not _SGR_RESET.fullmatch(params)

    def scroll_margins(self, params: bytes) -> None:
        if not params[:1] or params[:1].isdigit() or params[:1] == b";":
            self.margins = params != b""

    def tab_clear(self, params: bytes) -> None:
        if not params[:1] or params[:1].isdigit():
            self.tab_stops = True

    def osc(self, payload: bytes) -> None:
        """Note the colours an OSC that passed sets (a query, ``?``, sets nothing)."""
        fields = payload.split(b";")
        number = int(fields[0])
        if number in (4, 5):
            specs = fields[2::2]  # OSC 4 ; index ; spec ; index ; spec ...
            if any(spec != b"?" for spec in specs):
                self.colours.add(100 + number)
        elif 10 <= number <= 19:
            # OSC 10 ; fg ; bg ; ... sets the dynamic colours from ``number`` on, one per field
            for offset, spec in enumerate(fields[1:]):
                if spec != b"?" and number + offset <= 19:
                    self.colours.add(100 + number + offset)
        elif (number in (104, 105) and len(fields) == 1) or 110 <= number <= 119:
            self.colours.discard(number)
        elif number == 8:
            self.hyperlink = len(fields) > 3 or fields[2:] not in ([], [b""])  # a URI: a link starts

    def esc(self, intermediates: bytes, final: int) -> None:
        """Note what an ESC sequence that passed changes."""
        if intermediates == b"(":
            self.g0_changed = final != ord("B")
        elif not intermediates:
            if final in (ord("n"), ord("o")):
                self.shifted = True
            elif final == ord("="):
                self.keypad = True
            elif final == ord(">"):
                self.keypad = False
            elif final == ord("H"):
                self.tab_stops = True
            elif final == ord("c"):
                self.reset()  # a full reset (RIS) puts every mode back

    def restore(self) -> bytes:
        """The bytes that put back every mode the agent left changed, in the reverse of the
        order a TUI sets them up: synchronized output off first (so the rest shows), the input
        modes switched off while still on the alternate screen, then the alternate screen left,
        then the main screen's keyboard stack and display state."""
        out = bytearray()
        if 2026 in self.dec_set:
            out += b"\x1b[?2026l"
        if self.alt_screen is not None:
            out += _kitty_pop(self.kitty_pushes[True])  # kitty keeps a stack per screen
        out += self._input_modes()
        if self.alt_screen is not None:
            out += b"\x1b[?%dl" % self.alt_screen
        out += _kitty_pop(self.kitty_pushes[False])
        if self.kitty_flags_set:
            out += b"\x1b[=0;1u"
        if self.modify_other_keys:
            out += b"\x1b[>4;0m"
        out += self._display_modes()
        self.reset()
        return bytes(out)

    def _input_modes(self) -> bytes:
        """Mouse, focus, paste, cursor keys and keypad, and the ANSI modes."""
        out = bytearray()
        for mode in sorted(self.dec_set - {2026}):
            out += b"\x1b[?%dl" % mode
        for mode in sorted(self.ansi_set):
            out += b"\x1b[%dl" % mode
        for mode in sorted(self.ansi_reset):
            out += b"\x1b[%dh" % mode
        if self.locator:
            out += b"\x1b[0'z"
        if self.keypad:
            out += b"\x1b>"
        return bytes(out)

    def _display_modes(self) -> bytes:
        """Margins, tab stops, autowrap, the cursor, the charset, SGR and colours."""
        out = bytearray()
        if self.margins:
            out += b"\x1b7\x1b[r\x1b8"  # DECSTBM homes the cursor: keep it where it is
        if self.tab_stops:
            out += b"\x1b[?5W"
        for mode in sorted(self.dec_reset):
            out += b"\x1b[?%dh" % mode
        if self.cursor_style:
            out += b"\x1b[0 q"
        if self.shifted:
            out += b"\x0f"
        if self.g0_changed:
            out += b"\x1b(B"
        if self.hyperlink:
            out += _LINK_END
        if self.sgr:
            out += b"\x1b[0m"
        for reset in sorted(self.colours):
            out += b"\x1b]%d\x1b\\" % reset
        return bytes(out)


def _kitty_pop(count: int) -> bytes:
    return b"\x1b[<%du" % count if count else b""


_CSI_TRACKERS = {
    ord("h"): _Modes.set_mode,
    ord("l"): _Modes.reset_mode,
    ord("u"): _Modes.kitty_keyboard,
    ord("m"): _Modes.sgr_or_key_modifiers,
    ord("r"): _Modes.scroll_margins,
    ord("g"): _Modes.tab_clear,
}


class _String:
    """An OSC, DCS, SOS, PM or APC being read. ``kind`` is None while it is an OSC that may
    still pass (its payload kept in ``payload``); otherwise it is held back and only a short
    prefix is kept (a DCS's, to tell tmux passthrough apart)."""

    def __init__(self, intro: bytes, kind: str | None, bel_ends: bool, clipboard_limit: int = 0) -> None:
        self.intro = intro
        self.kind = kind
        self.bel_ends = bel_ends
        # Longer than MAX_OSC: the limit of a clipboard write that may pass (0: none may).
        self.clipboard_limit = clipboard_limit
        # tmux passthrough doubles each ESC inside a DCS: ESC ESC is read as part of the body,
        # so the whole passthrough is held back as one.
        self.doubled_esc = intro[-1:] in (b"P", b"\x90")
        self.payload = bytearray()

    def add(self, data: bytes) -> None:
        if self.kind is None:
            limit = MAX_OSC
            if self.clipboard_limit and (bytes(self.payload[:3]) + data[:3])[:3] == b"52;":
                limit = self.clipboard_limit
            if len(self.payload) + len(data) > limit:
                self.payload += data[:limit - len(self.payload)]
                self.kind = _osc_cut_kind(bytes(self.payload), "oversized")
                self.payload = bytearray()
            else:
                self.payload += data
        elif len(self.payload) < 8:
            self.payload += data[:8 - len(self.payload)]

    def held_kind(self, label: str) -> str:
        """The kind to count when it ends without passing; ``label`` names why an OSC that
        could have passed did not."""
        if self.kind is None:
            return _osc_cut_kind(bytes(self.payload), label)
        if self.kind == _STRING_KINDS[ord("P")] and self.payload.startswith(b"tmux;"):
            return TMUX_PASSTHROUGH
        return self.kind


class ScreenFilter:
    """Filters what an agent prints before it reaches the operator's terminal.

    ``feed`` returns the bytes safe to write now and keeps an unfinished sequence (or a UTF-8
    character cut by the chunk boundary) for the next call, so the output does not depend on
    how the stream is split. ``finish`` ends the stream. ``held`` counts what was held back;
    ``on_held``, when given, is told the kind of each sequence as it is held back (it runs on
    the caller's thread, inside ``feed``: it must be quick and must not block)."""

    def __init__(self, on_held: Callable[[str], None] | None = None, *, clipboard_write: bool = False) -> None:
        self.held: dict[str, int] = {}
        self.on_held = on_held
        # The bottle lets the agent write the operator's clipboard (OSC 52 writes pass).
        self.clipboard_write = clipboard_write
        self._pending = b""  # the start of a sequence or character, re-read with the next data
        self._string: _String | None = None
        self._modes = _Modes()

    def feed(self, data: bytes) -> bytes:
        """The bytes of ``data`` safe to write to the terminal now."""
        buf = self._pending + data if self._pending else data
        self._pending = b""
        out = bytearray()
        i, n = 0, len(buf)
        while i < n:
            if self._string is not None:
                i = self._string_step(buf, i, out)
            else:
                i = self._ground(buf, i, out)
        return bytes(out)

    def finish(self) -> bytes:
        """At the end of the agent's output: drops an unfinished sequence and returns the bytes
        that put back the modes the agent left changed (nothing when it changed none)."""
        out = bytearray()
        if self._string is not None:
            self._count(self._string.held_kind("unterminated"))
            self._string = None
        elif self._pending:
            if self._pending[0] == _ESC or self._pending.startswith(b"\xc2\x9b"):
                self._count(UNFINISHED)
            else:
                out += _REPLACEMENT  # a UTF-8 character cut short, as a terminal shows it
        self._pending = b""
        out += self._modes.restore()
        return bytes(out)

    def summary(self) -> str | None:
        """One line for the operator about what was held back, or None when nothing was (bare
        queries of unknown commands are counted in ``held`` but not named)."""
        named = {kind: count for kind, count in self.held.items() if is_named(kind)}
        total = sum(named.values())
        if not total:
            return None
        noun = "sequence" if total == 1 else "sequences"
        kinds = ", ".join(f"{kind} x{count}" for kind, count in named.items())
        return f"held back {total} terminal {noun} the agent printed: {kinds}"

    def _count(self, kind: str) -> None:
        if kind not in self.held and len(self.held) >= MAX_HELD_KINDS:
            kind = OTHER_KINDS if is_named(kind) else QUIET_QUERY
        self.held[kind] = self.held.get(kind, 0) + 1
        if self.on_held is not None:
            self.on_held(kind)

    def _ground(self, buf: bytes, i: int, out: bytearray) -> int:
        """Reads from the ground state until a string starts or the data ends; returns where
        it stopped."""
        n = len(buf)
        while i < n:
            match = _PLAIN.match(buf, i)
            if match:
                end = match.end()
                run = buf[i:end]
                out += run
                if b"\x1b" in run:
                    self._track_run(run)
                i = end
                if i >= n:
                    break
            byte = buf[i]
            if byte == _ESC:
                i = self._escape(buf, i, out)
            elif byte == _ENQ:
                self._count(ENQ_KIND)
                i += 1
            elif byte in (_SO, _SI):
                out.append(byte)
                self._modes.shifted = byte == _SO
                i += 1
            else:
                i = self._high_byte(buf, i, out)
            if self._string is not None:
                return i
        return i

    def _track_run(self, run: bytes) -> None:
        """Notes the last SGR and synchronized output switch of a plain run (each overrides the
        ones before it as far as finish() is concerned)."""
        sync = run.rfind(_SYNC)
        if sync >= 0:
            self._modes.set_dec(2026, run[sync + len(_SYNC)] == ord("h"))
        end = len(run)
        while True:
            start = run.rfind(b"\x1b[", 0, end)
            if start < 0:
                return
            match = _PLAIN_SGR.match(run, start)
            if match:
                self._modes.sgr_params(match.group(1))
                return
            end = start

    def _defer(self, buf: bytes, i: int) -> int:
        """Keeps ``buf[i:]`` for the next call: it may still become something else."""
        self._pending = buf[i:]
        return len(buf)

    def _high_byte(self, buf: bytes, i: int, out: bytearray) -> int:
        """A byte from 0x80 up that does not start a valid character other than a C1 one."""
        n = len(buf)
        if buf[i] == 0xC2 and i + 1 < n and 0x80 <= buf[i + 1] <= 0x9F:
            return self._c1(buf, i, out)
        if _UTF8_PARTIAL.fullmatch(buf, i):
            return self._defer(buf, i)
        stray = _NEVER_LEAD.match(buf, i)
        end = stray.end() if stray else i + 1
        out += _REPLACEMENT * (end - i)
        return end

    def _c1(self, buf: bytes, i: int, out: bytearray) -> int:
        """A C1 code point: held back, with the body of the CSI or string it starts."""
        code = buf[i + 1]
        if code == _C1_CSI:
            return self._csi(buf, i, i + 2, out, eight_bit=True)
        if code in _C1_STRINGS:
            self._string = _String(buf[i:i + 2], C1_CONTROL, bel_ends=code == _C1_OSC)
        else:
            self._count(C1_CONTROL)
        return i + 2

    def _escape(self, buf: bytes, i: int, out: bytearray) -> int:
        """An ESC at ``buf[i]``; returns where reading goes on."""
        n = len(buf)
        if i + 1 >= n:
            return self._defer(buf, i)
        byte = buf[i + 1]
        if byte == ord("["):
            return self._csi(buf, i, i + 2, out, eight_bit=False)
        if byte == ord("]"):
            self._string = _String(b"\x1b]", None, bel_ends=True,
                                   clipboard_limit=MAX_CLIPBOARD_OSC if self.clipboard_write else 0)
            return i + 2
        if byte in _STRING_KINDS:
            self._string = _String(buf[i:i + 2], _STRING_KINDS[byte], bel_ends=False)
            return i + 2
        if 0x20 <= byte <= 0x2F:
            return self._esc_intermediates(buf, i, out)
        if 0x30 <= byte <= 0x7E:
            out += buf[i:i + 2]
            self._modes.esc(b"", byte)
            return i + 2
        return self._malformed(buf, i + 1)

    def _esc_intermediates(self, buf: bytes, i: int, out: bytearray) -> int:
        match = _ESC_INTERMEDIATES.match(buf, i + 1)
        j = match.end()
        if j >= len(buf):
            return self._defer(buf, i)
        final = buf[j]
        if not 0x30 <= final <= 0x7E:
            return self._malformed(buf, j)
        intermediates = match.group()
        kind = esc_kind(intermediates, final)
        if kind is None:
            out += buf[i:j + 1]
            self._modes.esc(intermediates, final)
        else:
            self._count(kind)
        return j + 1

    def _csi(self, buf: bytes, start: int, body: int, out: bytearray, *, eight_bit: bool) -> int:
        """A CSI whose introducer starts at ``start`` and whose parameters start at ``body``."""
        match = _CSI_BODY.match(buf, body)
        j = match.end()
        if j >= len(buf):
            return self._defer(buf, start)
        final = buf[j]
        if not 0x40 <= final <= 0x7E:
            if eight_bit:
                self._count(C1_CONTROL)
                return self._skip_cancel(buf, j)
            return self._malformed(buf, j)
        if eight_bit:
            self._count(C1_CONTROL)
            return j + 1
        params, intermediates = match.group(1), match.group(2)
        kind = csi_kind(params, intermediates, final)
        if kind is None:
            out += buf[start:j + 1]
            self._modes.csi(params, intermediates, final)
        else:
            self._count(kind)
        return j + 1

    def _malformed(self, buf: bytes, j: int) -> int:
        """Drops a sequence that went wrong at ``buf[j]``; ``buf[j]`` is read again from the
        ground state, as a terminal that never saw the sequence reads it."""
        self._count(MALFORMED)
        return self._skip_cancel(buf, j)

    @staticmethod
    def _skip_cancel(buf: bytes, j: int) -> int:
        """CAN and SUB that cancel a sequence go with it."""
        return j + 1 if buf[j] in (_CAN, _SUB) else j

    def _string_step(self, buf: bytes, i: int, out: bytearray) -> int:
        """Reads the body of the current string up to its end or the end of the data."""
        string = self._string
        assert string is not None
        n = len(buf)
        stop = (_OSC_STOP if string.bel_ends else _STRING_STOP).search(buf, i)
        end = stop.start() if stop else n
        if end > i:
            string.add(buf[i:end])
        if stop is None:
            return n
        byte = buf[end]
        if byte == _BEL:
            return self._string_end(out, b"\x07", end + 1)
        if byte in (_CAN, _SUB):
            self._count(string.held_kind("unterminated"))
            self._string = None
            return end + 1
        if end + 1 >= n:
            return self._defer(buf, end)
        if byte != _ESC:  # the 8-bit ST: no OSC ended by it passes
            self._count(string.held_kind("malformed"))
            self._string = None
            return end + 2
        if buf[end + 1] == ord("\\"):
            return self._string_end(out, b"\x1b\\", end + 2)
        if buf[end + 1] == _ESC and string.doubled_esc:
            string.add(buf[end:end + 2])
            return end + 2
        # Any other ESC cancels the string and starts a new sequence.
        self._count(string.held_kind("unterminated"))
        self._string = None
        return end

    def _string_end(self, out: bytearray, terminator: bytes, i: int) -> int:
        string = self._string
        assert string is not None
        self._string = None
        if string.kind is None:
            payload = bytes(string.payload)
            kind = osc_kind(payload, clipboard_write=self.clipboard_write)
            if kind is None:
                out += string.intro + payload + terminator
                self._modes.osc(payload)
                return i
            if self._modes.hyperlink and _osc_number(payload) == 8:
                # A link held back in the middle of one that passed: its text shows unlinked,
                # not as part of the link before it.
                out += _LINK_END
                self._modes.hyperlink = False
            self._count(kind)
        else:
            self._count(string.held_kind("unterminated"))
        return i
