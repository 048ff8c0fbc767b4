"""Validate one parsed manifest file into a ``BottleFile`` or an ``AgentFile``.

Unknown keys and wrong types are errors naming the file, the line and the key, and saying what
was expected. Cross-file rules (``extends``, the agent's bottle) live in ``load``.
"""

from __future__ import annotations

import datetime
import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from bot_bottle.manifest.conceal import NOT_SHOWN, may_hold_credential, token_in_prose, token_itself
from bot_bottle.manifest.errors import ManifestError, gathered
from bot_bottle.manifest.frontmatter import Document, KeyPath, format_key
from bot_bottle.manifest.model import (
    BUILTIN_TEMPLATES,
    DEFAULT_PORTS,
    AgentFile,
    BottleFile,
    EnvEntry,
    GitRepo,
    GitUser,
    MatchEntry,
    Origin,
    Provider,
    Route,
    RouteAuth,
    RouteDlp,
)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HOST_VAR_RE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# WEBSOCKET is not an HTTP method: it allows a WebSocket handshake (a GET that opens a two-way
# channel, which an entry allowing only GET must not).
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "WEBSOCKET")
AUTH_SCHEMES = ("bearer", "token", "basic", "header")
# Headers the egress proxy refuses to inject a credential into (its policy's own rule): refused
# here at the manifest's line, not when the bottle's sidecar starts.
FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
OUTBOUND_ACTIONS = ("block", "redact", "supervise")
SERVER_FETCH_VALUES = ("block", "allow")

# The bottle sets these itself; letting a manifest override them would route around the proxy.
RESERVED_ENV = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
) | frozenset({"NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO"})

BOTTLE_KEYS = ("extends", "env", "egress", "git-gate", "supervise", "terminal", "agent_provider", "description")
# What the agent's writes to the operator's clipboard (OSC 52) meet on the relayed terminal: held
# back (the default: a clipboard write is the classic way to plant a command for the operator to
# paste), or passed (Claude Code's `/copy`). Reading the clipboard is never passed.
CLIPBOARD_MODES = ("hold", "write")
# Keys Claude Code's own subagent files use: accepted and ignored so one file serves both.
CLAUDE_PASSTHROUGH_KEYS = ("name", "description", "model", "color", "memory", "tools")
AGENT_KEYS = ("bottle", "skills", "git-gate") + CLAUDE_PASSTHROUGH_KEYS


T = TypeVar("T")


class _Reader:
    """Typed accessors over a ``Document`` that raise ``ManifestError`` with file:line:key.

    Parts of a file that do not depend on each other (top-level sections, env entries, routes,
    repos) are read through ``attempt``: a wrong one is kept and reading goes on, so the file's
    every independent mistake is reported at once (``finish``)."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[ManifestError] = []

    def attempt(self, read: Callable[[], T], default: T) -> T:
        try:
            return read()
        except ManifestError as exc:
            self.problems.append(exc)
            return default

    def finish(self) -> None:
        """Raise what ``attempt`` kept: one error, or ``ManifestErrors`` in line order."""
        if self.problems:
            raise gathered(self.problems)

    def fail(self, keypath: KeyPath, message: str, hint: str | None = None) -> ManifestError:
        return self.doc.error(keypath, message, hint=hint)

    def fail_within(self, keypath: KeyPath, value: str, span: tuple[int, int], message: str,
                    hint: str | None = None) -> ManifestError:
        """``fail`` at the line where ``value[span[0]:span[1]]``, a piece of the string at
        ``keypath``, is written (a token inside a block scalar is not on the key's line); an
        ``{at}`` in ``message`` becomes the column it starts at, where that is known."""
        line, column = self.doc.place_in_value(keypath, value, *span)
        # Not found in the text as written: the message names no column, the error the key's.
        return ManifestError(message.replace("{at}", _at_column(column)), path=self.doc.path, line=line,
                             column=column or self.doc.place_of(keypath)[1], key=format_key(keypath), hint=hint)

    def fail_value(self, keypath: KeyPath, value: str, message: str, hint: str | None = None) -> ManifestError:
        """``fail`` at the line and column where the string at ``keypath`` starts: a value in a
        block scalar ('|', '>') is written on the lines below its key."""
        line, column = self.doc.place_value(keypath, value)
        return ManifestError(message, path=self.doc.path, line=line, column=column or self.doc.place_of(keypath)[1],
                             key=format_key(keypath), hint=hint)

    def fail_token(self, keypath: KeyPath, value: str, message: str, hint: str | None = None, *,
                   is_key: bool = False) -> ManifestError:
        """``fail`` for a token written at ``keypath``, at the token's own line and column: the
        key's place when the token is the key, else where the token starts in the value (a
        private key pasted under ``ssh_key: |`` sits below its key). ``{at}`` as in ``fail_within``."""
        if is_key:
            line, column = self.doc.place_of(keypath)
            return ManifestError(message.replace("{at}", _at_column(column)), path=self.doc.path, line=line,
                                 column=column, key=format_key(keypath), hint=hint)
        found = token_itself(value)
        start, end = (found[0], found[1]) if found is not None else (len(value) - len(value.lstrip()), len(value))
        return self.fail_within(keypath, value, (start, end), message, hint=hint)

    def fail_near_secret(self, keypath: KeyPath, value: str, message: str, hint: str | None = None) -> ManifestError:
        """``fail`` for a value that may hold a secret (an env literal): at the line and column of
        the token or private key in it, when there is one (pasted into a block scalar it is below
        its key), else at the key. Read only once the value is refused."""
        found = token_itself(value) or token_in_prose(value)
        if found is None:
            return self.fail(keypath, message, hint=hint)
        return self.fail_within(keypath, value, (found[0], found[1]), message, hint=hint)

    def origin(self, keypath: KeyPath) -> Origin:
        return Origin(self.doc.path, *self.doc.place_of(keypath))

    def keys(self, mapping: dict[str, Any], keypath: KeyPath, allowed: tuple[str, ...], what: str) -> None:
        unknown = [
            self.fail(keypath + (key,), f"unknown key in {what}; {_not_plain(key)}"
                                        f"{_misplaced(key, keypath) or did_you_mean(key, allowed)}"
                                        f"expected one of: {', '.join(allowed)}")
            for key in mapping if key not in allowed
        ]
        if unknown:
            raise gathered(unknown)

    def mapping(self, value: Any, keypath: KeyPath, what: str = "a mapping of keys to values") -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(keypath, f"expected {what}, got {_describe(value)}")
        return value

    def string(self, value: Any, keypath: KeyPath, *, allow_empty: bool = False) -> str:
        value = self.doc.as_written(keypath, value)
        if not isinstance(value, str):
            raise self.fail(keypath, f"expected a string, got {_describe(value)}")
        if not allow_empty and not value.strip():
            raise self.fail(keypath, "expected a non-empty string")
        return value

    def boolean(self, value: Any, keypath: KeyPath) -> bool:
        if not isinstance(value, bool):
            raise self.fail(keypath, f"expected true or false, got {_describe(value)}")
        return value

    def string_list(self, value: Any, keypath: KeyPath, *, single_ok: bool = False) -> list[str]:
        if single_ok:
            value = self.doc.as_written(keypath, value)
        if single_ok and isinstance(value, str):
            return [self.string(value, keypath)]  # one item written alone: its mistakes are the key's
        if not isinstance(value, list):
            raise self.fail(keypath, f"expected a list of strings, got {_describe(value)}")
        out = []
        for index, item in enumerate(value):
            out.append(self.string(item, keypath + (index,)))
        return out

    def not_a_token(self, name: str, keypath: KeyPath, what: str, hint: str | None = None, *,
                    is_key: bool = False) -> None:
        """Refuse a token written where a name belongs (a variable, a repo, a header, a bottle):
        names are printed in every plan and error, so one that is a credential would be shown.
        ``is_key``: the name is the key at ``keypath`` (an env variable), not its value."""
        from bot_bottle.sidecar.dlp.tokens import token_format  # its regexes only when a name is read

        detector = token_format(name)
        if detector is not None:
            raise self.fail_token(keypath, name, f"this is a token itself ({detector}){{at}}, not {what}; the value "
                                                 "is not shown",
                                  hint=hint or "a credential belongs in the host: name the host variable that holds "
                                               "it where the manifest asks for one", is_key=is_key)

    def env_name(self, value: Any, keypath: KeyPath) -> str:
        name = self.string(value, keypath)
        self.not_a_token(name, keypath, "an environment variable name", is_key=True)
        if not ENV_NAME_RE.match(name):
            raise self.fail(keypath, f"{_quoted(name)} is not an environment variable name (letters, digits, '_'; "
                                     "not starting with a digit)")
        return name

    def secret_ref(self, value: Any, keypath: KeyPath, *, example: str = "GITHUB_TOKEN") -> str:
        """The name of the host variable holding a credential. What was written here is never
        echoed: a token pasted in place of its variable's name would be printed otherwise.
        ``example`` is a variable the hint suggests, one that holds this kind of credential."""
        name = self.string(value, keypath)
        hint = f"put the token in a host variable (e.g. export {example}=...) and write that variable's name here"
        from bot_bottle.sidecar.dlp.tokens import token_format  # its regexes only when a reference is read

        detector = token_format(name)
        if detector is not None:
            raise self.fail_token(keypath, name, f"this is a token itself ({detector}){{at}}, not the name of the host "
                                                 "variable that holds it; the value is not shown", hint=hint)
        slip = _env_value_syntax(name)
        if slip is not None:
            raise self.fail_value(keypath, name, slip, hint=hint)
        if not ENV_NAME_RE.match(name):
            raise self.fail_value(keypath, name, "is not an environment variable name (letters, digits, '_'; not "
                                                 "starting with a digit); the value is not shown, in case it is a "
                                                 "token", hint=hint)
        return name


_DOLLAR_NAME_RE = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


def _env_value_syntax(written: str) -> str | None:
    """Why an env value's spelling (``${NAME}``, ``$NAME``, ``?prompt``) is wrong where a
    variable's bare name belongs, or None. Only a name is echoed back, never other text."""
    dollar = _DOLLAR_NAME_RE.match(written)
    if dollar and (written.startswith("${") == written.endswith("}")):
        name = dollar.group(1)
        shown = f": write {name!r}" if not may_hold_credential(name) else " (the value is not shown)"
        return ("is not an environment variable name but a shell's use of one; give the name alone, "
                f"without '$' or '${{...}}'{shown}")
    if written.startswith("?"):
        return ("'?prompt' asks for an env value at launch; here give the name of the host variable that "
                "holds the token (the value is not shown)")
    return None


# Where each key that is only valid deeper in a bottle belongs ("[]" stands for one list item or
# one named entry): written a level too high or too low, it is named there, not matched to the
# closest spelling of a key of this level ('paths' in a route read as 'matches'). Keys whose
# place is ambiguous ('name', 'header', 'description') are left to the spelling.
_KEY_HOMES = {
    "log": "egress", "routes": "egress",
    **dict.fromkeys(("host", "ports", "matches", "auth", "dlp", "tls_passthrough"), "egress.routes[]"),
    **dict.fromkeys(("paths", "methods", "headers"), "egress.routes[].matches[]"),
    **dict.fromkeys(("scheme", "token_ref"), "egress.routes[].auth"),
    **dict.fromkeys(("outbound_on_match", "tokens", "secrets", "entropy", "inbound", "server_fetch"),
                    "egress.routes[].dlp"),
    "user": "git-gate", "repos": "git-gate", "email": "git-gate.user",
    **dict.fromkeys(("url", "ssh_key", "known_hosts", "username"), "git-gate.repos[]"),
    **dict.fromkeys(("template", "dockerfile", "auth_token"), "agent_provider"),
    "clipboard": "terminal",
}


def _misplaced(key: Any, keypath: KeyPath) -> str:
    """``"'KEY' belongs under 'WHERE'; "`` for a key of another level of a bottle, else ``""``."""
    if key == "skills" and not keypath:
        return "'skills' is set in an agent file, not in a bottle; "
    home = _KEY_HOMES.get(key) if isinstance(key, str) else None
    if home is None or home == _place(keypath):
        return ""  # its own level (an agent's git-gate takes only 'user'): the spelling speaks
    shown = home.replace("repos[]", "repos.NAME").replace("[]", "[N]")
    return f"'{key}' belongs under '{shown}'; "


def _place(keypath: KeyPath) -> str:
    """``keypath`` in the form of ``_KEY_HOMES``: ``("egress", "routes", 0)`` -> ``egress.routes[]``."""
    out = ""
    for index, part in enumerate(keypath):
        if isinstance(part, int) or keypath[:index] == ("git-gate", "repos"):
            out += "[]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _not_plain(key: Any) -> str:
    """``"it holds U+0435 (CYRILLIC SMALL LETTER IE), not a plain ASCII character; "`` for a key with a
    character beyond ASCII (a look-alike pasted from a web page), else ``""``: every manifest key
    is plain ASCII, and the key as printed looks right."""
    if not isinstance(key, str) or key.isascii():
        return ""
    char = next(c for c in key if not c.isascii())
    name = unicodedata.name(char, "")
    return f"it holds U+{ord(char):04X}{f' ({name})' if name else ''}, not a plain ASCII character; "


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'X'? "`` for the choice closest to a mistyped ``word`` (case aside), or
    ``""`` when none is close, or when ``word`` may be a credential (it is never echoed back)."""
    if not isinstance(word, str) or may_hold_credential(word):
        return ""
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"did you mean '{by_lower[close[0]]}'? " if close else ""


def _quoted(text: str) -> str:
    """``text`` quoted for an error message, or the words saying it is not shown."""
    return NOT_SHOWN if may_hold_credential(text) else repr(text)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        digits = str(abs(value))
        # A number no setting takes by hundreds of digits: its size says enough, the line stays short.
        return f"a number ({value})" if len(digits) <= 24 else f"a number of {len(digits)} digits"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        if may_hold_credential(value):
            return f"a string {NOT_SHOWN}"
        return f"a string ({value!r})" if len(value) <= 40 else "a string"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, bytes):
        return "binary data (a '!!binary' value)"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"a date ({value.isoformat()}); quote it to write it as text"
    return type(value).__name__


# ---------------------------------------------------------------------------------- env


# A literal reaches the agent through the container's or micro-VM's own env, one line per
# variable: both backends refuse these at launch, so refuse them here with the file and line.
_NOT_ONE_LINE = (("\n", "a line break"), ("\r", "a carriage return"), ("\0", "a NUL character"))
# Linux refuses to start a process with one environment string over 128 KiB (MAX_ARG_STRLEN):
# the agent would fail at launch, far from this line.
MAX_LITERAL_BYTES = 128 * 1024 - 1024


# A whole value written as "${...}": what it holds is meant as a host variable's name.
_BRACED_RE = re.compile(r"^\$\{([^{}\s]*)\}$")


def _token_name(text: str) -> str | None:
    from bot_bottle.sidecar.dlp.tokens import token_format  # its regexes only when a value is read

    return token_format(text)


def parse_env_value(name: str, value: str, origin: Origin, fail: Callable[[str], ManifestError]) -> EnvEntry:
    """Classify an env value: ``?prompt``, ``${HOST_VAR}`` or a literal."""
    if value.startswith("?"):
        prompt = value[1:].strip()
        if not prompt:
            raise fail("a '?' value needs prompt text after the '?', e.g. \"?GitHub token\"")
        detector = _token_name(prompt)
        if detector:  # the plan shows the prompt text: the answer itself must not be in it
            raise fail(f"the prompt text after '?' is a token itself ({detector}); the value is not "
                       "shown. Write the question, e.g. \"?GitHub token\", and give the token when asked")
        return EnvEntry(name=name, kind="prompt", value=prompt, origin=origin)
    match = HOST_VAR_RE.match(value)
    if match:
        detector = _token_name(match.group(1))
        if detector:  # the plan shows the variable's name: the token would be printed
            raise fail(f"the name inside \"${{...}}\" is a token itself ({detector}), not the "
                       "host variable holding it; the value is not shown. Put the token in a host variable "
                       "(export GITHUB_TOKEN=...) and write \"${GITHUB_TOKEN}\"")
        return EnvEntry(name=name, kind="host", value=match.group(1), origin=origin)
    braced = _BRACED_RE.match(value)
    if braced and not may_hold_credential(braced.group(1)):
        raise fail(f"{braced.group(1)!r} inside \"${{...}}\" is not an environment variable name (letters, "
                   "digits, '_'; not starting with a digit); a host variable is the whole value, exactly \"${NAME}\"")
    if "${" in value:
        raise fail(
            "a host variable must be the whole value, exactly \"${NAME}\"; "
            "mixing it with other text is not supported"
        )
    for char, what in _NOT_ONE_LINE:
        if char in value:
            # Never quote the value: a literal may be a secret written in by mistake.
            trailing_only = char == "\n" and "\n" not in value.rstrip("\n")
            block = " (a '|' block keeps its final line break; '|-' drops it)" if trailing_only else ""
            raise fail(
                f"a literal value must be one line, but this one holds {what}{block}; "
                "a multi-line value can come from the host as \"${HOST_VAR}\""
            )
    if len(value.encode("utf-8")) > MAX_LITERAL_BYTES:
        raise fail(f"a literal value may be at most {MAX_LITERAL_BYTES // 1024} KiB (the kernel's limit for one "
                   "environment variable); put the text in a file in the working tree instead")
    return EnvEntry(name=name, kind="literal", value=value, origin=origin)


def _env(r: _Reader, raw: Any) -> tuple[EnvEntry, ...]:
    env = r.mapping(raw, ("env",), "a mapping of variable names to values")
    entries = [r.attempt(lambda name=name, value=value: _env_entry(r, name, value), None) for name, value in env.items()]
    return tuple(e for e in entries if e is not None)


def _env_entry(r: _Reader, name: Any, value: Any) -> EnvEntry:
    kp = ("env", name)
    r.env_name(name, kp)
    if name in RESERVED_ENV:
        raise r.fail(kp, f"'{name}' is set by the bottle itself and cannot be overridden")
    # `V: 1.10` is the literal "1.10", not YAML 1.1's float 1.1; only an explicit tag
    # (`!!int 010`) still reaches the conversions below.
    value = r.doc.as_written(kp, value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (int, float)):
        value = str(value)
    elif not isinstance(value, str):
        raise r.fail(kp, f"expected a string value (literal, \"?Prompt\" or \"${{HOST_VAR}}\"), got {_describe(value)}")
    return parse_env_value(name, value, r.origin(kp), lambda m: r.fail_near_secret(kp, value, m))


# ------------------------------------------------------------------------------- egress


def normalize_host(raw: str) -> str:
    return raw.strip().lower().rstrip(".")


def check_host(host: str) -> str | None:
    """None when ``host`` is a valid route host (name, ``*.name`` or IP literal), else why not.

    The rule lives with the sidecar (``route_host_problem``), which applies it to the routes an
    operator grants at runtime too: a granted route can always be saved here.
    """
    from bot_bottle.sidecar.egress.hosts import route_host_problem

    return route_host_problem(host)


def _matches(r: _Reader, raw: Any, kp: KeyPath) -> tuple[MatchEntry, ...]:
    if not isinstance(raw, list) or not raw:
        raise r.fail(kp, f"expected a non-empty list of match entries (paths, methods, headers), got {_describe(raw)}")
    entries = []
    for index, item in enumerate(raw):
        ekp = kp + (index,)
        entry = r.mapping(item, ekp, "a match entry with paths, methods and/or headers")
        r.keys(entry, ekp, ("paths", "methods", "headers"), "a match entry")
        if not entry:
            raise r.fail(ekp, "an empty match entry would match everything; remove 'matches' to allow the whole host")
        _no_empty_condition(r, entry, ekp)
        paths: list[str] = []
        if "paths" in entry:
            paths = r.string_list(entry["paths"], ekp + ("paths",), single_ok=True)
            from bot_bottle.sidecar.egress.policy import path_problem  # the sidecar's own rule

            for pindex, path in enumerate(paths):
                if not path.startswith("/"):
                    raise r.fail(ekp + ("paths", pindex), f"a path prefix must start with '/', got {_quoted(path)}")
                problem = path_problem(path)
                if problem:
                    raise r.fail(ekp + ("paths", pindex), problem)
        methods: list[str] = []
        if "methods" in entry:
            written_methods = r.string_list(entry["methods"], ekp + ("methods",), single_ok=True)
            methods = [m.upper() for m in written_methods]
            for mindex, method in enumerate(methods):
                if method not in HTTP_METHODS:
                    # Quoted as written: upper-cased, a token is no longer recognised as one.
                    shown = NOT_SHOWN if may_hold_credential(written_methods[mindex]) else repr(method)
                    raise r.fail(ekp + ("methods", mindex), f"unknown HTTP method {shown}; "
                                                            f"{did_you_mean(method, HTTP_METHODS)}"
                                                            f"expected one of: {', '.join(HTTP_METHODS)}")
        headers: list[tuple[str, str]] = []
        if "headers" in entry:
            hmap = r.mapping(entry["headers"], ekp + ("headers",), "a mapping of header names to required values")
            for hname, hvalue in hmap.items():
                hkp = ekp + ("headers", hname)
                r.not_a_token(str(hname), hkp, "a header name", is_key=True)
                if not HEADER_NAME_RE.match(hname):
                    raise r.fail(hkp, f"{_quoted(hname)} is not a valid HTTP header name")
                # As written: `x-api-version: 2.10` must match "2.10", not YAML 1.1's 2.1.
                hvalue = r.doc.as_written(hkp, hvalue)
                if isinstance(hvalue, (int, float)) and not isinstance(hvalue, bool):
                    hvalue = str(hvalue)
                hvalue = r.string(hvalue, hkp, allow_empty=True)
                if HOST_VAR_RE.match(hvalue):
                    # Only env reads the host; here the request would have to carry these characters.
                    raise r.fail(hkp, f"a header value is matched as written, so {hvalue!r} is not read from the "
                                      "host here; write the value itself")
                headers.append((hname.lower(), hvalue))
        entries.append(MatchEntry(paths=tuple(paths), methods=tuple(dict.fromkeys(methods)), headers=tuple(headers)))
    return tuple(entries)


def _no_empty_condition(r: _Reader, entry: dict[str, Any], kp: KeyPath) -> None:
    """Refuse ``paths: []``, ``methods: []`` and ``headers: {}``: an empty field places no
    condition, so the entry would allow what it seems to deny (every path, every method), and
    an entry of empty fields only would open the whole host."""
    for key, what in (("paths", "every path"), ("methods", "every method"), ("headers", "any headers")):
        value = entry.get(key)
        if isinstance(value, (list, dict)) and not value:
            raise r.fail(kp + (key,), f"an empty '{key}' places no condition: the entry would allow {what}; "
                                      f"list at least one, or remove '{key}'")


def _auth(r: _Reader, raw: Any, kp: KeyPath) -> RouteAuth:
    auth = r.mapping(raw, kp, "a mapping with 'scheme' and 'token_ref'")
    r.keys(auth, kp, ("scheme", "token_ref", "header"), "route auth")
    for required in ("scheme", "token_ref"):
        if required not in auth:
            raise r.fail(kp, f"route auth needs '{required}'")
    scheme = r.string(auth["scheme"], kp + ("scheme",)).lower()
    if scheme not in AUTH_SCHEMES:
        raise r.fail(kp + ("scheme",), f"unknown auth scheme {_quoted(scheme)}; {did_you_mean(scheme, AUTH_SCHEMES)}"
                                       f"expected one of: {', '.join(AUTH_SCHEMES)}")
    token_ref = r.secret_ref(auth["token_ref"], kp + ("token_ref",))
    header = None
    if "header" in auth:
        header = r.string(auth["header"], kp + ("header",))
        r.not_a_token(header, kp + ("header",), "a header name")
        if not HEADER_NAME_RE.match(header):
            raise r.fail(kp + ("header",), f"{_quoted(header)} is not a valid HTTP header name")
        if scheme != "header":
            raise r.fail(kp + ("header",), "'header' is only used with 'scheme: header'")
        if header.lower() in FRAMING_HEADERS:
            raise r.fail(kp + ("header",), f"{header!r} frames or routes the request; it cannot carry a credential",
                         hint="name the header the service reads the key from, e.g. x-api-key")
    elif scheme == "header":
        raise r.fail(kp, "'scheme: header' needs 'header' naming the header to inject, e.g. x-api-key")
    return RouteAuth(scheme=scheme, token_ref=token_ref, header=header.lower() if header else None)


def _dlp(r: _Reader, raw: Any, kp: KeyPath) -> RouteDlp:
    dlp = r.mapping(raw, kp, "a mapping of DLP switches")
    r.keys(dlp, kp, ("outbound_on_match", "tokens", "secrets", "entropy", "inbound", "server_fetch"), "route dlp")
    action = None
    if "outbound_on_match" in dlp:
        action = r.string(dlp["outbound_on_match"], kp + ("outbound_on_match",))
        if action not in OUTBOUND_ACTIONS:
            raise r.fail(kp + ("outbound_on_match",), f"{did_you_mean(action, OUTBOUND_ACTIONS)}expected one of: "
                                                      f"{', '.join(OUTBOUND_ACTIONS)}; got {_quoted(action)}")
    server_fetch = None
    if "server_fetch" in dlp:
        # Whether a request may make the provider's servers fetch from an address it names (an
        # MCP server, a web fetch tool, a URL-sourced image); the plan picks the default.
        server_fetch = r.string(dlp["server_fetch"], kp + ("server_fetch",))
        if server_fetch not in SERVER_FETCH_VALUES:
            raise r.fail(kp + ("server_fetch",),
                         f"{did_you_mean(server_fetch, SERVER_FETCH_VALUES)}expected one of: "
                         f"{', '.join(SERVER_FETCH_VALUES)}; got {_quoted(server_fetch)}",
                         hint="'allow' lets requests on this route make the provider fetch from addresses they "
                              "name (MCP servers, web fetch, URL images); the default blocks that on the "
                              "provider's route")
    flags = {key: r.boolean(dlp[key], kp + (key,)) for key in ("tokens", "secrets", "entropy", "inbound") if key in dlp}
    return RouteDlp(outbound_on_match=action, server_fetch=server_fetch, **flags)  # type: ignore[arg-type]


def _terminal(r: _Reader, raw: Any) -> tuple[str, Origin] | None:
    """``terminal: {clipboard: hold | write}``: the clipboard mode and where it was written."""
    kp: KeyPath = ("terminal",)
    terminal = r.mapping(raw, kp, "a mapping with 'clipboard'")
    r.keys(terminal, kp, ("clipboard",), "terminal")
    if "clipboard" not in terminal:
        return None
    mode = r.string(terminal["clipboard"], kp + ("clipboard",))
    if mode not in CLIPBOARD_MODES:
        raise r.fail(kp + ("clipboard",), f"{did_you_mean(mode, CLIPBOARD_MODES)}expected one of: "
                                         f"{', '.join(CLIPBOARD_MODES)}; got {_quoted(mode)}")
    return mode, r.origin(kp + ("clipboard",))


def _ports(r: _Reader, raw: Any, kp: KeyPath) -> tuple[int, ...]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise r.fail(kp, f"expected a list of port numbers, got {_describe(raw)}")
    ports = []
    for index, port in enumerate(raw):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise r.fail(kp + (index,), f"expected a port number from 1 to 65535, got {_describe(port)}")
        ports.append(port)
    return tuple(sorted(set(ports)))


def _routes(r: _Reader, raw: Any) -> tuple[Route, ...]:
    kp0: KeyPath = ("egress", "routes")
    if not isinstance(raw, list):
        raise r.fail(kp0, f"expected a list of routes, got {_describe(raw)}")
    routes = [r.attempt(lambda index=index, item=item: _route(r, kp0 + (index,), item), None)
              for index, item in enumerate(raw)]
    return tuple(route for route in routes if route is not None)


_ROUTE_KEYS = ("host", "ports", "matches", "auth", "dlp", "tls_passthrough")


def _route(r: _Reader, kp: KeyPath, item: Any) -> Route:
    if isinstance(item, str):
        item = {"host": item}
    route = r.mapping(item, kp, "a route (a host name, or a mapping with 'host')")
    r.keys(route, kp, _ROUTE_KEYS, "a route")
    if "host" not in route:
        raise r.fail(kp, "a route needs 'host'")
    written = r.string(route["host"], kp + ("host",))
    host = normalize_host(written)
    problem = check_host(host)
    if problem:
        raise _host_problem(r, written, problem, kp + ("host",))
    ports = _ports(r, route["ports"], kp + ("ports",)) if "ports" in route else DEFAULT_PORTS
    matches = _matches(r, route["matches"], kp + ("matches",)) if "matches" in route else ()
    auth = _auth(r, route["auth"], kp + ("auth",)) if "auth" in route else None
    dlp = _dlp(r, route["dlp"], kp + ("dlp",)) if "dlp" in route else RouteDlp()
    passthrough = r.boolean(route["tls_passthrough"], kp + ("tls_passthrough",)) if "tls_passthrough" in route else False
    if passthrough and (auth is not None or matches):
        raise r.fail(
            kp + ("tls_passthrough",),
            "a passthrough route is tunnelled untouched, so it cannot have 'auth' or 'matches'",
        )
    if auth is not None and host.startswith("*."):
        # Anyone may hold a subdomain of many domains (a hosting platform's tenants): the
        # proxy would hand the real token to whichever the agent names.
        raise r.fail(
            kp + ("auth",),
            f"{host!r} is a wildcard route: 'auth' would send the real token to every subdomain; "
            "give the hosts that need it a route of their own",
        )
    return Route(
        host=host,
        origin=r.origin(kp),
        ports=ports,
        matches=matches,
        auth=auth,
        dlp=dlp,
        tls_passthrough=passthrough,
        index=kp[-1],
    )


def _host_problem(r: _Reader, written: str, problem: str, kp: KeyPath) -> ManifestError:
    """The error for a route host that is not one, quoting it unless it may carry a credential
    (``user:TOKEN@host``, ``https://user:TOKEN@host``, or a token pasted in place of the host)."""
    hint = "a credential for the host goes in 'auth', whose 'token_ref' names the host variable holding it"
    if "@" in written:
        return r.fail_value(kp, written, "give the host name only, without a user name or token before '@' (the value "
                                         "is not shown)", hint=hint)
    if may_hold_credential(written):
        return r.fail_token(kp, written, f"this looks like a token{{at}}, not a host name (the value is not shown): "
                                         f"{problem}", hint=hint)
    return r.fail(kp, f"{written!r}: {problem}")


def _egress(r: _Reader, raw: Any) -> tuple[tuple[int, Origin] | None, tuple[Route, ...]]:
    egress = r.mapping(raw, ("egress",), "a mapping with 'log' and/or 'routes'")
    r.attempt(lambda: r.keys(egress, ("egress",), ("log", "routes"), "egress"), None)
    log = r.attempt(lambda: _log(r, egress["log"]), None) if "log" in egress else None
    routes = _routes(r, egress["routes"]) if "routes" in egress else ()
    return log, routes


def _log(r: _Reader, value: Any) -> tuple[int, Origin]:
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise r.fail(("egress", "log"), f"expected 0 (off), 1 (blocks) or 2 (everything), got {_describe(value)}")
    return int(value), r.origin(("egress", "log"))


# ----------------------------------------------------------------------------- git-gate


def _git_user(r: _Reader, raw: Any, kp: KeyPath) -> GitUser:
    user = r.mapping(raw, kp, "a mapping with 'name' and/or 'email'")
    r.keys(user, kp, ("name", "email"), "git-gate.user")
    name = r.string(user["name"], kp + ("name",)) if "name" in user else None
    if name is not None:  # the plan shows the git identity
        r.not_a_token(name, kp + ("name",), "a git user name")
    email = r.string(user["email"], kp + ("email",)) if "email" in user else None
    if email is not None and ("@" not in email or any(c.isspace() for c in email)):
        raise r.fail(kp + ("email",), f"{_quoted(email)} does not look like an email address")
    return GitUser(
        name=name,
        email=email,
        name_origin=r.origin(kp + ("name",)) if name is not None else None,
        email_origin=r.origin(kp + ("email",)) if email is not None else None,
    )


_GIT_URL_RE = re.compile(r"^(https?://[^\s/]+/\S+|ssh://[^\s/]+/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$")


_URL_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/@\s]*)@")


def _refuse_url_credentials(r: _Reader, url: str, kp: KeyPath) -> None:
    """A password or token inside a repo URL would be printed in every plan and copied into the
    gate's config: refused, and the URL is not shown. Git needs no query string or fragment
    (``?access_token=...``, ``#...``), so neither is taken, whatever it holds."""
    if "?" in url or "#" in url:
        raise r.fail(kp, "a repo URL may not carry a query string ('?...') or a fragment ('#...') (the URL is not shown)",
                     hint="write the URL without it; for a private repo give 'token_ref' (the host variable "
                          "holding the token) and, if the host needs one, 'username'")
    m = _URL_USERINFO.match(url)
    if m is None:
        return
    scheme = m["scheme"].lower()
    if scheme in ("http", "https"):
        raise r.fail(kp, "an HTTPS URL may not carry a user name or a token before '@' (the URL is not shown)",
                     hint="write the URL without it, and give 'token_ref' (the host variable holding the token) "
                          "and, if the host needs one, 'username'")
    if ":" in m["userinfo"]:
        raise r.fail(kp, "an SSH URL may not carry a password (the URL is not shown)",
                     hint="the gate signs in with 'ssh_key'")


def _check_repo_host(r: _Reader, url: str, kp: KeyPath) -> None:
    """The upstream's host follows the rule for a route's host: the sidecar's own loopback, its
    services and link-local or metadata addresses are no upstream. Only the host is shown."""
    from bot_bottle.sidecar.git_gate import urls

    host = urls.parse(url).host
    if not host:
        raise r.fail(kp, "the URL names no host")
    if "*" in host:
        raise r.fail(kp, f"the upstream host {host!r} is a wildcard; a repo URL names one host")
    problem = check_host(host)
    if problem:
        raise r.fail(kp, f"the upstream host {host!r} is refused, as it would be for a route: {problem}")


def _repo_username(r: _Reader, raw: Any, kp: KeyPath) -> str:
    from bot_bottle.sidecar.git_gate.config import username_problem  # the gate's own rule

    username = r.string(raw, kp)
    problem = username_problem(username)
    if problem:
        # Not shown: a token is sometimes written where the user name goes.
        raise r.fail(kp, f"the HTTPS user name {problem} (the value is not shown)")
    return username


def _repos(r: _Reader, raw: Any, kp: KeyPath) -> tuple[GitRepo, ...]:
    repos_map = r.mapping(raw, kp, "a mapping of repo names to their upstream")
    repos = [r.attempt(lambda name=name, item=item: _repo(r, kp + (name,), name, item), None)
             for name, item in repos_map.items()]
    return tuple(repo for repo in repos if repo is not None)


def _repo(r: _Reader, rkp: KeyPath, name: Any, item: Any) -> GitRepo:
    r.not_a_token(str(name), rkp, "a repo name", is_key=True)
    if not NAME_RE.match(str(name)):
        raise r.fail(rkp, "a repo name may hold letters, digits, '.', '_' and '-'")
    if isinstance(item, str):
        item = {"url": item}
    repo = r.mapping(item, rkp, "a repo: an upstream URL, or a mapping with 'url'")
    r.keys(repo, rkp, ("url", "ssh_key", "known_hosts", "token_ref", "username"), "a git-gate repo")
    if "url" not in repo:
        raise r.fail(rkp, "a repo needs 'url' (its upstream, SSH or HTTPS)")
    url = r.string(repo["url"], rkp + ("url",)).strip()
    _refuse_url_credentials(r, url, rkp + ("url",))
    if not _GIT_URL_RE.match(url):
        shown = "the URL (not shown)" if may_hold_credential(url) else repr(url)
        raise r.fail(rkp + ("url",), f"{shown} is not an SSH (git@host:path, ssh://) or HTTPS git URL")
    _check_repo_host(r, url, rkp + ("url",))
    ssh_key = r.string(repo["ssh_key"], rkp + ("ssh_key",)) if "ssh_key" in repo else None
    if ssh_key is not None:
        # The plan shows this path: the key itself pasted in here would be printed with it.
        r.not_a_token(ssh_key, rkp + ("ssh_key",), "the path of the SSH key file",
                      hint="save the key in a file (e.g. ~/.ssh/bot_bottle_deploy_key) and write its path here")
    known_hosts = r.string(repo["known_hosts"], rkp + ("known_hosts",)) if "known_hosts" in repo else None
    if known_hosts is not None:
        r.not_a_token(known_hosts, rkp + ("known_hosts",), "a known_hosts line (the host's public key)")
    token_ref = r.secret_ref(repo["token_ref"], rkp + ("token_ref",)) if "token_ref" in repo else None
    username = _repo_username(r, repo["username"], rkp + ("username",)) if "username" in repo else None
    is_https = url.startswith(("https://", "http://"))
    if ssh_key and is_https:
        raise r.fail(rkp + ("ssh_key",), "an SSH key is used with an SSH URL; an HTTPS URL takes 'token_ref'")
    if token_ref and not is_https:
        raise r.fail(rkp + ("token_ref",), "'token_ref' is used with an HTTPS URL; an SSH URL takes 'ssh_key'")
    if token_ref and not url.startswith("https://"):
        # The gate sends the token as a Basic Authorization header: over http:// it would cross
        # the network in clear, readable (and reusable) by anything on the way.
        raise r.fail(rkp + ("token_ref",), "'token_ref' needs an https:// URL; over http:// the token would be "
                                           "sent in clear", hint="write the repo's https:// URL")
    if not is_https and not ssh_key:
        # The gate's ssh refuses unknown host keys and has no identity of its own: every fetch
        # would fail at launch, far from this line.
        raise r.fail(rkp, "an SSH upstream needs 'ssh_key' (the key the gate uses upstream) and 'known_hosts' "
                          "(the pinned host key line); a public repo can use its HTTPS URL instead")
    if known_hosts and is_https:
        raise r.fail(rkp + ("known_hosts",), "'known_hosts' pins an SSH host key; an HTTPS URL does not use it")
    if ssh_key and not known_hosts:
        raise r.fail(rkp, "an SSH upstream needs 'known_hosts' (the pinned host key line); unknown host keys are refused")
    return GitRepo(
        name=str(name),
        url=url,
        origin=r.origin(rkp),
        ssh_key=ssh_key,
        known_hosts=known_hosts,
        token_ref=token_ref,
        username=username,
    )


def _git_gate(r: _Reader, raw: Any, allowed: tuple[str, ...]) -> tuple[GitUser, tuple[GitRepo, ...]]:
    kp: KeyPath = ("git-gate",)
    gate = r.mapping(raw, kp, "a mapping with " + " and/or ".join(f"'{a}'" for a in allowed))
    r.attempt(lambda: r.keys(gate, kp, allowed, "git-gate"), None)
    user = r.attempt(lambda: _git_user(r, gate["user"], kp + ("user",)), GitUser()) if "user" in gate else GitUser()
    repos = r.attempt(lambda: _repos(r, gate["repos"], kp + ("repos",)), ()) if "repos" in gate else ()
    return user, repos


# ----------------------------------------------------------------------------- provider


def _provider(r: _Reader, raw: Any, contrib_dir: Path | None) -> Provider:
    kp: KeyPath = ("agent_provider",)
    prov = r.mapping(raw, kp, "a mapping with 'template', 'dockerfile' and/or 'auth_token'")
    r.keys(prov, kp, ("template", "dockerfile", "auth_token"), "agent_provider")
    template = None
    if "template" in prov:
        template = r.string(prov["template"], kp + ("template",))
        if template not in BUILTIN_TEMPLATES:
            r.not_a_token(template, kp + ("template",), "a template name")
            plugin = contrib_dir / template if contrib_dir is not None and NAME_RE.match(template) else None
            if plugin is None or not plugin.is_dir():
                where = f" or a plugin folder {plugin}" if plugin is not None else ""
                raise r.fail(
                    kp + ("template",),
                    f"unknown template {_quoted(template)}; {did_you_mean(template, BUILTIN_TEMPLATES)}"
                    f"expected one of: {', '.join(BUILTIN_TEMPLATES)}{where}",
                )
    dockerfile = None
    if "dockerfile" in prov:
        raw_path = r.string(prov["dockerfile"], kp + ("dockerfile",))
        r.not_a_token(raw_path, kp + ("dockerfile",), "a Dockerfile's path")
        dockerfile = Path(raw_path).expanduser()
        if not dockerfile.is_absolute():
            dockerfile = r.doc.path.parent / dockerfile
        if dockerfile.is_dir():
            raise r.fail(kp + ("dockerfile",), f"{dockerfile} is a folder; name the Dockerfile in it")
        if not dockerfile.is_file():
            raise r.fail(kp + ("dockerfile",), f"no such file: {dockerfile}")
    auth_token = (r.secret_ref(prov["auth_token"], kp + ("auth_token",), example=_provider_token_example(template))
                  if "auth_token" in prov else None)
    return Provider(
        template=template,
        dockerfile=dockerfile,
        auth_token=auth_token,
        template_origin=r.origin(kp + ("template",)) if template else None,
        dockerfile_origin=r.origin(kp + ("dockerfile",)) if dockerfile else None,
        auth_token_origin=r.origin(kp + ("auth_token",)) if auth_token else None,
    )


def _provider_token_example(template: str | None) -> str:
    """The variable a hint suggests for the provider's API key: the built-in provider's own
    (``ANTHROPIC_API_KEY`` for claude, the default), a made-up one for a plugin."""
    from bot_bottle import providers

    builtin = providers.BUILTIN.get(template or "claude")
    return builtin.default_auth_token if builtin is not None else "MY_PROVIDER_API_KEY"


# ------------------------------------------------------------------------------ files


def _extends(r: _Reader, raw: Any) -> tuple[tuple[str, Origin], ...]:
    names = r.string_list(raw, ("extends",), single_ok=True)
    if isinstance(raw, str):
        origins = [r.origin(("extends",))]
    else:
        origins = [r.origin(("extends", i)) for i in range(len(names))]
    out = []
    for index, name in enumerate(names):
        kp: KeyPath = ("extends",) if isinstance(raw, str) else ("extends", index)
        r.not_a_token(name, kp, "a bottle name")
        if not NAME_RE.match(name):
            raise r.fail(kp, f"{_quoted(name)} is not a bottle name")
        out.append((name, origins[index]))
    return tuple(out)


def bottle_file(doc: Document, *, contrib_dir: Path | None = None) -> BottleFile:
    """Validate a bottle file's frontmatter."""
    r = _Reader(doc)
    data = doc.data
    if "bottle" in data:
        raise r.fail(
            ("bottle",),
            "this looks like an agent file (it names a bottle), but it lives in a bottles folder",
            hint="agent files belong in ~/.bot-bottle/agents/ or ./.bot-bottle/agents/",
        )
    r.attempt(lambda: r.keys(data, (), BOTTLE_KEYS, "a bottle file"), None)

    def section(key: str, read: Callable[[Any], T], default: T) -> T:
        return r.attempt(lambda: read(data[key]), default) if key in data else default

    extends = section("extends", lambda raw: _extends(r, raw), ())
    env = section("env", lambda raw: _env(r, raw), ())
    log, routes = section("egress", lambda raw: _egress(r, raw), (None, ()))
    user, repos = section("git-gate", lambda raw: _git_gate(r, raw, ("user", "repos")), (GitUser(), ()))
    supervise = section("supervise", lambda raw: (r.boolean(raw, ("supervise",)), r.origin(("supervise",))), None)
    clipboard = section("terminal", lambda raw: _terminal(r, raw), None)
    provider = section("agent_provider", lambda raw: _provider(r, raw, contrib_dir), Provider())
    description = section("description", lambda raw: _description(r, raw), "")
    if not description:
        description = r.attempt(lambda: _body_description(doc), "")
    r.finish()
    return BottleFile(
        name=doc.path.stem,
        path=doc.path,
        extends=extends,
        env=env,
        egress_log=log,
        routes=routes,
        git_user=user,
        repos=repos,
        supervise=supervise,
        clipboard=clipboard,
        provider=provider,
        description=description,
    )


def agent_file(doc: Document, origin: Literal["home", "cwd"]) -> AgentFile:
    """Validate an agent file's frontmatter; its body is the system prompt."""
    r = _Reader(doc)
    data = doc.data
    bottle_only = [key for key in data if key in BOTTLE_KEYS and key not in AGENT_KEYS]
    if bottle_only:
        raise r.fail(
            (bottle_only[0],),
            "bottle settings in an agent file; a bottle is defined only in ~/.bot-bottle/bottles/<name>.md",
            hint="move these keys into a bottle file and name that bottle here with 'bottle: NAME'",
        )
    r.attempt(lambda: r.keys(data, (), AGENT_KEYS, "an agent file"), None)
    bottle = r.attempt(lambda: _agent_bottle(r, doc), "")
    if isinstance(data.get("description"), str):  # other types are passed through unread, as before
        r.attempt(lambda: _description(r, data["description"]), "")
    skills = r.attempt(lambda: _skills(r, data["skills"]), []) if "skills" in data else []
    user = r.attempt(lambda: _git_gate(r, data["git-gate"], ("user",))[0], GitUser()) if "git-gate" in data else GitUser()
    r.attempt(lambda: _prompt_holds_no_token(doc), None)
    r.finish()
    passthrough: dict[str, str | None] = {}
    for key in ("color", "model", "description"):
        value = doc.as_written((key,), data.get(key))
        passthrough[key] = str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    return AgentFile(
        name=doc.path.stem,
        path=doc.path,
        origin=origin,
        bottle=bottle,
        bottle_origin=r.origin(("bottle",)),
        skills=tuple(dict.fromkeys(skills)),
        skills_origin=r.origin(("skills",)) if skills else None,
        git_user=user,
        prompt=doc.body.strip("\n"),
        color=passthrough["color"],
        model=passthrough["model"],
        description=passthrough["description"],
    )


# How to write about a token without writing one: the detectors cannot tell a documentation
# example (GitHub's ghp_16C7e42F..., jwt.io's sample) from a live token, and neither can the proxy.
_WRITE_INSTEAD = ("describe the token instead of quoting one (e.g. 'a GitHub token: ghp_ then 36 letters and "
                  "digits'), or write a placeholder such as <token> or ghp_...")

_DESCRIPTION_HINT = ("a description is plain text, kept and shown as written; say what this is for, "
                     f"{_WRITE_INSTEAD}, and keep a credential in a host variable that a route's auth or env names")


def _description(r: _Reader, raw: Any) -> str:
    """A bottle's or agent's ``description``: any text but a token, which would be shown with it."""
    description = r.string(raw, ("description",), allow_empty=True)
    # Placed where the token is written: in a block ('|', '>') that is lines below the key.
    itself = token_itself(description)
    if itself is not None:
        start, end, name = itself
        raise r.fail_within(("description",), description, (start, end), f"this is a token itself ({name}){{at}}, not "
                            "a description; the value is not shown", hint=_DESCRIPTION_HINT)
    found = token_in_prose(description)
    if found is not None:
        start, end, name = found
        raise r.fail_within(("description",), description, (start, end),
                            _TOKEN_IN_PROSE.format(name=name, where="the description", at="{at}"),
                            hint=_DESCRIPTION_HINT)
    return description


def _at_column(column: int | None) -> str:
    return "" if column is None else f" at column {column}"


# A token anywhere in text that is shown (a description, a system prompt), not only one that is
# most of it: ``info``, ``list`` and the plan would print it. ``at`` names the column.
_TOKEN_IN_PROSE = ("{where} holds{at} what looks like a live token ({name}), which would be shown with it; it is "
                   "refused even if it is a documentation example, as the egress proxy would block it; the value is "
                   "not shown")

# The prompt also goes out in every request to the model, where the proxy's DLP blocks the same
# formats: a look-alike that is no credential (a documentation example) would stop the agent there.
_TOKEN_IN_PROMPT = ("the system prompt holds{at} what looks like a live token ({name}); the egress proxy blocks "
                    "every request to the model that carries one, even if it is a documentation example, so the "
                    "agent would be stopped at its first request; the value is not shown")
_PROMPT_HINT = (f"the body is the agent's system prompt, sent with every request to the model and shown by 'info' "
                f"and the plan: {_WRITE_INSTEAD}; a credential the agent needs belongs in a host variable that a "
                "route's auth or env names")


def _prompt_holds_no_token(doc: Document) -> None:
    """Refuse a live-looking token anywhere in an agent's system prompt (its body), at its line.
    Words about tokens (``ghp_`` prefixes, ``ghp_****``, ``sk-ant-...``) are not one."""
    found = token_in_prose(doc.body)
    if found is None:
        return
    offset, _end, name = found
    line, column = doc.place_in_body(offset)
    raise ManifestError(_TOKEN_IN_PROMPT.format(name=name, at=_at_column(column)), path=doc.path, line=line,
                        column=column, key="prompt", hint=_PROMPT_HINT)


_BODY_DESCRIPTION_HINT = ("with no 'description' key the body's first paragraph is the bottle's description, kept and "
                          f"shown as written; open the body with what this bottle is for, {_WRITE_INSTEAD}, and keep "
                          "a credential in a host variable that a route's auth or env names")


def _body_description(doc: Document) -> str:
    """A bottle's description when its frontmatter sets none: the body's first paragraph. It is
    kept and shown as the key's would be, so a token there is refused the same way, at its line."""
    paragraph = doc.body.strip().split("\n\n")[0].strip()
    if len(paragraph) < 16:  # shorter than any token format: not worth importing the catalogue
        return paragraph
    itself = token_itself(paragraph)
    found = token_in_prose(paragraph) if itself is None else itself
    if found is None:
        return paragraph
    start, _end, name = found
    line, column = doc.place_in_body(len(doc.body) - len(doc.body.lstrip()) + start)  # the paragraph opens the body
    if itself is None:
        message = _TOKEN_IN_PROSE.format(name=name, where="the body's first paragraph (the description)",
                                         at=_at_column(column))
    else:
        message = (f"the body's first paragraph is a token itself ({name}){_at_column(column)}, not a description; "
                   "the value is not shown")
    raise ManifestError(message, path=doc.path, line=line, column=column, key="description",
                        hint=_BODY_DESCRIPTION_HINT)


def _agent_bottle(r: _Reader, doc: Document) -> str:
    if "bottle" not in doc.data:
        raise ManifestError(
            "an agent file needs 'bottle: NAME' naming a bottle in ~/.bot-bottle/bottles/",
            path=doc.path,
            line=doc.frontmatter_line,
            key="bottle",
        )
    bottle = r.string(doc.data["bottle"], ("bottle",))
    r.not_a_token(bottle, ("bottle",), "a bottle name")
    if not NAME_RE.match(bottle):
        raise r.fail(("bottle",), f"{_quoted(bottle)} is not a bottle name")
    return bottle


def _skills(r: _Reader, raw: Any) -> list[str]:
    skills = r.string_list(raw, ("skills",), single_ok=True)
    for index, skill in enumerate(skills):
        r.not_a_token(skill, ("skills", index), "a skill folder name")
    bad = [r.fail(("skills", index), f"{_quoted(skill)} is not a skill folder name")
           for index, skill in enumerate(skills) if not NAME_RE.match(skill)]
    if bad:
        raise gathered(bad)
    return skills
