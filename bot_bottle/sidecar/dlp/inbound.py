"""Likely prompt injection in what upstreams send back.

Each rule has a confidence: ``high`` is meant to block (a model is being told to drop its
instructions, to send secrets somewhere, or text is smuggled in invisible characters), ``medium``
is meant to be logged (phrases that also occur in honest documentation: "system prompt",
``curl ... | sh`` install lines, a zero-width space or two).

Responses are large and full of ordinary words, so every rule starts with a literal word and runs
only when that word occurs in the ASCII-lower-cased text (the regex engine skips quickly to a
leading literal, and only to one). Rules whose distinctive part comes late ("developer mode",
"... to https://") start at that part and look back over a short window instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bot_bottle.sidecar.dlp.encodings import ascii_lower
from bot_bottle.sidecar.dlp.findings import HIGH, MEDIUM, Finding, resolve_overlaps

LOCATION = "response"
_W = r"[\s\*_`\"'>]+"  # words may be separated by markup as well as spaces
_OPT_W = rf"(?:{_W})?"
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")

_TARGETS = r"(?:instructions?|prompts?|directions?|rules|messages|context|guidelines|commands|directives|guardrails)"
_STRONG_TARGETS = r"(?:instructions?|prompts?|guidelines|directives|guardrails)"
_DETERMINERS = r"(?:all|any|the|of|your|these|those|my)"
_EARLIER = r"(?:previous|prior|above|earlier|preceding|former|system|original|initial|existing|foregoing)"
_MODEL = rf"(?:ai|a\.i\.|llm|assistant|agent|language{_W}model|chatbot|model|claude|gpt|chatgpt|copilot|codex)s?\b"
_STRONG_SECRETS = (
    rf"(?:environment{_W}variables|env{_W}vars?|\.env\b|ssh{_W}keys?|private{_W}keys?|id_rsa|\.aws|\.ssh|"
    rf"credentials|secrets|passwords|api{_W}keys|api_keys|tokens|\.netrc|\.npmrc|keychain)"
)
_WEAK_SECRETS = rf"(?:api{_W}key|api_key|token|secret|password|cookies?|session)"
_EXFIL_VERB = r"(?:send|post|upload|forward|transmit|exfiltrate|email|leak|share)"
_SECRET_STORE = r"(?:\.ssh|\.aws|\.env|credentials|id_rsa|\.netrc|\.npmrc|\.pypirc|\.git-credentials)"
_TOKEN_VAR = re.compile(r"\$\{?[a-z_]*(?:token|key|secret|passw|credential|auth)")
_READS_SECRETS = re.compile(rf"\$\(\s*(?:env|printenv|cat\s+[^\s)]*{_SECRET_STORE})")
_PIPE_TO_SHELL = re.compile(r"\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b")

# Returns the (start, end, confidence, name) to report for a match, or None to drop it.
Check = Callable[[str, "re.Match[str]"], "tuple[int, int, str, str] | None"]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    confidence: str
    starts: tuple[str, ...]  # the literal words the pattern begins with
    rest: str  # the pattern after the word
    check: Check | None = field(default=None, repr=False)
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = field(default=(), repr=False)

    def compiled(self) -> Rule:
        pats = tuple((word, re.compile(re.escape(word) + self.rest)) for word in self.starts)
        return Rule(self.id, self.name, self.confidence, self.starts, self.rest, self.check, pats)

    def finding(self, low: str, m: re.Match[str], location: str) -> Finding | None:
        if self.check is None:
            return Finding(self.id, self.name, location, m.start(), m.end(), self.confidence)
        span = self.check(low, m)
        if span is None:
            return None
        return Finding(self.id, span[3], location, span[0], span[1], span[2])


def _looking_back(pattern: str, reach: int = 120) -> Callable[[str, int], re.Match[str] | None]:
    """A matcher for ``pattern`` ending exactly at a position, within ``reach`` characters."""
    rx = re.compile(f"(?:{pattern})\\Z")

    def match(low: str, end: int) -> re.Match[str] | None:
        return rx.search(low, max(0, end - reach), end)

    return match


_MODE_WORD = _looking_back(rf"(?:developer|god|jailbreak|dan|sudo|admin){_W}", 20)
_REVEAL = _looking_back(
    rf"(?:reveal|print|show|output|repeat|display|leak|dump|tell{_W}me|send|share|return){_W}(?:[a-z]+{_W}){{0,3}}", 80
)


def _developer_mode(low: str, m: re.Match[str]) -> tuple[int, int, str, str] | None:
    before = _MODE_WORD(low, m.start())
    return (before.start(), m.end(), MEDIUM, "Role override") if before else None


def _system_prompt(low: str, m: re.Match[str]) -> tuple[int, int, str, str] | None:
    verb = _REVEAL(low, m.start())
    if verb:
        return verb.start(), m.end(), HIGH, "System prompt probe"
    if low.startswith("system", m.start()):
        return m.start(), m.end(), MEDIUM, "System prompt mention"
    return None  # "initial prompt" / "hidden instructions" matter only when asked for


def _command(low: str, m: re.Match[str]) -> tuple[int, int, str, str] | None:
    line = m.group()
    if _READS_SECRETS.search(line):
        return m.start(), m.end(), HIGH, "Command sending secrets"
    token, pipe = _TOKEN_VAR.search(line), _PIPE_TO_SHELL.search(line)
    if token and pipe:
        return m.start(), m.end(), HIGH, "Download with a token piped to a shell"
    if token:
        return m.start(), m.start() + token.end(), MEDIUM, "Command sending a token"
    if pipe:
        return m.start(), m.start() + pipe.end(), MEDIUM, "Download piped to a shell"
    return None


RULES: tuple[Rule, ...] = tuple(r.compiled() for r in (
    Rule("injection-ignore-instructions", "Instruction override", HIGH, ("ignore", "disregard", "forget"),
         rf"(?:{_W}{_DETERMINERS}){{0,3}}{_W}{_EARLIER}(?:{_W}[a-z]+)?{_W}{_TARGETS}\b"),
    Rule("injection-ignore-instructions", "Instruction override", HIGH, ("ignore", "disregard"),
         rf"(?:{_W}(?:all|any|your)){{1,2}}{_W}{_STRONG_TARGETS}\b"),
    Rule("injection-ignore-instructions", "Instruction override", HIGH, ("override", "bypass"),
         rf"(?:{_W}{_DETERMINERS}){{0,2}}{_W}(?:previous|prior|system|original|initial|safety){_W}{_TARGETS}\b"),
    Rule("injection-ignore-instructions", "Instruction override", HIGH, ("forget",),
         rf"{_W}(?:everything|all){_W}(?:you|that|above|before)\b"),
    Rule("injection-role-override", "Role override", MEDIUM, ("you",),
         rf"{_W}are{_W}now{_W}(?:a|an|the|in|my|no{_W}longer|free|dan|unrestricted|jailbroken)\b"),
    Rule("injection-role-override", "Role override", MEDIUM, ("from",),
         rf"{_W}now{_W}on,?{_W}(?:you|the{_W}assistant){_W}(?:are|will|must|shall|should)\b"),
    Rule("injection-role-override", "Role override", MEDIUM, ("mode",),
         rf"{_W}(?:enabled|activated|on)\b", _developer_mode),
    Rule("injection-role-override", "Role override", MEDIUM, ("new",),
         rf"{_W}(?:system{_W})?(?:instructions?|rules|directives){_OPT_W}:"),
    Rule("injection-system-prompt", "System prompt mention", MEDIUM, ("system", "initial"), rf"{_W}prompt",
         _system_prompt),
    Rule("injection-system-prompt", "System prompt probe", HIGH, ("hidden",), rf"{_W}instructions", _system_prompt),
    Rule("injection-system-prompt", "Fake role marker", HIGH,
         ("<|im_start|>", "<|system|>", "<|assistant|>", "[inst]", "[/inst]", "<<sys>>"), ""),
    Rule("injection-system-prompt", "Fake role marker", MEDIUM, ("<system", "</system", "<assistant", "</assistant"),
         r"[\s_-]*(?:prompt|message|instructions?)?\s*>"),
    Rule("injection-system-prompt", "Fake role marker", MEDIUM, ("[system]",), ""),
    Rule("injection-system-prompt", "Fake role marker", MEDIUM, ("###",), r"\s*system\b"),
    # Commands: the line after curl/wget is classified (see ``_command``).
    Rule("injection-exfiltration", "Command", MEDIUM, ("curl", "wget"), r"\b[^\n]{0,300}", _command),
    Rule("injection-exfiltration", "Command sending secrets", HIGH, ("printenv", "env"),
         r"\b[^\n|]{0,100}\|\s*(?:curl|wget|nc|ncat|base64)\b"),
    Rule("injection-exfiltration", "Command sending secrets", HIGH, ("cat",),
         rf"\s+[^\s|]*{_SECRET_STORE}[^\n|]{{0,100}}\|\s*(?:curl|wget|nc|ncat|base64)\b"),
    Rule("injection-model-address", "Text addressed to the model", MEDIUM,
         ("note", "message", "instruction", "attention", "important", "reminder"),
         rf"s?{_OPT_W}:?{_OPT_W}(?:to|for){_W}(?:the{_W}|any{_W}|all{_W})?{_MODEL}"),
    Rule("injection-model-address", "Text addressed to the model", MEDIUM, ("if",),
         rf"{_W}you{_W}are{_W}(?:an?{_W})?{_MODEL}"),
))

# Rules grouped by the word they start with: one substring search per word finds every place
# any of its rules could match.
_BY_WORD: dict[str, list[tuple[Rule, re.Pattern[str]]]] = {}
for _rule in RULES:
    for _word, _pattern in _rule.patterns:
        _BY_WORD.setdefault(_word, []).append((_rule, _pattern))
# A word seen more often than this is matched with one regex pass per rule instead of at each
# occurrence from Python.
_WALK_LIMIT = 200

# "send your tokens to https://...": found from the destination, looking back for the request.
_DESTINATIONS = ("://", "@")


def _exfil(secrets: str) -> Callable[[str, int], re.Match[str] | None]:
    return _looking_back(rf"{_EXFIL_VERB}{_W}(?:[a-z0-9.$_~/-]+{_W}){{0,6}}?{secrets}{_W}"
                         rf"(?:[a-z0-9.$_~/-]+{_W}){{0,4}}?(?:to|at){_W}[a-z0-9._%+-]*", 240)


_EXFIL_STRONG = _exfil(_STRONG_SECRETS)
_EXFIL_WEAK = _exfil(_WEAK_SECRETS)
_SCHEME_OR_MAILBOX = re.compile(r"(?:https?|ftp|wss?)\Z|[a-z0-9._%+-]+\Z")

_COMMENT_LIMIT = 4000  # longer "comments" are page structure, not a hidden note
_COMMENT_MODEL = re.compile(_MODEL)
_COMMENT_IMPERATIVE = re.compile(
    r"\b(?:must|should|please|instructions?|ignore|execute|run|send|do\s+not|don't|always|never|you\s+are)\b"
)

# Invisible characters. ZWJ/ZWNJ are part of emoji sequences and several scripts, and a BOM at
# the very start is an encoding artefact: those count only inside long runs.
_INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e"
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_RUN = re.compile(f"[{_INVISIBLE}{_BIDI}\U000e0000-\U000e007f]{{8,}}")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_ZERO_WIDTH = re.compile("[\u200b\u200e\u200f\u2060-\u2064\u180e]|(?<!^)\ufeff")
_BIDI_RX = re.compile(f"[{_BIDI}]")
# The same characters as UTF-8 byte patterns, each starting with a two-byte literal: searching
# the encoded text for these is far cheaper than a character-class scan, and most text has none.
_HIDDEN_UTF8 = tuple(re.compile(p) for p in (
    rb"\xe2\x80[\x8b-\x8f\xaa-\xae]", rb"\xe2\x81[\xa0-\xa4\xa6-\xa9]", rb"\xef\xbb\xbf", rb"\xe1\xa0\x8e",
    rb"\xf3\xa0[\x80\x81]",
))


def scan_response_for_injection(text: str | bytes, location: str = LOCATION) -> list[Finding]:
    """Findings (confidence ``medium`` or ``high``) for likely prompt injection in ``text``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text:
        return []
    low = ascii_lower(text)
    out: list[Finding] = []
    for word, entries in _BY_WORD.items():
        at = low.find(word)
        walked = 0
        while at >= 0:
            walked += 1
            if walked > _WALK_LIMIT:
                out.extend(_rest_by_regex(low, word, entries, at, location))
                break
            if not (word[0].isalpha() and at > 0 and low[at - 1] in _WORD_CHARS):
                for rule, pattern in entries:
                    m = pattern.match(low, at)
                    if m is not None:
                        finding = rule.finding(low, m, location)
                        if finding is not None:
                            out.append(finding)
            at = low.find(word, at + 1)
    out.extend(_exfiltration(low, location))
    if "<!--" in low:
        out.extend(_comments(low, location))
    if not text.isascii():
        out.extend(_hidden_text(text, location))
    return resolve_overlaps(out)


def _rest_by_regex(low: str, word: str, entries: list[tuple[Rule, re.Pattern[str]]], start: int,
                   location: str) -> list[Finding]:
    out: list[Finding] = []
    for rule, pattern in entries:
        for m in pattern.finditer(low, start):
            if word[0].isalpha() and m.start() > 0 and low[m.start() - 1] in _WORD_CHARS:
                continue  # inside a longer word ("signore", "curlew")
            finding = rule.finding(low, m, location)
            if finding is not None:
                out.append(finding)
    return out


def _exfiltration(low: str, location: str) -> list[Finding]:
    out: list[Finding] = []
    for marker in _DESTINATIONS:
        at = low.find(marker)
        seen = 0
        while at >= 0 and seen < 10_000:
            seen += 1
            end = at + len(marker)
            if _SCHEME_OR_MAILBOX.search(low, max(0, at - 64), at):
                for matcher, confidence in ((_EXFIL_STRONG, HIGH), (_EXFIL_WEAK, MEDIUM)):
                    m = matcher(low, at)
                    if m:
                        out.append(Finding("injection-exfiltration", "Exfiltration instruction", location,
                                           m.start(), end, confidence))
                        break
            at = low.find(marker, end)
    return out


def _comments(low: str, location: str) -> list[Finding]:
    # Substring searches, not a lazy regex: "<!--<!--<!--..." must stay linear.
    out: list[Finding] = []
    start = low.find("<!--")
    while start >= 0:
        close = low.find("-->", start + 4)
        if close < 0:
            break  # nothing closes after this point
        if close - (start + 4) > _COMMENT_LIMIT:
            # Too long from here, and from every opening before close - limit as well.
            start = low.find("<!--", max(start + 4, close - _COMMENT_LIMIT - 4))
            continue
        body, end = low[start + 4 : close], close + 3
        confidence = None
        if _COMMENT_MODEL.search(body) and _COMMENT_IMPERATIVE.search(body):
            confidence = HIGH
        elif _COMMENT_IMPERATIVE.search(body) and re.search(r"\b(?:ignore|instructions?)\b", body):
            confidence = MEDIUM
        if confidence is not None:
            out.append(Finding("injection-html-comment", "Instructions hidden in an HTML comment", location,
                               start, end, confidence))
        start = low.find("<!--", end)
    return out


def _hidden_text(text: str, location: str) -> list[Finding]:
    encoded = text.encode("utf-8", errors="surrogatepass")
    if not any(rx.search(encoded) for rx in _HIDDEN_UTF8):
        return []
    out: list[Finding] = []
    name = "Hidden text"
    for m in _TAGS.finditer(text):
        # Unicode tag characters mirror ASCII and render as nothing: text smuggled past a reader.
        out.append(Finding("injection-hidden-text", name, location, m.start(), m.end(), HIGH))
    for m in _RUN.finditer(text):
        out.append(Finding("injection-hidden-text", name, location, m.start(), m.end(), HIGH))
    zero_width = [m.start() for m in _ZERO_WIDTH.finditer(text)]
    if len(zero_width) >= 3:
        out.append(Finding("injection-hidden-text", name, location, zero_width[0], zero_width[-1] + 1, MEDIUM))
    bidi = [m.start() for m in _BIDI_RX.finditer(text)]
    if bidi:
        out.append(Finding("injection-hidden-text", "Bidirectional override", location, bidi[0], bidi[-1] + 1, MEDIUM))
    return out
