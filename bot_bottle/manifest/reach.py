"""What a route's host reaches beyond what its name suggests: a registry's every domain, a
hosting platform's every tenant, a cloud's instance-metadata service.

The sidecar's rule (``route_host_problem``) decides whether a host can be a route at all; these
are the manifest's rules on top of it, for names that are valid but never mean what a bottle
wants. Hosts reach here normalised (lower case, no trailing dot).
"""

from __future__ import annotations

# Second-level labels under a two-letter country code that are registries, not sites: under
# ``co.uk`` anybody registers a domain (``*.co.uk`` is every company in the UK, not one). The
# operator console judges a granted route by the same labels.
REGISTRY_LABELS = frozenset({"ac", "co", "com", "edu", "go", "gob", "gov", "ltd", "mil", "ne", "net", "nic", "or",
                             "org", "plc", "sch"})

# Domains under which anybody can make a site, a bucket or a tunnel of their own. A wildcard over
# one is a warning, not an error: it names the platform plainly and is often what a bottle needs
# (downloads from ``*.githubusercontent.com``, a CDN's ``*.cloudfront.net``), but it lets the agent
# send to a site an attacker sets up there.
SHARED_DOMAINS = (
    "github.io", "githubusercontent.com", "gitlab.io", "pages.dev", "workers.dev", "r2.dev", "vercel.app",
    "netlify.app", "herokuapp.com", "appspot.com", "web.app", "firebaseapp.com", "azurewebsites.net",
    "blob.core.windows.net", "cloudfront.net", "amazonaws.com", "onrender.com", "fly.dev", "glitch.me",
    "ngrok.io", "ngrok-free.app", "trycloudflare.com", "repl.co", "replit.app", "surge.sh", "deno.dev",
    "run.app", "storage.googleapis.com", "pythonanywhere.com", "bitbucket.io", "readthedocs.io",
)

# Names clouds give their instance-metadata service (where a VM's credentials are served): GCE's
# (``metadata`` through the instance's search domain), EC2's and Tencent Cloud's. They resolve to
# link-local addresses the proxy never connects to, so a route to one can only mislead; outside
# such a cloud they name nothing.
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal",
                            "metadata.tencentyun.com"})


def _registry(domain: str) -> bool:
    labels = domain.split(".")
    return len(labels) == 2 and len(labels[1]) == 2 and labels[1].isalpha() and labels[0] in REGISTRY_LABELS


# Shared domains whose tenants are named below a service's own zone (``BUCKET.s3.amazonaws.com``,
# ``ID.execute-api.REGION.amazonaws.com``): a wildcard over any zone under them is anybody's too.
# Elsewhere a wildcard one level down (``*.docs.github.io``) is one tenant's own.
SHARED_ZONES = ("amazonaws.com",)


def _shared(domain: str) -> bool:
    return domain in SHARED_DOMAINS or any(domain.endswith("." + zone) for zone in SHARED_ZONES)


def metadata_problem(host: str) -> str | None:
    """Why ``host`` (a route's or a repo's upstream) names a cloud metadata service, or None."""
    if host not in METADATA_NAMES:
        return None
    hint = "; a service of your own by this name needs its full name" if "." not in host else ""
    return (f"{host!r} names a cloud's instance-metadata service (where a VM's credentials are served); the proxy "
            f"never connects there, so it cannot be a route{hint}")


def wildcard_problem(host: str) -> str | None:
    """Why wildcard ``host`` is refused: it covers a registry's every domain (``*.co.uk``)."""
    if not host.startswith("*."):
        return None
    domain = host[2:]
    if _registry(domain):
        return (f"{host!r} covers every domain registered under {domain!r}, a public suffix (a registry, not a "
                "site): every site there, whoever registered it; give the domain you mean, as in "
                f"'*.example.{domain}'")
    return None


def wildcard_warning(host: str) -> str | None:
    """What wildcard ``host`` opens that its author may not mean, or None: a hosting platform's
    every tenant, or a name of a metadata service (the proxy still refuses the address)."""
    if not host.startswith("*."):
        return None
    domain = host[2:]
    if _shared(domain):
        return (f"{host!r} covers every site under {domain}, where anybody can make one: the agent could send "
                "to a site an attacker set up there (DLP still scans what goes out); list the hosts the bottle "
                "needs instead")
    covered = sorted(name for name in METADATA_NAMES if name.endswith("." + domain))
    if covered:
        return (f"{host!r} covers {', '.join(covered)}, a cloud's instance-metadata service; the proxy never "
                "connects to its address, so that part of the route does nothing")
    return None
