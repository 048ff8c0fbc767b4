"""Secret detection for pushes: run the detectors over what a push adds, report where, never what.

``Detector`` is the one seam to the DLP engine: anything with ``hits(text)`` returning ``Hit``s
(detector name, line, and optionally the span, used only to blank the secret out of a file name
before it is shown). ``default_detector`` adapts the shared engine (``bot_bottle.sidecar.dlp``,
the same one the egress proxy uses, knowing the bottle's own secrets). There is no fallback to
weaker patterns: the gate cannot run without the engine at all (this module, ``split``, ``patch``
and ``mirror`` import it, so a copy of the package missing it fails as the daemon starts, and
``__main__`` says why). The sidecar image holds the whole ``bot_bottle/sidecar`` folder, and the
engine is standard library only.

Two searches look past single pieces (``split``): the bottle's own values cut into parts
anywhere in the push (a ``known-secret:<name> (split)`` finding at each part's place), and
base64 wrapped into quoted or indented lines, read joined. Each piece of code is also read with
its unquoted shell parts joined (``joined``).

A ``GitFinding`` names the commit, the place (file and line, commit message line, file name,
author, commit or tag header, tag message; a ref name is withheld) and the detector. Its text is
built only from those fields: it cannot carry the secret, whatever a detector returned.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot_bottle.sidecar.git_gate import joined, split
from bot_bottle.sidecar.git_gate.piece import Piece

MIN_KNOWN_SECRET = 8  # shorter values would match ordinary text
WINDOW_OVERLAP = 64 * 1024  # shared by neighbouring windows of a long text: a secret on the seam is seen whole
REF_WITHHELD = "<ref name withheld: it carries a finding>"
NAME_WITHHELD = "(name withheld: it matches a detector)"
# How the reason of a limit on the whole push rather than one file ends (``embedded``): the
# report then says to push in parts.
PUSH_LIMIT_END = "in one push"


@dataclass(frozen=True)
class Hit:
    detector: str
    line: int = 1  # 1-based, within the scanned text
    span: tuple[int, int] | None = None  # character offsets within the scanned text


class Detector(Protocol):
    def hits(self, text: str) -> Iterable[Hit]: ...


def own_secrets(detector: Detector) -> tuple[tuple[str, str], ...]:
    """``(name, value)`` of the bottle's own secrets ``detector`` looks for, for the search of
    their parts (``split``); none for a detector that does not tell. Never shown or logged."""
    own = getattr(detector, "own_secrets", None)
    return tuple(own()) if callable(own) else ()


# A file or member name shown as it is only when it is plainly a name; any other is quoted (JSON),
# so a name the agent chose cannot pass for more of the gate's own line ("x line 3: detector ...").
# The gate's own stand-ins for a name stay as they are.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9._/@+~\[\]-]+")
UNUSUAL_NAME = "(unusual name)"


def _name(name: str | None) -> str:
    if name is None or name in (NAME_WITHHELD, UNUSUAL_NAME) or _PLAIN_NAME.fullmatch(name):
        return str(name)
    return json.dumps(name, ensure_ascii=False)


@dataclass(frozen=True)
class GitFinding:
    commit: str
    kind: str  # a Piece kind: lines, binary, message, identity, header, path, tag, tagger, tag-header, ref, ...
    detector: str
    path: str | None = None  # already safe to show (a file path or header name, blanked or withheld)
    line: int | None = None
    member: str | None = None  # an archive member's name, already safe to show

    def place(self) -> str:
        path, member = _name(self.path), _name(self.member)
        if self.kind == "archive":
            if self.member is None:
                at = "" if self.line is None else f" line {self.line}"
                return f"decompressed content of file {path}{at}"
            return f"file {path}, archive member {member}"
        where = {
            "lines": f"file {path} line {self.line}",
            "binary": f"binary file {path}",
            "message": f"commit message line {self.line}",
            "identity": "author/committer name or email",
            "path": f"file name {path}",
            "header": f"commit header {path}",
            "tag": f"tag message line {self.line}",
            "tagger": "tagger name or email",
            "tag-header": f"tag header {path}",
            "ref": REF_WITHHELD,
            "archive-name": f"name of a member of archive {path}",
            "archive-limit": f"compressed file or archive {path} (not read whole)",
            "message-stream": "decompressed content of the commit message",
            "tag-stream": "decompressed content of the tag message",
            "message-limit": f"compressed data in the {self.path} (not read whole)",
            "log-limit": "the diff of the push (not read whole)",
            "finding-limit": f"the rest of the push (not read: more than {MAX_FINDINGS} findings)",
        }[self.kind]
        return where

    def describe(self) -> str:
        if self.kind == "ref":
            return f"ref update to {self.commit[:12]}: {self.place()}: detector {self.detector}"
        tagged = self.kind in ("tag", "tagger", "tag-header", "tag-stream")
        what = "tag" if tagged or (self.kind == "message-limit" and self.path == "tag message") else "commit"
        return f"{what} {self.commit[:12]}: {self.place()}: detector {self.detector}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "commit": self.commit, "kind": self.kind, "path": self.path, "line": self.line, "detector": self.detector,
        }
        if self.member is not None:
            out["member"] = self.member
        return out


# ------------------------------------------------------------------------------ detectors


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern[str]


# A small set of unmistakable token formats (a false positive blocks a push), for a caller that
# passes ``PatternDetector`` itself (tests); the gate's own scan is always the DLP engine's.
BUILTIN_PATTERNS: tuple[Pattern, ...] = tuple(
    Pattern(name, re.compile(rx))
    for name, rx in (
        ("private-key", r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----"),
        ("aws-access-key-id", r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}\b"),
        ("aws-secret-access-key", r"(?i)\baws_?secret_?access_?key\b\s*[:=]\s*[\"']?[A-Za-z0-9/+]{40}\b"),
        ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{36,251}\b"),
        ("github-fine-grained-token", r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b"),
        ("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
        ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
        ("stripe-secret-key", r"\b[rs]k_live_[0-9A-Za-z]{20,}\b"),
        ("anthropic-api-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
        ("openai-api-key", r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{40,}"),
        ("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    )
)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


class PatternDetector:
    """Regex token formats plus exact known values (and their base64 form). It knows no glued,
    encoded or case-changed token: the gate never scans with it (``default_detector``)."""

    name = "builtin-patterns"

    def __init__(self, patterns: Iterable[Pattern] = BUILTIN_PATTERNS, known: Mapping[str, str] | None = None) -> None:
        self.patterns = tuple(patterns)
        self.known: list[tuple[str, str]] = []
        self._own: list[tuple[str, str]] = []
        for name, value in (known or {}).items():
            if len(value) < MIN_KNOWN_SECRET:
                continue
            self._own.append((name, value))
            self.known.append((f"known-secret:{name}", value))
            self.known.append((f"known-secret:{name} (base64)", base64.b64encode(value.encode()).decode().rstrip("=")))

    def own_secrets(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._own)

    def hits(self, text: str) -> Iterator[Hit]:
        for pattern in self.patterns:
            for match in pattern.regex.finditer(text):
                yield Hit(pattern.name, _line_of(text, match.start()), match.span())
        for name, value in self.known:
            start = text.find(value)
            while start != -1:
                yield Hit(name, _line_of(text, start), (start, start + len(value)))
                start = text.find(value, start + 1)


class EngineDetector:
    """Adapts the shared DLP engine's ``Scanner`` to ``Detector``.

    Pushes are scanned *deep* (base64, hex and percent-encoded runs decoded too): a commit is an
    exfiltration channel, and an encoded token must not pass where the plain one would not.
    Only the finding's detector, secret name, encoding and offsets are read.
    """

    name = "dlp-engine"

    def __init__(self, scanner: Any) -> None:
        self.scanner = scanner

    def own_secrets(self) -> tuple[tuple[str, str], ...]:
        """The values the engine knows (as it searches them: trimmed, in each Unicode form)."""
        known = getattr(self.scanner, "known", None)
        options = getattr(self.scanner, "options", None)
        if known is None or not getattr(options, "known_secrets", True):
            return ()
        return tuple(known.values())

    def hits(self, text: str) -> Iterator[Hit]:
        # The engine decodes only texts up to its deep limit; a longer text (a big block of added
        # lines) is scanned in overlapping windows of at most that size, so decoding still applies.
        options = getattr(self.scanner, "options", None)
        limit = getattr(options, "deep_limit", None)
        if not isinstance(limit, int) or len(text) <= limit:
            yield from self._hits(text, 0, text)
            return
        seen: set[tuple[str, int, int | None]] = set()
        for start in windows(len(text), limit, WINDOW_OVERLAP):
            for hit in self._hits(text[start:start + limit], start, text):
                key = (hit.detector, hit.line, hit.span[0] if hit.span else None)
                if key not in seen:
                    seen.add(key)
                    yield hit

    def _hits(self, window: str, offset: int, text: str) -> Iterator[Hit]:
        for finding in self.scanner.scan_text(window, "git", deep=True):
            start, end = finding.start, finding.end
            if isinstance(start, int) and isinstance(end, int):
                start, end = start + offset, end + offset
            label = str(finding.detector)
            secret_name = getattr(finding, "secret_name", None)
            if secret_name:
                label += f":{secret_name}"
            encoding = getattr(finding, "encoding", None)
            if encoding:
                label += f" ({encoding})"
            span = (start, end) if isinstance(start, int) and isinstance(end, int) else None
            yield Hit(label, _line_of(text, start) if span else 1, span)


def windows(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``size`` covering ``length`` characters, each sharing
    ``overlap`` characters with the one before (or half a window, when ``size`` is small)."""
    step = max(size - min(overlap, size // 2), 1)
    starts = list(range(0, max(length - size, 0) + 1, step))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def default_detector(known: Mapping[str, str] | None = None) -> Detector:
    """The shared DLP engine, knowing ``known``: always, never the built-in patterns, which miss
    what the engine finds (a token glued to its neighbours, encoded, split, case-changed). Where
    the engine is missing this module does not import (see the module's words)."""
    from bot_bottle.sidecar.dlp import Scanner

    return EngineDetector(Scanner(secrets=dict(known or {})))


class SecretsUnreadable(Exception):
    """The gate's config names a secrets file the gate cannot read: it must not scan without it.
    The message names the file, never a value."""


def load_known_secrets(path: Path | None) -> dict[str, str]:
    """Named secret values the push scan looks for, from the secrets document the gate's config
    names (``{"known_secrets": {...}}``, and ``credentials`` where a document holds them).

    No file named: none. A file named but missing, unreadable or not such a document raises
    ``SecretsUnreadable``: a scan that silently knew none of the bottle's values would pass a
    push carrying one (the gate once could not read the proxy's file, and did just that).
    """
    if path is None:
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SecretsUnreadable(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise SecretsUnreadable(f"{path} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise SecretsUnreadable(f"{path} is not a JSON object")
    out: dict[str, str] = {}
    for section in ("credentials", "known_secrets"):
        values = doc.get(section) if isinstance(doc, dict) else None
        if isinstance(values, dict):
            out.update({str(k): v for k, v in values.items() if isinstance(v, str)})
    return out


# ------------------------------------------------------------------------------ scanning


# A push with more findings than this is refused without reading the rest: every finding is kept
# until the end (names are made safe then), shown and logged, and a token on every line of a
# huge diff would make millions of them.
MAX_FINDINGS = 1000


def scan(pieces: Iterable[Piece], detector: Detector) -> list[GitFinding]:
    """Findings over every piece, in order, one per (commit, place, detector).

    One pass over the pieces (a binary file comes as many chunks: they are not all held at
    once); names are made safe to show at the end, when every file name has been seen. An
    ``archive-limit`` or ``log-limit`` piece is a finding by itself (detector ``scan-limit``): what
    could not be read whole is refused, not let through.
    """
    # A file name or header name holding a secret must not be printed as it is, anywhere.
    unsafe: dict[str, str] = {}
    unsafe_members: set[tuple[str | None, str]] = set()  # (archive path, member name)
    raw: dict[GitFinding, None] = {}  # in order, each once (overlapping chunks repeat their hits)
    over: str | None = None  # the commit being read when the findings reached MAX_FINDINGS
    parts = split.SplitSearch(own_secrets(detector))
    for piece in pieces:
        if piece.kind in ("archive-limit", "log-limit", "message-limit"):
            raw.setdefault(GitFinding(piece.commit, piece.kind, f"scan-limit ({piece.text})", piece.path))
            continue
        hits = piece_hits(piece, detector)
        if piece.kind in split.SPLIT_KINDS:
            data = split.as_bytes(piece.text)
            if parts:
                parts.feed(piece.text, piece.commit, piece.kind, piece.path, piece.line, data)
            hits += wrapped_hits(piece.text, detector, data)
        if piece.kind == "path" and piece.path is not None and hits:
            unsafe[piece.path] = _blank(piece.text, hits)
        if piece.kind == "archive-name" and piece.member is not None and hits:
            unsafe_members.add((piece.path, piece.member))
        if piece.kind in ("header", "tag-header") and piece.path is not None and piece.path not in unsafe:
            if name_carries_finding(piece.path, detector):
                unsafe[piece.path] = NAME_WITHHELD
        for hit in hits:
            # What a stream inflated to has lines of its own: an ``archive`` piece's line is where
            # the stream is written in the file (base64 in an added line), when known.
            line = piece.line if piece.kind == "archive" or piece.line is None else piece.line + hit.line - 1
            finding = GitFinding(piece.commit, piece.kind, hit.detector, piece.path, line, piece.member)
            if finding not in raw and len(raw) >= MAX_FINDINGS:
                over = piece.commit
                break
            raw.setdefault(finding)
        if over is not None:
            break  # the caller stops the git that reads the log
    if over is None:
        for finding in split_findings(parts):
            if finding not in raw and len(raw) >= MAX_FINDINGS:
                over = finding.commit
                break
            raw.setdefault(finding)
    if over is not None:
        raw.setdefault(GitFinding(over, "finding-limit", "scan-limit (too many findings)"))
    findings: list[GitFinding] = []
    seen: set[tuple[object, ...]] = set()
    for finding in raw:
        if finding.kind == "ref":
            finding = GitFinding(finding.commit, "ref", finding.detector, None, None)
        elif finding.path is not None:
            member = finding.member
            if member is not None:
                member = NAME_WITHHELD if (finding.path, member) in unsafe_members else shown_member(member)
            finding = GitFinding(finding.commit, finding.kind, finding.detector, unsafe.get(finding.path, finding.path),
                                 finding.line, member)
        key = (finding.commit, finding.kind, finding.path, finding.line, _unwidened(finding.detector), finding.member)
        if key not in seen:
            seen.add(key)
            findings.append(finding)
    return findings


# What the engine adds to a detector's name for a token it read in ASCII stored wide. The gate
# also reads such runs itself (the fallback detectors know no wide text), so the same token comes
# back from both readings, once with and once without: one finding.
_WIDE_LABEL = re.compile(r" \(utf-(?:16|32)\)$")


def _unwidened(detector: str) -> str:
    return _WIDE_LABEL.sub("", detector)


# Names whose folders are also read apart: after "heads/" or a folder's name, an encoded token
# (base32, base64) is the tail of one longer run, decoded from the wrong place or not at all.
_NAME_KINDS = frozenset({"ref", "path", "archive-name"})


# Texts a script can be in: read also with the values of its unquoted shell assignments put into
# the words that join them (``joined.shell_joined``).
_CODE_KINDS = frozenset({"lines", "archive"})


def piece_hits(piece: Piece, detector: Detector) -> list[Hit]:
    """A piece's hits; a name's also with each "/" read as a space (same length: spans hold);
    and those of the shell-joined values ``joined`` reads in code (no span)."""
    hits = list(detector.hits(piece.text))
    if piece.kind in _NAME_KINDS and "/" in piece.text:
        hits += detector.hits(piece.text.replace("/", " "))
    hits += [Hit(name, line) for name, line in
             joined.readings(piece.text, detector.hits, code=piece.kind in _CODE_KINDS)]
    return hits


def name_carries_finding(name: str, detector: Detector) -> bool:
    """Whether a name (a ref, a header's) must be withheld: read as a name piece is (a token glued
    to the rest of the name too: the detectors read those)."""
    return bool(piece_hits(Piece("", "ref", name), detector))


def split_findings(parts: split.SplitSearch) -> Iterator[GitFinding]:
    """A finding at the place of each part of each own value the push spells in parts; the
    detector names the secret, never its value."""
    for name, places in parts.found():
        for place in places:
            yield GitFinding(place.commit, place.kind, f"known-secret:{name} (split)", place.path, place.line)


def wrapped_hits(text: str, detector: Detector, data: bytes | None = None) -> list[Hit]:
    """Hits in the base64 (or hex) runs ``text`` wraps into decorated lines (``split.wrapped_runs``),
    each read joined; a hit's line is the line that holds most of it (``narrowed``)."""
    hits: list[Hit] = []
    budget = [NARROW_BUDGET]
    for run in split.wrapped_runs(text, data):
        for hit in detector.hits(run.text):
            line = run.lines[0] if hit.span is None else run.line_holding(
                *narrowed(run, hit.detector, hit.span, detector, budget))
            hits.append(Hit(hit.detector, line + 1))  # no span: it is not one of the text's
    return hits


# A decoded run's span is the whole run. To tell the line a token is on, the span is cut down to
# the shortest stretch the detector still finds it in: halved while a half (with ``_MARGIN`` of
# the other, more than a token's encoding) holds it, then trimmed in ``_ALIGN`` steps from each
# end. That reads about three times the span, only for a push that is refused anyway; the
# characters read so for one text are capped (``NARROW_BUDGET``): past it a hit keeps the line it
# starts on, and a text full of tokens is not read again and again.
NARROW_BUDGET = 1 << 20
_ALIGN = 4  # base64 decodes in groups of four characters (hex in pairs: four keeps both aligned)
_MARGIN = 1024


def narrowed(run: split.WrappedRun, label: str, span: tuple[int, int], detector: Detector,
             budget: list[int]) -> tuple[int, int]:
    """The shortest stretch of ``span`` in ``run``, cut at its start and end in steps of
    ``_ALIGN`` characters, in which ``detector`` still finds ``label``: where an encoded token
    is, not the whole run it was decoded from. A span on one line is kept as it is; ``budget``
    (characters the detector may still read) is drawn from."""
    start, end = span
    if run.line_of(start) == run.line_of(max(end - 1, start)) or 4 * (end - start) > budget[0]:
        return start, start + 1

    def holds(first: int, last: int) -> bool:
        budget[0] -= last - first
        return any(hit.detector == label for hit in detector.hits(run.text[first:last]))

    if not holds(start, end):
        return start, start + 1  # found only with what is around it: the line it starts on
    while end - start > 4 * _MARGIN:
        middle = start + (end - start) // 2 // _ALIGN * _ALIGN
        if holds(start, middle + _MARGIN):
            end = middle + _MARGIN
        elif holds(middle - _MARGIN, end):
            start = middle - _MARGIN
        else:
            break  # the token is about the middle
    low, high = 0, (end - start) // _ALIGN  # start + _ALIGN * low holds the token
    while low < high:
        middle = (low + high + 1) // 2
        if holds(start + _ALIGN * middle, end):
            low = middle
        else:
            high = middle - 1
    start += _ALIGN * low
    low, high = 1, -(-(end - start) // _ALIGN)  # min(start + _ALIGN * high, end) holds it
    while low < high:
        middle = (low + high) // 2
        if holds(start, min(start + _ALIGN * middle, end)):
            high = middle
        else:
            low = middle + 1
    return start, min(start + _ALIGN * high, end)


def shown_member(name: str) -> str:
    """An archive member's name as a report shows it: only printable names of a sane length
    (a name with control characters could rewrite the agent's terminal)."""
    return name if name.isprintable() and len(name) <= 200 else UNUSUAL_NAME


def _blank(text: str, hits: list[Hit]) -> str:
    spans = sorted(h.span for h in hits if h.span is not None)
    if len(spans) < len(hits):
        return NAME_WITHHELD
    out, pos = [], 0
    for start, end in spans:
        if start < pos:
            start = pos
        out.append(text[pos:start])
        if end > start:
            out.append("[redacted]")
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)


def report(findings: list[GitFinding], *, limit: int = 50) -> list[str]:
    """The lines the agent's ``git push`` shows (as ``remote: ...``) for a rejected push."""
    lines = [
        f"git-gate: push rejected: {len(findings)} possible secret(s) in what this push adds;"
        " nothing was sent upstream.",
    ]
    lines += [f"git-gate:   {f.describe()}" for f in findings[:limit]]
    if len(findings) > limit:
        lines.append(f"git-gate:   ... and {len(findings) - limit} more")
    if any(f.kind == "archive-limit" for f in findings):
        lines.append(
            "git-gate: a scan-limit means a compressed file or archive could not be read whole within the gate's"
            " limits, so it could not be checked: make it smaller or leave it out of the push."
        )
    if any(f.kind == "message-limit" for f in findings):
        lines.append(
            "git-gate: a scan-limit on a message means it holds more compressed data than the gate reads, so it"
            " could not be checked: leave that data out of the message."
        )
    if any(f.kind in ("archive-limit", "message-limit") and f.detector.endswith(f"{PUSH_LIMIT_END})")
           for f in findings):
        lines.append(
            "git-gate: a scan-limit for the whole push means its files hold more compressed data than the gate reads"
            " in one push: push the work in smaller parts."
        )
    if any(f.kind == "finding-limit" for f in findings):
        lines.append(
            f"git-gate: the gate stops reading a push after {MAX_FINDINGS} findings: remove those secrets and"
            " push again to see whether the rest holds more."
        )
    if any(f.kind == "log-limit" for f in findings):
        lines.append(
            "git-gate: a scan-limit on the diff means this push adds more than the gate reads in one push, so it"
            " could not all be checked: push the work in smaller parts."
        )
    lines.append(
        "git-gate: remove the secret from those commits (e.g. git rebase -i, git commit --amend) and push again;"
        " if it is not a secret, ask the operator."
    )
    return lines
