"""The sidecar's secrets file, and how a route's credential becomes a header.

``secrets.json`` (mode 600, sidecar only) holds ``{"credentials": {token_ref: value},
"known_secrets": {name: value}}``. Credentials are what the proxy injects for routes with
``auth``; known secrets are every secret value the DLP engine must recognise. Nothing here ever
puts a value into an exception, a log line or a repr: errors name the ``token_ref`` only.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot_bottle.sidecar.egress.policy import Policy, RouteAuth

# Headers that carry credentials to well-known APIs. The agent's own copies are removed on
# routes with auth, so the upstream only ever sees the credential the proxy injects: one left
# in place could make the upstream act as the agent's account instead (GitLab reads
# PRIVATE-TOKEN before Authorization, Vault and Consul their own token header before a bearer
# token, Django REST Framework a session cookie before basic auth).
CREDENTIAL_HEADERS = (
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "private-token",
    "job-token", "deploy-token", "x-auth-token", "x-access-token", "x-api-token", "api-token",
    "ocp-apim-subscription-key", "cookie", "x-auth-key", "x-vault-token", "x-consul-token",
    "x-nomad-token", "circle-token", "x-jfrog-art-api",
)
# Query parameters through which well-known APIs take a credential instead of a header (OAuth's
# access_token, Doorkeeper's bearer_token, GitLab's private_token and job_token, Google's key,
# Slack's token, Firebase's auth, Azure API Management's subscription-key, Atlassian's jwt),
# by ``param_spelling``. The proxy injects its credential in a header, which some of these take
# precedence over: on a route with auth a request carrying one is refused.
CREDENTIAL_PARAMS = (
    "access_token", "bearer_token", "oauth_token", "private_token", "job_token", "token", "auth_token",
    "api_token", "api_key", "key", "client_secret", "subscription_key", "auth", "jwt",
)
# The fields of a form or JSON body through which servers take a credential, by
# ``param_spelling``. Rails and Grape merge a form's fields and a JSON body's top-level keys into
# the parameters the query fills: GitLab reads ``private_token`` and ``job_token`` there before
# its token headers, Doorkeeper ``access_token`` and ``bearer_token``, OAuth servers
# ``client_secret`` (RFC 6749 client_secret_post), OAuth 1 servers ``oauth_token``. Narrower than
# ``CREDENTIAL_PARAMS``: these names only ever mean "authenticate me as". A body field named
# ``token``, ``key``, ``api_key`` or ``auth`` is often data the API stores (GitLab's integration
# settings carry a third party's ``api_key`` or ``token``, CI variables are values of ``key``),
# so those are left to the agent in a body.
BODY_CREDENTIAL_FIELDS = ("access_token", "bearer_token", "oauth_token", "private_token", "job_token", "client_secret")
_FORBIDDEN = ("\r", "\n", "\x00")


class SecretsError(ValueError):
    """The secrets file is unusable; the message names credentials, never their values."""


@dataclass(frozen=True)
class Secrets:
    # repr=False: a stray print or traceback of this object must not show a value.
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    known_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: Any) -> Secrets:
        if not isinstance(data, dict):
            raise SecretsError("secrets: expected an object")
        unknown = sorted(set(data) - {"credentials", "known_secrets"})
        if unknown:
            raise SecretsError(f"secrets: unknown key {unknown[0]!r}")
        return cls(
            credentials=_string_map(data.get("credentials", {}), "credentials"),
            known_secrets=_string_map(data.get("known_secrets", {}), "known_secrets"),
        )

    @classmethod
    def load(cls, path: str | Path) -> Secrets:
        """Read the file; a missing file is an empty one (a bottle without credentials has none)."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise SecretsError(f"cannot read secrets {file}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # The decoder's message quotes no content, only a position.
            raise SecretsError(f"secrets {file} is not valid JSON (line {exc.lineno})") from None
        return cls.from_dict(data)

    def values(self) -> tuple[str, ...]:
        """Every secret value, longest first (so a scrubber replaces the longer match first)."""
        found = {v for v in (*self.credentials.values(), *self.known_secrets.values()) if v}
        return tuple(sorted(found, key=len, reverse=True))


def check_credentials(policy: Policy, secrets: Secrets) -> None:
    """Raise ``SecretsError`` naming every route credential that is missing or unusable."""
    missing = [ref for ref in policy.token_refs if not secrets.credentials.get(ref)]
    if missing:
        raise SecretsError(
            "the secrets file has no value for credential "
            + ", ".join(repr(ref) for ref in missing)
            + " that routes inject; the host must provide it at launch"
        )
    for route in policy.routes:
        if route.auth is None:
            continue
        value = secrets.credentials[route.auth.token_ref]
        if any(c in value for c in _FORBIDDEN):
            raise SecretsError(f"credential {route.auth.token_ref!r} contains CR, LF or NUL and cannot go in a header")
        if route.auth.scheme == "basic" and ":" not in value:
            raise SecretsError(
                f"credential {route.auth.token_ref!r} is used with scheme 'basic' and must be 'user:password'"
            )


def credential_header(auth: RouteAuth, value: str) -> tuple[str, str]:
    """The header the upstream receives for ``auth`` with credential ``value``."""
    if auth.scheme == "bearer":
        return "Authorization", f"Bearer {value}"
    if auth.scheme == "token":
        return "Authorization", f"token {value}"
    if auth.scheme == "basic":
        return "Authorization", "Basic " + base64.b64encode(value.encode("utf-8")).decode("ascii")
    if auth.scheme == "header" and auth.header:
        return auth.header, value
    raise ValueError(f"auth scheme {auth.scheme!r} cannot be injected")


# Claude Pro/Max subscriptions authenticate with OAuth access tokens (``claude setup-token``
# prints one). The Messages API takes them only as a bearer token together with this beta flag,
# which is what Claude Code itself sends when it runs on such a token; API keys keep x-api-key.
ANTHROPIC_OAUTH_PREFIX = "sk-ant-oat"
ANTHROPIC_OAUTH_BETA = "oauth-2025-04-20"
BETA_HEADER = "anthropic-beta"


def is_anthropic_oauth(value: str) -> bool:
    return value.startswith(ANTHROPIC_OAUTH_PREFIX)


def credential_headers(auth: RouteAuth, value: str, agent_beta: str | None = None) -> list[tuple[str, str]]:
    """Every header the upstream receives for ``auth`` with credential ``value``.

    The token's shape decides, and it is fixed when the sidecar starts (the secrets file is read
    once): an Anthropic OAuth token on an x-api-key or bearer route goes out as ``Authorization:
    Bearer`` with the OAuth beta flag added to whatever ``anthropic-beta`` flags the agent sent
    (``agent_beta``). The agent holds a placeholder either way and never learns which it was.
    """
    oauth_route = auth.scheme == "bearer" or (auth.scheme == "header" and (auth.header or "").lower() == "x-api-key")
    if oauth_route and is_anthropic_oauth(value):
        return [("Authorization", f"Bearer {value}"), (BETA_HEADER, merge_beta(agent_beta, ANTHROPIC_OAUTH_BETA))]
    return [credential_header(auth, value)]


def merge_beta(existing: str | None, flag: str) -> str:
    """``existing`` comma-separated beta flags plus ``flag``, once, order kept."""
    flags = [f.strip() for f in (existing or "").split(",") if f.strip()]
    if flag not in flags:
        flags.append(flag)
    return ",".join(flags)


def headers_to_strip(auth: RouteAuth) -> tuple[str, ...]:
    """Lower-case names of every header the agent may have put a credential in, for this route."""
    if auth.header and auth.header not in CREDENTIAL_HEADERS:
        return (*CREDENTIAL_HEADERS, auth.header)
    return CREDENTIAL_HEADERS


def _spelling(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def is_stripped(name: str, auth: RouteAuth) -> bool:
    """Is a header the agent sent by this name one of ``headers_to_strip``, in any spelling? A
    server that reads headers CGI-style takes ``X_Api_Key`` for ``x-api-key``."""
    return _spelling(name) in _stripped_spellings(auth)


@functools.lru_cache(maxsize=64)
def _stripped_spellings(auth: RouteAuth) -> frozenset[str]:
    # Once per route's auth, not once per header of every request.
    return frozenset(_spelling(strip) for strip in headers_to_strip(auth))


# The characters a parameter's name loses before it is compared: PHP rewrites " " and "." to "_",
# and "access-token", "accessToken" or "access_token" name the same thing to someone.
_PARAM_SEPARATORS = str.maketrans("", "", "_-. ")
_CREDENTIAL_PARAM_SPELLINGS = {name.translate(_PARAM_SEPARATORS): name for name in CREDENTIAL_PARAMS}


def param_spelling(name: str) -> str:
    """A decoded query parameter's name as frameworks may read it: cut at a NUL (PHP) and at an
    array's "[" (``token[]``), without case, spaces, "_", "-" or "."."""
    return name.partition("\0")[0].partition("[")[0].lower().translate(_PARAM_SEPARATORS)


def credential_param(name: str) -> str | None:
    """The ``CREDENTIAL_PARAMS`` entry a decoded parameter name reads as, or None."""
    return _CREDENTIAL_PARAM_SPELLINGS.get(param_spelling(name))


_BODY_FIELD_SPELLINGS = {name.translate(_PARAM_SEPARATORS): name for name in BODY_CREDENTIAL_FIELDS}


def body_credential_field(name: str) -> str | None:
    """The ``BODY_CREDENTIAL_FIELDS`` entry a decoded body field name reads as, or None."""
    return _BODY_FIELD_SPELLINGS.get(param_spelling(name))


def _string_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise SecretsError(f"secrets.{where}: expected an object of name to value")
    out: dict[str, str] = {}
    for name, secret in value.items():
        if not isinstance(name, str) or not isinstance(secret, str):
            raise SecretsError(f"secrets.{where}: {name!r}: expected a string value")
        out[name] = secret
    return out
