"""What a route's host reaches beyond what its name suggests: a registry's every domain, a
hosting platform's every tenant, a cloud's instance-metadata service.

The sidecar's rule (``route_host_problem``) decides whether a host can be a route at all (it
refuses a registry's wildcard and a metadata service's name); these are the manifest's warnings
on top of it, for names that are valid but may not mean what a bottle wants. Hosts reach here
normalised (lower case, no trailing dot).
"""

from __future__ import annotations

# The registries and metadata names are refused by the sidecar's rule itself (a route granted at
# runtime must be one the manifest can hold): only the warnings are the manifest's own.
from bot_bottle.sidecar.egress.hosts import METADATA_NAMES, REGISTRY_LABELS

__all__ = ["METADATA_NAMES", "REGISTRY_LABELS", "SHARED_DOMAINS", "SHARED_ZONES", "wildcard_warning"]

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

# Shared domains whose tenants are named below a service's own zone (``BUCKET.s3.amazonaws.com``,
# ``ID.execute-api.REGION.amazonaws.com``): a wildcard over any zone under them is anybody's too.
# Elsewhere a wildcard one level down (``*.docs.github.io``) is one tenant's own.
SHARED_ZONES = ("amazonaws.com",)


def _shared(domain: str) -> bool:
    return domain in SHARED_DOMAINS or any(domain.endswith("." + zone) for zone in SHARED_ZONES)


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
