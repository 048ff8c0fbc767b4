"""Host names and IP literals, normalised the one way both the policy and the proxy compare them.

A host that reaches a comparison is lower case, has no trailing dot, no brackets and is in its
ASCII (IDNA) form; an IP literal is in its canonical text form. Anything else is refused rather
than guessed at, because a lenient parser here is a bypass.
"""

from __future__ import annotations

import ipaddress
import re
import socket

# A DNS label in ASCII form (IDNA already applied). Underscores appear in real service names.
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# The WHATWG URL parser (browsers, many HTTP clients) reads a host whose last label is numeric as
# IPv4, so "10.1", "0x7f.1" or "2130706433" must never be mistaken for a name.
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


class HostError(ValueError):
    """A host name that cannot be normalised."""


class HostSpellingError(HostError):
    """A non-ASCII host name that IDNA 2003 folds into a name spelt otherwise (fullwidth letters
    or dots, compatibility forms, characters it drops, ``ß``). Python's resolver folds it so, but a
    server reading the bytes, an IDNA 2008 library or a TLS peer does not: it names no one host."""

    def __init__(self, raw: str, folded: str) -> None:
        super().__init__(f"{raw!r} is spelt with characters IDNA folds into another name ({folded})")
        self.folded = folded


def normalise_host(raw: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets, IDNA-encoded; raise ``HostError`` if invalid.

    IP literals come back in canonical form (``127.1`` becomes ``127.0.0.1``), names come back as
    ASCII labels.
    """
    host = raw.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise HostError("empty host")
    ip = ip_literal(host)
    if ip is not None:
        return ip
    if not host.isascii():
        host = _ascii_form(raw, host)
    host = host.lower()
    if len(host) > 253:
        raise HostError(f"{raw!r} is longer than 253 characters")
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise HostError(f"{raw!r} is not a valid host name")
    return host


def _ascii_form(raw: str, host: str) -> str:
    """The ASCII (xn--) form of a non-ASCII name, which must be the canonical U-label form of
    that name: what mitmproxy gives for a CONNECT to an ``xn--`` name, and what reads back the
    same from its ASCII form. Anything IDNA would fold first is refused (``HostSpellingError``)."""
    try:
        ascii_form = host.encode("idna").decode("ascii")
        canonical = ascii_form.encode("ascii").decode("idna")
    except UnicodeError as exc:
        raise HostError(f"{raw!r} is not a valid host name") from exc
    if canonical.lower() != host.lower():
        raise HostSpellingError(raw, ascii_form.lower())
    return ascii_form


def ip_literal(host: str) -> str | None:
    """The canonical address if ``host`` is (or would be read as) an IP literal, else None.

    Covers IPv6 (with or without brackets or zone), dotted IPv4 and the legacy IPv4 forms that
    ``inet_aton`` and URL parsers accept (``127.1``, ``0x7f000001``, ``2130706433``).
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if text.endswith("."):
        text = text[:-1]
    if ":" in text:
        try:
            addr = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(addr)
    try:
        return str(ipaddress.IPv4Address(socket.inet_aton(text)))
    except (OSError, ValueError):
        pass
    last = text.lower().rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.match(last):
        # Numeric last label that inet_aton still rejects (e.g. an out-of-range part): not a
        # usable name either, and some parser somewhere would treat it as an address.
        return text.lower()
    return None


def is_wildcard(pattern: str) -> bool:
    return pattern.startswith("*.")


def host_matches(pattern: str, host: str) -> bool:
    """Does normalised ``host`` match normalised route ``pattern``?

    ``*.example.com`` matches any name below ``example.com`` (``a.example.com``,
    ``a.b.example.com``) but neither ``example.com`` itself nor ``evilexample.com``.
    """
    if is_wildcard(pattern):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


# Reserved names for the bundle's own services (git-gate, supervise, ...): the proxy routes
# "<name>.bottle.internal" to that service on the sidecar's loopback; no DNS ever sees them.
INTERNAL_DOMAIN = "bottle.internal"


def internal_service_name(host: str) -> str | None:
    """The service a normalised ``host`` names under the reserved domain, or None outside it.

    ``git-gate.bottle.internal`` gives ``git-gate``; the bare domain and deeper names
    (``a.git-gate.bottle.internal``) give ``""``: reserved, but naming no service.
    """
    if host == INTERNAL_DOMAIN:
        return ""
    if not host.endswith("." + INTERNAL_DOMAIN):
        return None
    label = host[: -len(INTERNAL_DOMAIN) - 1]
    return "" if "." in label else label


def is_sidecar_local(host: str) -> bool:
    """Would connecting to normalised ``host`` reach the sidecar itself?

    Loopback and unspecified addresses, and ``localhost`` names, lead to the bundle's own
    daemons (the proxy, internal services): only the reserved internal names may go there.
    """
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = ip_literal(host)
    if ip is None:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False  # a numeric name no parser agrees on; refused elsewhere as an IP literal
    if isinstance(addr, ipaddress.IPv4Address) and addr in ipaddress.IPv4Network("0.0.0.0/8"):
        return True
    return addr.is_loopback or addr.is_unspecified


# Cloud instance-metadata endpoints outside the link-local range (AWS's IPv6 one, Alibaba's).
METADATA_ADDRESSES = frozenset({"fd00:ec2::254", "100.100.100.200"})


def forbidden_upstream(ip: str) -> str | None:
    """Why the proxy must not connect to address ``ip`` whatever name led there, or None.

    A route names a host; its DNS may answer with any address (a wildcard route under a domain
    someone else controls, or an answer that changes between two lookups). The sidecar itself,
    link-local addresses (where clouds serve instance credentials), the metadata endpoints and
    addresses no host owns are never an upstream.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "an address that cannot be read"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if is_sidecar_local(str(addr)):
        return "the sidecar itself"
    if str(addr) in METADATA_ADDRESSES or addr.is_link_local:
        return "a link-local or cloud metadata address"
    if addr.is_multicast or addr.is_reserved:  # 240.0.0.0/4 holds the broadcast address too
        return "a multicast, broadcast or reserved address"
    return None


# A label of a host a route names, as written: ASCII letters, digits and '-', not first or last.
# Stricter than ``_LABEL`` (no '_', no Unicode): what a manifest may hold.
_ROUTE_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _legacy_ipv4(host: str) -> bool:
    """Whether ``host`` is an IPv4 address in a form ``inet_aton`` (and so most resolvers) takes
    other than a plain dotted quad: one to four numbers, decimal, octal or hex."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


def route_host_problem(raw: str) -> str | None:
    """Why ``raw`` cannot be a route host (a name, ``*.name`` or an IP literal), or None.

    The one rule for a host a manifest route names, the host of a git-gate repo URL, and a route
    the operator grants at runtime, so a grant can always be saved to the manifest. ``raw`` is
    read as written, apart from case, surrounding whitespace and a trailing dot.
    """
    host = raw.strip().lower().rstrip(".")
    if "://" in host:
        return "give the host name only, without a scheme (https://...)"
    if "/" in host:
        return "give the host name only; restrict paths with 'matches: [{paths: [...]}]'"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        if address.is_loopback or address.is_unspecified:
            return "loopback and unspecified addresses are the sidecar's own; they cannot be routes"
        # The proxy never connects to these whatever the policy says: a route would only mislead.
        forbidden = forbidden_upstream(str(address))
        if forbidden:
            return f"{forbidden}: the proxy never connects there, so it cannot be a route"
        return None
    if _legacy_ipv4(host):
        # Resolvers read `127.1`, `0x7f.1`, `017700000001` or `2130706433` as 127.0.0.1.
        return "an IPv4 address in a shortened, hex or octal form; write it as four decimal numbers (a.b.c.d)"
    if host == "localhost" or host.endswith(".localhost"):
        return "'localhost' is the sidecar's own loopback; it cannot be a route"
    if ":" in host:
        return "give the host name only; list allowed ports under 'ports'"
    name = host[2:] if host.startswith("*.") else host
    if "*" in name:
        return "a wildcard is allowed only as the whole first label, as in '*.example.com'"
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_ROUTE_LABEL.match(label) for label in labels):
        if not name.isascii():
            return "not a valid host name (write a non-ASCII name in its ASCII 'xn--' form)"
        return "not a valid host name (letters, digits and '-' between dots)"
    if host.startswith("*.") and len(labels) < 2:
        return "a wildcard must cover a domain with at least two labels, as in '*.example.com'"
    if name == INTERNAL_DOMAIN or name.endswith("." + INTERNAL_DOMAIN):
        return f"names under '.{INTERNAL_DOMAIN}' are reserved for the bottle's own services"
    if host.startswith("*.") and _registry(name):
        return (f"it covers every domain registered under '{name}', a public suffix (a registry, not a site), "
                f"whoever registered them; give the domain you mean, as in '*.example.{name}'")
    if host in METADATA_NAMES:
        bare = "; a service of your own by this name needs its full name" if "." not in host else ""
        return ("a cloud's instance-metadata service (where a VM's credentials are served); the proxy never "
                f"connects there, so it cannot be a route{bare}")
    return None


# Second-level labels under a two-letter country code that are registries, not sites: under
# ``co.uk`` anybody registers a domain (``*.co.uk`` is every company in the UK, not one).
REGISTRY_LABELS = frozenset({"ac", "co", "com", "edu", "go", "gob", "gov", "ltd", "mil", "ne", "net", "nic", "or",
                             "org", "plc", "sch"})

# Names clouds give their instance-metadata service (where a VM's credentials are served): GCE's
# (``metadata`` through the instance's search domain), EC2's and Tencent Cloud's. They resolve to
# link-local addresses the proxy never connects to (``forbidden_upstream``), so a route to one
# can only mislead; outside such a cloud they name nothing.
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal",
                            "metadata.tencentyun.com"})


def _registry(domain: str) -> bool:
    labels = domain.split(".")
    return len(labels) == 2 and len(labels[1]) == 2 and labels[1].isalpha() and labels[0] in REGISTRY_LABELS
