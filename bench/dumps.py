"""What command-line dump tools print, written in Python: the labelled DLP corpus and the DLP
tests build their attacks and look-alikes with these (``xxd``, ``hexdump -C``, ``od``, ``base64
-w``), so both send exactly what an agent's shell would."""

from __future__ import annotations

import base64

# ``od -c``'s names for control bytes; any other byte outside printable ASCII is three octal digits.
_NAMED = {0: "\\0", 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}


def _shown(chunk: bytes) -> str:
    """A dump's text column: printable ASCII as itself, anything else as a dot."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)


def xxd(data: bytes, group: int = 2) -> str:
    """``xxd`` (``-g group``): offset, groups big-endian, the text column."""
    lines = []
    for at in range(0, len(data), 16):
        chunk = data[at : at + 16]
        groups = " ".join(chunk[i : i + group].hex() for i in range(0, len(chunk), group))
        width = 16 * 2 + 16 // group - 1
        lines.append(f"{at:08x}: {groups:<{width}}  {_shown(chunk)}")
    return "\n".join(lines) + "\n"


def hexdump_c(data: bytes) -> str:
    """``hexdump -C``: two halves of eight bytes, the text column between bars."""
    lines = []
    for at in range(0, len(data), 16):
        chunk = data[at : at + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        lines.append(f"{at:08x}  {left:<23}  {right:<23}  |{_shown(chunk)}|")
    lines.append(f"{len(data):08x}")
    return "\n".join(lines) + "\n"


def od_x(data: bytes) -> str:
    """``od -x``: octal offsets, two-byte words little-endian (an odd last byte padded)."""
    padded = data + b"\0" * (len(data) % 2)
    lines = []
    for at in range(0, len(padded), 16):
        words = " ".join(padded[i : i + 2][::-1].hex() for i in range(at, min(at + 16, len(padded)), 2))
        lines.append(f"{at:07o} {words}")
    lines.append(f"{len(data):07o}")
    return "\n".join(lines) + "\n"


def xxd_p(data: bytes) -> str:
    """``xxd -p``: plain hex, 60 columns a line."""
    text = data.hex()
    return "\n".join(text[i : i + 60] for i in range(0, len(text), 60)) + "\n"


def _cell(b: int) -> str:
    if b in _NAMED:
        return f"{_NAMED[b]:>4}"
    return f"{chr(b):>4}" if 0x20 <= b < 0x7F else f" {b:03o}"


def od_c(data: bytes) -> str:
    """``od -c``: octal offsets, each byte in a cell of four columns, the last offset alone."""
    lines = [f"{at:07o}" + "".join(_cell(b) for b in data[at : at + 16]) for at in range(0, len(data), 16)]
    return "\n".join(lines + [f"{len(data):07o}"]) + "\n"


def od_b(data: bytes) -> str:
    """``od -b``: octal offsets, each byte as three octal digits."""
    lines = [f"{at:07o} " + " ".join(f"{b:03o}" for b in data[at : at + 16]) for at in range(0, len(data), 16)]
    return "\n".join(lines + [f"{len(data):07o}"]) + "\n"


def xxd_b(data: bytes) -> str:
    """``xxd -b``: offset, six bytes a line as bits, the text column."""
    return "".join(f"{at:08x}: {' '.join(f'{b:08b}' for b in data[at : at + 6]):<53}  {_shown(data[at : at + 6])}\n"
                   for at in range(0, len(data), 6))


def wrapped_b64(data: bytes, width: int) -> str:
    """``base64 -w width``."""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + width] + "\n" for i in range(0, len(text), width))


def od_an_x(data: bytes) -> str:
    """``od -An -x``: two-byte words, little-endian, a blank before each (an odd last byte padded)."""
    padded = data + b"\0" * (len(data) % 2)
    return "".join(" " + " ".join(padded[i : i + 2][::-1].hex() for i in range(at, min(at + 16, len(padded)), 2))
                   + "\n" for at in range(0, len(padded), 16))


def od_an_tx1(data: bytes) -> str:
    """``od -An -tx1``: one byte a group, a blank before each."""
    return "".join(" " + " ".join(f"{b:02x}" for b in data[at : at + 16]) + "\n" for at in range(0, len(data), 16))


def od_an_tx4(data: bytes) -> str:
    """``od -An -tx4``: four-byte words, little-endian."""
    padded = data + b"\0" * (-len(data) % 4)
    return "".join(" " + " ".join(padded[i : i + 4][::-1].hex() for i in range(at, min(at + 16, len(padded)), 4))
                   + "\n" for at in range(0, len(padded), 16))


def hexdump_e(data: bytes) -> str:
    """``hexdump -e '16/1 "%02x " "\\n"'``: a blank after each byte, no offsets."""
    return "".join("".join(f"{b:02x} " for b in data[at : at + 16]) + "\n" for at in range(0, len(data), 16))


def od_an_c(data: bytes) -> str:
    """``od -An -c``: each byte in a cell of four columns, no offsets."""
    return "".join("".join(_cell(b) for b in data[at : at + 16]) + "\n" for at in range(0, len(data), 16))


def od_an_b(data: bytes) -> str:
    """``od -An -b``: each byte as three octal digits, a blank before each, no offsets."""
    return "".join("".join(f" {b:03o}" for b in data[at : at + 16]) + "\n" for at in range(0, len(data), 16))


def hex_line(data: bytes, blanks: int = 1, *, half: bool = False, tabs: bool = False) -> str:
    """The bytes in hex on one line, ``blanks`` blanks between them (``xxd -p -c1 | tr '\\n' ' '``);
    ``half``: two blanks after every eighth, as ``hexdump -C``'s middle column; ``tabs``: a tab
    between them (``xxd -p -c1 | paste -s``)."""
    groups = [f"{b:02x}" for b in data]
    if half:
        return "  ".join(" ".join(groups[at : at + 8]) for at in range(0, len(groups), 8))
    return ("\t" if tabs else " " * blanks).join(groups)


def powershell_join(data: bytes, hex_codes: bool = False) -> str:
    """``-join ([char]103, [char]104, ...)``: a PowerShell array of casts, joined."""
    return "-join (" + ", ".join(f"[char]{b:#x}" if hex_codes else f"[char]{b}" for b in data) + ")"


# PowerShell's ways to write one character from its code.
POWERSHELL_CHAR = {
    "cast": "[char]{}",
    "-as": "({} -as [char])",
    "ToChar": "[convert]::ToChar({})",
    "System.Convert": "[System.Convert]::ToChar({})",
    "ConvertFromUtf32": "[char]::ConvertFromUtf32({})",
    "(cast)": "([char]{})",
}


def powershell_chars(data: bytes, form: str, separators: tuple[str, ...] = (" + ",), *, hex_codes: bool = False) -> str:
    """``data`` as PowerShell calls of one ``form`` (``POWERSHELL_CHAR``), one a byte, the
    ``separators`` taken in turn between them (" + ", ", ", ",\n    ", "\n    ", "; ")."""
    calls = [POWERSHELL_CHAR[form].format(f"{b:#x}" if hex_codes else b) for b in data]
    return calls[0] + "".join(separators[at % len(separators)] + call for at, call in enumerate(calls[1:]))


def hexdump_c_cut(data: bytes) -> str:
    """``hexdump -C | cut -c11-58``: ``hexdump -C``'s hex columns alone, offsets and text cut away."""
    return "".join(line[10:58] + "\n" for line in hexdump_c(data).splitlines())
