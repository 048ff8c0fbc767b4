"""How proposals, bottles and events read on a screen: pure functions shared by the console and
``bot-bottle supervise --once``."""

from __future__ import annotations

import ipaddress
import json
import re
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Mapping
from typing import Any

import yaml
from rich.cells import cell_len, get_character_cell_size
from rich.style import Style
from rich.text import Text

from bot_bottle.manifest.reach import REGISTRY_LABELS, SHARED_DOMAINS
from bot_bottle.providers import BUILTIN as BUILTIN_PROVIDERS
from bot_bottle.supervise.store import DamagedRow, ProposalRow, not_writable
from bot_bottle.terminal import one_line, printable  # noqa: F401 - the console and --once use view.printable


def plain(text: object) -> Text:
    """A table cell or line of agent-written text: no markup read, nothing unprintable."""
    return Text(printable(text))


def bottle_names(labels: Mapping[str, str | None]) -> dict[str, str]:
    """How each bottle reads in the proposals table's bottle cell, by bottle id: its label (its
    id when it has none), with the id added to every name that would read like another's.

    ``labels`` maps every bottle the operator may see (running, or with a pending proposal) to
    its label. Two bottles started from one manifest share a label, and colour is all that set
    them apart: an operator who cannot see the colour could not tell which bottle asks. Names are
    compared as they read (letter case, fullwidth forms), not as they are stored."""
    shown = {bottle: one_line(label or bottle) for bottle, label in labels.items()}
    # Again while names still meet: a label may itself read like another's name with its id added.
    for _ in range(len(shown)):
        readings = Counter(_reads_as(name) for name in shown.values())
        twice = {bottle for bottle, name in shown.items()
                 if readings[_reads_as(name)] > 1 and name != one_line(bottle)}  # an id names itself
        if not twice:
            break
        shown.update({bottle: f"{shown[bottle]} ({one_line(bottle)})" for bottle in twice})
    return shown


def _reads_as(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


def duration(seconds: float | None) -> str:
    """``42s``, ``5m03s``, ``2h07m``, ``3d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def summary(kind: str, payload: Mapping[str, Any]) -> str:
    """One line saying what a proposal asks for."""
    if kind == "egress":
        ports = payload.get("ports") or []
        text = _host_before_port(escaped(payload.get("host", "?")), bool(ports))
        if ports:
            text += ":" + ",".join(map(str, ports))
        if payload.get("methods"):
            text += " " + ",".join(payload["methods"])
        if payload.get("paths"):
            text += " " + " ".join(map(escaped, payload["paths"]))
        return text
    if kind == "capability":
        packages = ", ".join(payload.get("packages") or []) or "(no packages)"
        return f"install {packages}" + (" + Dockerfile lines" if (payload.get("dockerfile") or "").strip() else "")
    if kind == "push-exception":
        old, new = str(payload.get("old", "")), str(payload.get("new", ""))
        detectors = ", ".join(payload.get("detectors") or [])
        finding = f" (finding {payload['finding']}{': ' + detectors if detectors else ''})" if payload.get("finding") else ""
        return f"push {_repo(payload)} {_ref(payload)} {old[:8]}..{new[:8]}{finding}"
    if kind == "token-use":
        detectors = ", ".join(payload.get("detectors") or [])
        return (f"{escaped(payload.get('method', '?'))} {escaped(payload.get('host', '?'))}"
                f"{escaped(payload.get('path', ''))} ({detectors})")
    return json.dumps(dict(payload), sort_keys=True)


REQUEST_CELL_WIDTH = 44  # the request column of the proposals table: the rest is in the detail


def request_cell(kind: str, payload: Mapping[str, Any], width: int = REQUEST_CELL_WIDTH) -> Text:
    """The proposals table's request cell: short, with what it leaves out counted.

    An egress request shows its first path and ``(+N paths)``; anything else is cut at
    ``width`` with an ellipsis. A proposal with a warning starts with ``!``: the detail has it.
    """
    text = Text()
    if warnings(kind, payload):
        text.append("! ", style="bold yellow")
        width -= 2  # the mark is in the width: a cell wider than its column loses its end on screen
    if kind == "egress":
        text.append(_egress_cell(payload, width))
    else:
        text.append(cut(one_line(summary(kind, payload)), width))
    return text


def _egress_cell(payload: Mapping[str, Any], width: int) -> str:
    """An egress request in ``width`` characters: its host whole when it fits, else the host's
    end (whose name owns it: ``api.github.com.evil.example`` is evil.example's), never its
    start; then as much of the rest (ports, methods, first path) as fits."""
    paths = list(payload.get("paths") or [])
    more = f" (+{len(paths) - 1} paths)" if len(paths) > 1 else ""
    host = one_line(_host_before_port(escaped(payload.get("host", "?")), bool(payload.get("ports"))))
    host_cells = cell_len(host)
    if host_cells > width - len(more) and host_cells <= width:
        more = ""  # the host whole before the count (the detail has every path)
    room = max(8, width - len(more))
    rest = one_line(summary("egress", {**payload, "host": "", "paths": paths[:1]}))
    if host_cells >= room:
        # A wildcard stays one when cut: "*.…" never reads as a single host.
        return ("*." + _cut_start(host[2:], room - 2) if host.startswith("*.") else _cut_start(host, room)) + more
    return host + cut(rest, room - host_cells) + more


def _host_before_port(host: str, ported: bool) -> str:
    """``host`` as written before ``:PORT``: an IPv6 address in brackets, since
    ``2606:4700::1111:443`` is another address, not ``2606:4700::1111`` on port 443."""
    return f"[{host}]" if ported and ":" in host and not host.startswith("[") else host


QUOTED_WIDTH = 240


def quoted(text: str, width: int = QUOTED_WIDTH, *, whole: str = "") -> str:
    """A request quoted in a question (reject, approve and save): one line, cut at ``width``, so
    the question, its ``[y/n]`` and the reason's input stay on an 80x24 screen (the detail has it
    all). ``whole`` (the host: see ``target``) is never cut, even past ``width``: a question
    quoting ``api.github.com.aaaa…`` would have the operator say yes to a route to
    ``….evil.example`` they were not shown."""
    line = one_line(text)
    if cell_len(line) <= width:
        return line
    at = line.find(one_line(whole)) if whole else -1
    if at < 0:
        return cut(line, width)
    end = at + len(one_line(whole))
    return line[:end] + cut(line[end:], max(width - cell_len(line[:end]), 8))


def target(kind: str, payload: Mapping[str, Any]) -> str:
    """What a proposal's question must quote whole: an egress route's or a held request's host,
    a push's ref ("" for a capability, whose packages the detail lists)."""
    if kind in ("egress", "token-use"):
        return escaped(payload.get("host", ""))
    if kind == "push-exception":
        return _ref(payload)
    return ""


def cut_middle(text: str, width: int) -> str:
    """``text`` in ``width`` terminal cells, its middle cut: its start and its end (a bottle's id,
    added to a name that reads like another's) both stay. Cells, not characters: a CJK or
    fullwidth character takes two, and a name measured by characters overflows its column."""
    if cell_len(text) <= width:
        return text
    head = _head(text, max(1, (width - 1) // 3))  # the end gets more: it holds the id
    return head + "…" + _tail(text, width - 1 - cell_len(head))


def cut(text: str, width: int) -> str:
    """``text`` in ``width`` terminal cells, its end shown as cut."""
    return text if cell_len(text) <= width else _head(text, width - 1) + "…"


def _cut_start(text: str, width: int) -> str:
    """``text``'s last ``width`` cells, its start shown as cut."""
    return text if cell_len(text) <= width else "…" + _tail(text, width - 1)


def _head(text: str, cells: int) -> str:
    """The longest start of ``text`` that takes at most ``cells`` cells."""
    used = 0
    for index, char in enumerate(text):
        used += get_character_cell_size(char)
        if used > cells:
            return text[:index]
    return text


def _tail(text: str, cells: int) -> str:
    """The longest end of ``text`` that takes at most ``cells`` cells."""
    used = 0
    for index in range(len(text) - 1, -1, -1):
        used += get_character_cell_size(text[index])
        if used > cells:
            return text[index + 1:]
    return text


def time_left(created_at: float, timeout_s: float | None, now: float) -> str:
    """How long the agent still waits for a decision, for the detail's first line."""
    asked = f"asked {duration(now - created_at)} ago"
    if timeout_s is None:
        return f"{asked}, no time limit"
    left = created_at + timeout_s - now
    if left <= 0:
        return f"{asked}; its wait has ended (a decision now will not reach it)"
    return f"{duration(left)} left to decide ({asked})"


def _ports(ports: list[Any]) -> str:
    return ("port " if len(ports) == 1 else "ports ") + ", ".join(map(str, ports))


def grants(kind: str, payload: Mapping[str, Any], *, backend: str | None = None) -> str:
    """What approving the proposal as it stands grants, in one line: the same effect
    ``apply.decide`` has (keep the two in step)."""
    if kind == "egress":
        host = escaped(payload.get("host", "?"))
        where = f"every host under {host[2:]}" if host.startswith("*.") else host
        ports = list(payload.get("ports") or [80, 443])  # channel.egress_route's default
        methods = payload.get("methods") or []
        paths = payload.get("paths") or []
        what = (f"{where} on {_ports(ports)}, "
                + (f"methods {', '.join(map(str, methods))}" if methods else "every method") + ", "
                + ("every path" if not paths or any(p in ("/", "/*") for p in paths)
                   else f"{len(paths)} path{'s' if len(paths) > 1 else ''} ({' '.join(map(escaped, paths[:3]))}"
                        + (" ..." if len(paths) > 3 else "") + ")"))
        return (f"{what}; now, and on every resume of this bottle (kept in its state); "
                "A also adds it to the manifest, for every bottle started from it")
    if kind == "token-use":
        route = escaped(payload.get("route", "?"))
        detectors = ", ".join(map(str, payload.get("detectors") or [])) or "?"
        return (f"every request through route {route} (any of its hosts, methods and paths) that trips only "
                f"{detectors} goes out as it is, not only this one, until the bottle's sidecar stops")
    if kind == "push-exception":
        old, new = str(payload.get("old", "")), str(payload.get("new", ""))
        return (f"this one push of {_repo(payload)} {_ref(payload)} {old[:8]}..{new[:8]} "
                f"(finding {payload.get('finding', '?')}) passes the gate's secret scan once and goes upstream")
    if kind == "capability":
        if (payload.get("dockerfile") or "").strip():
            return "nothing: Dockerfile lines are not applied, approving fails (modify it to name packages only)"
        if backend == "smolmachines":
            return "nothing: capability changes are not supported on smolmachines, approving fails"
        packages = ", ".join(map(str, payload.get("packages") or [])) or "(no packages)"
        return (f"the agent's container is committed and a new image built with {packages}; if its "
                "`bot-bottle start` still runs, the bottle restarts on it at once (every process in it ends, "
                "files are kept), otherwise `bot-bottle resume` starts it")
    return "see the request"


def warnings(kind: str, payload: Mapping[str, Any]) -> list[str]:
    """What the operator should not miss in a proposal, one line each (none for most)."""
    out = []
    if kind == "egress":
        out += host_warnings(str(payload.get("host") or ""))
    if kind == "egress" and (spelled := _path_warning(payload.get("paths") or [])):
        out.append(spelled)
    if kind == "token-use" and (spelled := _path_warning([payload.get("host", ""), payload.get("path", "")],
                                                         what="request")):
        out.append(spelled)
    if kind == "egress" and any(p in ("/", "/*") for p in payload.get("paths") or []):
        # Easy to overlook in a list of narrower paths, and it makes them all moot.
        out.append("the paths include '/': every path on this host")
    if kind == "push-exception" and (lookalike := _ref_warning(str(payload.get("ref", "")))):
        out.append(lookalike)
    if kind == "capability" and (patterns := _package_patterns(payload.get("packages") or [])):
        out.append(patterns)
    if kind == "token-use" and (secrets := _own_secrets(payload)):
        out.append(secrets)
    if kind == "push-exception" and (secrets := _pushed_secrets(payload)):
        out.append(secrets)
    return out


def added_warnings(kind: str, payload: Mapping[str, Any], change: Mapping[str, Any]) -> list[str]:
    """The warnings the operator's change has that the proposal as asked did not. None for a
    change of the wrong shape (``paths: 5``): deciding refuses it and says why."""
    try:
        before = warnings(kind, payload)
        return [warning for warning in warnings(kind, change) if warning not in before]
    except (TypeError, ValueError, AttributeError):
        return []


_KNOWN_SECRET = "known-secret:"  # the DLP detector of the bottle's own secret values (``dlp_adapter.label``)


def _own_secrets(payload: Mapping[str, Any]) -> str | None:
    """The bottle's own secrets a held request carries, said plainly.

    A token format can match a test fixture, which is what an agent asking to release a held
    request says; a ``known-secret:NAME`` finding cannot: it is that secret's value (in some
    encoding), so the "false positive" story never fits it, and approving lets the agent send
    the secret itself, in any encoding, through that route."""
    names = _secret_names(payload)
    if not names:
        return None
    return (f"the request holds the value of the bottle's own secret {', '.join(names)} (exactly, or encoded; "
            f"no lookalike or test fixture): approving lets the agent send it through route "
            f"{escaped(payload.get('route', '?'))}, in any encoding, until the sidecar stops")


def _pushed_secrets(payload: Mapping[str, Any]) -> str | None:
    """The bottle's own secrets the git-gate found in a push, said plainly: as for a held request
    (``_own_secrets``), an agent asking for the exception may call it a test fixture, which a
    ``known-secret:NAME`` finding never is."""
    names = _secret_names(payload)
    if not names:
        return None
    return (f"the push holds the value of the bottle's own secret {', '.join(names)} (exactly or encoded; "
            f"no test fixture): approving sends it to {_repo(payload)}'s remote for good")


def _secret_names(payload: Mapping[str, Any]) -> list[str]:
    """The names of the bottle's own secrets among a payload's detectors, each once."""
    return list(dict.fromkeys(str(d)[len(_KNOWN_SECRET):].split(" (", 1)[0] for d in payload.get("detectors") or []
                              if str(d).startswith(_KNOWN_SECRET)))


# What apt-get reads as a regular expression in a name it finds no package of exactly: a '.'
# (the only such character a Debian package name may hold; libglib2.0-0 needs it, so it is not
# refused). An ask for "node.js", where no package has that name, makes apt fetch every package
# whose name matches (over 200 in Debian 12); the build's last step checks that each name asked
# for is installed as such (``registry.install_dockerfile``), so that build fails, but the
# operator should know what the name means before approving it.
_APT_PATTERN_CHARS = frozenset(".")


def _package_patterns(packages: list[Any]) -> str | None:
    """A capability's package names that apt may read as a pattern, not a name."""
    named = [str(p) for p in packages if _APT_PATTERN_CHARS & set(str(p))]
    if not named:
        return None
    return (f"{', '.join(named)}: a name with '.' that no package has exactly is read by apt as a pattern "
            "('.' any character; 'node.js' matches over 200 packages), and the build then fails; approve "
            "only names you know exist")


def escaped(text: object) -> str:
    """Part of a request's target (a host, a path, a ref) as the console shows it: as written
    when it is ASCII, else with every other character as an escape (``/w\\u0438ki``). A
    lookalike letter (Cyrillic, fullwidth) never reads as the one it imitates, and a
    right-to-left letter never makes a bidi-aware terminal reorder the text around it."""
    text = str(text)
    return text if text.isascii() else text.encode("ascii", "backslashreplace").decode("ascii")


def _repo(payload: Mapping[str, Any]) -> str:
    """A push-exception's repository as the console shows it (``escaped``): the agent names it,
    and a name spelled with lookalike letters must not read as another repository's."""
    return escaped(payload.get("repo", "?"))


def _ref(payload: Mapping[str, Any]) -> str:
    """A push-exception's ref as the console shows it (``escaped``), so a ref spelled with
    lookalike letters never reads as the branch it imitates."""
    return escaped(payload.get("ref", "?"))


_REF_CHARS_NAMED = 3  # a warning names this many of a text's non-ASCII characters


def _non_ascii_named(text: str) -> str:
    """The first few characters of ``text`` that are not ASCII, by code point and name."""
    others = list(dict.fromkeys(char for char in text if not char.isascii()))
    named = ", ".join(f"U+{ord(char):04X} {unicodedata.name(char, 'unnamed character')}"
                      for char in others[:_REF_CHARS_NAMED])
    if len(others) > _REF_CHARS_NAMED:
        named += f" and {len(others) - _REF_CHARS_NAMED} more"
    return named


def _path_warning(texts: list[Any], *, what: str = "path") -> str | None:
    """Paths (or a held request's host and path) with characters beyond ASCII, which the
    console shows escaped: said once, with how the first of them reads as written."""
    spelled = [text for text in map(str, texts) if not text.isascii()]
    if not spelled:
        return None
    first = spelled[0]
    more = f" (and {len(spelled) - 1} more like it)" if len(spelled) > 1 else ""
    exactly = ("approving grants exactly what is spelled here with escapes" if what == "path" else
               "the request held is the one spelled here with escapes")
    return (f"the {what} {escaped(first)}{more} has characters that are not ASCII ({_non_ascii_named(first)}): "
            f"as written it reads as '{printable(first)}', which can imitate another {what} (lookalike letters) "
            f"or reorder the text around it (right-to-left letters); {exactly}")


def _ref_warning(ref: str) -> str | None:
    """A ref with characters beyond ASCII: Cyrillic or fullwidth letters, zero-width or bidi
    characters can make ``refs/heads/main`` of a ref that is not it (as ``_idn_warning`` says
    of an ``xn--`` host)."""
    if ref.isascii():
        return None
    named = _non_ascii_named(ref)
    return (f"the ref {_ref({'ref': ref})} has characters that are not ASCII ({named}): as written it reads as "
            f"'{printable(ref)}', which can imitate another ref; approving grants a push to exactly the ref "
            "spelled here with escapes")


# Names that lead to this machine or its networks, never to the internet: Docker's names for the
# host, and the suffixes local networks use (RFC 6762 ``.local``, RFC 8375 ``home.arpa``, the
# ``.internal`` ICANN keeps for private use, and the usual home/office ones; ``.ip`` is no
# top-level domain at all, so a name under it, like Telekom's ``speedport.ip``, is one a local
# resolver makes up).
_LOCAL_SUFFIXES: tuple[str, ...] = ("internal", "local", "localdomain", "lan", "home", "corp", "intranet", "private",
                                    "home.arpa", "ip")
# Names a home or office router answers for itself, whatever the public DNS says (AVM's FRITZ!Box,
# Vodafone's EasyBox, Netgear, TP-Link, ASUS, Linksys; Telekom's is under ``.ip``): through the
# operator's router they lead to its admin page or a box on the LAN.
_ROUTER_NAMES: tuple[str, ...] = ("fritz.box", "fritz.nas", "fritz.repeater", "easy.box",
                                  "routerlogin.net", "routerlogin.com", "mywifiext.net", "mywifiext.com",
                                  "tplinkwifi.net", "tplinklogin.net", "tplinkmodem.net", "tplinkrepeater.net",
                                  "router.asus.com", "asusrouter.com", "linksyssmartwifi.com")
# Domains whose names resolve to whatever address they spell (``10-0-0-1.nip.io`` is 10.0.0.1):
# a route to one may lead into this machine's own networks.
ANY_ADDRESS_DOMAINS = ("nip.io", "sslip.io", "xip.io", "traefik.me", "localtest.me", "lvh.me", "vcap.me",
                       "lacolhost.com")


def host_warnings(host: str) -> list[str]:
    """Why approving a route to ``host`` may grant more than the name suggests: a machine on the
    operator's own networks, or (a wildcard) sites anybody can create. The host is the proposal's,
    already in the manifest's form (``channel._host``)."""
    host = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        # The proxy connects to private addresses: the sidecar's network leads to this machine
        # (Docker's gateway) and whatever it can reach.
        return [] if address.is_global else [
            f"{host} is a private or local address: the bottle would reach a machine on this host's own "
            "networks (this machine itself, its containers, the LAN), not the internet"]
    name = host.removeprefix("*.")
    out = []
    if local := _local_name_warning(host, name):
        out.append(local)
    if host.startswith("*.") and (wide := _wildcard_warning(name)):
        out.append(wide)
    if idn := _idn_warning(host, name):
        out.append(idn)
    if lookalike := _provider_lookalike_warning(host, name):
        out.append(lookalike)
    return out


def _idn_warning(host: str, name: str) -> str | None:
    """An ``xn--`` (punycode) label: the route is for the ASCII name as written, but a browser,
    a link or the agent's own text shows it decoded, where it can pass for another name
    (``xn--80ak6aa92e.com`` reads as "аррӏе.com", all Cyrillic)."""
    labels = name.split(".")
    if not any(label.startswith("xn--") for label in labels):
        return None
    try:
        shown = ".".join(label.encode("ascii").decode("idna") if label.startswith("xn--") else label
                         for label in labels)
    except UnicodeError:
        return (f"{host} has an 'xn--' label that does not decode to an internationalised name; "
                "check that it is the host you mean")
    return (f"{host} is an internationalised name: decoded, it reads as '{shown}', which can imitate "
            "another name; approving grants exactly the 'xn--' name shown here")


def _under(name: str, domains: tuple[str, ...]) -> str | None:
    return next((d for d in domains if name == d or name.endswith("." + d)), None)


def _local_name_warning(host: str, name: str) -> str | None:
    if "." not in name:
        return (f"{host} is a single-label name: it is resolved through this machine's DNS search domains, "
                "so it leads to a machine on your own network")
    if _under(name, ("docker.internal",)):
        return f"{host} is Docker's name for this machine itself: the bottle would reach its services"
    if _under(name, _LOCAL_SUFFIXES):
        return f"{host} is a local network name: it leads to machines on this host's own networks, not the internet"
    if router := _under(name, _ROUTER_NAMES):
        return (f"{host} is a name a home or office router answers for itself ({router}): it leads to the router "
                "or a machine on this host's own network, not the internet")
    if spelled := _under(name, ANY_ADDRESS_DOMAINS):
        return (f"{host} is under {spelled}, whose names resolve to whatever address they spell: it can lead "
                "to this machine or its networks")
    return None


def _wildcard_warning(name: str) -> str | None:
    if shared := _under(name, SHARED_DOMAINS):
        return (f"every host under {name}: anybody can create a site there ({shared}), so a wildcard lets the "
                "bottle send to sites an attacker controls")
    labels = name.split(".")
    if len(labels) == 2 and len(labels[1]) == 2 and labels[0] in REGISTRY_LABELS:
        return f"every host under {name}: a registry of domains, so every site registered there, anybody's"
    return None


# Domains of hosts agents are routinely granted (the built-in providers' API hosts are added
# below): a host that starts with one of them but lies elsewhere (``api.github.com.evil.example``)
# is read by its start, while its end says whose it is. Matched as whole labels, or before or
# after a hyphen, so ``github.community`` and ``mygithub.com`` are not taken for look-alikes.
_WELL_KNOWN_DOMAINS: tuple[str, ...] = (
    "github.com", "githubusercontent.com", "gitlab.com", "bitbucket.org", "anthropic.com", "openai.com",
    "pypi.org", "pythonhosted.org", "npmjs.org", "npmjs.com", "yarnpkg.com", "crates.io", "golang.org",
    "docker.io", "docker.com", "huggingface.co", "googleapis.com", "amazonaws.com", "azure.com",
)


def _well_known_domains() -> tuple[str, ...]:
    providers = (registrable(p.api_host) for p in BUILTIN_PROVIDERS.values() if p.api_host)
    return tuple(dict.fromkeys((*_WELL_KNOWN_DOMAINS, *providers)))


def registrable(name: str) -> str:
    """The part of a host name its owner registered: its last two labels, or three under a
    registry such as ``co.uk`` or ``com.au`` (``REGISTRY_LABELS``, not the public suffix list:
    enough for a warning)."""
    labels = name.split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-1].isalpha() and labels[-2] in REGISTRY_LABELS:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


_WELL_KNOWN_AT = re.compile("|".join(rf"(?:^|[.-]){re.escape(domain)}[.-]" for domain in _well_known_domains()))


def _provider_lookalike_warning(host: str, name: str) -> str | None:
    """A host with a well-known domain's name in it but not at its end
    (``api.github.com.evil.example``, ``github.com-login.example``): whose it is, said plainly."""
    match = _WELL_KNOWN_AT.search(name)
    if match is None:
        return None
    known = match.group().strip(".-")
    if _under(name, (known,)):
        return None
    lead = f"{escaped(host)} is not a host of {known}: a name belongs to its end, not its start, and this one is"
    if platform := _under(name, SHARED_DOMAINS):
        return (f"{lead} a site under {platform}, where anybody can make one; approving opens a route to "
                "whoever made it")
    owner = escaped(registrable(name))
    return f"{lead} under {owner}; approving opens a route to whoever owns {owner}"


def terminal_held(records: list[Any]) -> int:
    """How many sequences a bottle's terminal filter held back, over its terminal entries."""
    total = 0
    for record in records:
        count = record.get("total") if isinstance(record, dict) else None
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            total += count
    return total


def agent_says(justification: str) -> Text:
    """The agent's justification for the console's detail pane: labelled as the agent's, shown
    as written (nothing unprintable) but never styled like the console's own lines."""
    text = Text("agent says:\n", style="bold")
    text.append(printable(justification or "(no justification)"), style="italic")
    return text


def proposal_record(row: ProposalRow, *, label: str | None = None, now: float) -> dict[str, Any]:
    """A pending proposal for ``--once --format json``: stable keys, no secrets (payloads carry none)."""
    return {
        "bottle": row.bottle_id,
        "label": label,
        "id": row.id,
        "kind": row.kind,
        "summary": summary(row.kind, row.payload),
        "warnings": warnings(row.kind, row.payload),
        "justification": row.justification,
        "payload": row.payload,
        "created_at": row.created_at,
        "age_s": round(max(0.0, now - row.created_at), 1),
        "timeout_s": row.timeout_s,
        "status": row.status,
    }


def styled(text: str, color: str | None) -> Text:
    """``text`` in the bottle's colour when it is one Rich knows (manifests may say anything)."""
    if color:
        try:
            return Text(text, style=Style.parse(color))
        except Exception:  # noqa: BLE001 - an unknown colour name is shown plain
            pass
    return Text(text)


def editable(kind: str, payload: Mapping[str, Any]) -> str:
    """The text the operator edits to modify a proposal: comments, the payload as YAML, comments.

    Editors read settings from a file's first and last lines (Vim's modelines: 5 of each by
    default). The payload is the agent's text (a capability's Dockerfile lines are free text),
    so it goes between five comment lines on each side, where no editor takes it for settings."""
    head = (
        f"# Modify this {kind} proposal, save and quit; the agent is told the change.\n"
        "# YAML or JSON. Empty the file (or leave it unchanged) to cancel.\n"
        "# Below: the proposal as the agent asked for it. Saved, it is what approving grants,\n"
        "# once it is checked like any proposal (a change that is not valid grants nothing).\n"
        "# Lines starting with '#' are comments.\n"
    )
    tail = (
        "# Above: the proposal. Your change and the agent's original are both kept in the\n"
        "# audit log.\n"
        "# To cancel: empty the file, or quit without saving.\n"
        "# These comment lines keep the proposal's own text away from the first and last\n"
        "# lines of the file, where editors look for settings (Vim's modelines).\n"
    )
    return head + yaml.safe_dump(dict(payload), sort_keys=False, default_flow_style=False) + tail


def parse_edited(text: str) -> dict[str, Any] | None:
    """The edited payload, or None when the operator emptied the file (cancelled)."""
    try:
        data = yaml.safe_load(text)  # JSON is YAML too; comments alone load as None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"the edited proposal is not valid YAML{where}") from None
    except RecursionError:
        # Thousands of nested brackets: the parser's recursion gives out before any check does.
        raise ValueError("the edited proposal is nested too deeply to be a proposal") from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("the edited proposal must be a mapping of fields (like the original)")
    return data


def damaged_store(path: object, exc: BaseException) -> str:
    """A supervise database that opened but whose content cannot be read (a damaged page, a row
    that is not what bot-bottle wrote), said as that, not as a bug. SQLite's operational errors
    (locked, I/O, read-only) are not damage: they are named as they are."""
    where = f"{path}: " if path else ""
    if is_damage(exc):
        what = "an entry in it is damaged" if isinstance(exc, (ValueError, DamagedRow)) else "it is damaged"
        return f"{where}cannot read the supervise database: {what} ({exc})"
    if not_writable(exc):
        # Read fine, refused on the first write: a read-only file system or folder, not damage.
        return f"{where}cannot write the supervise database ({exc})"
    return f"{where}cannot read the supervise database ({exc})"


def is_damage(exc: BaseException) -> bool:
    """A damaged file or row (the fix: move the file aside), not a lock or an I/O error."""
    return isinstance(exc, (ValueError, DamagedRow)) or (isinstance(exc, sqlite3.DatabaseError)
                                           and not isinstance(exc, sqlite3.OperationalError))
