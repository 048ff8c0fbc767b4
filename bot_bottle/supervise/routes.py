"""Where an approved egress route is kept beyond the running proxy.

- ``<state>/approved_routes.json``: ``{"routes": [<policy v2 route>, ...]}``, the routes the
  operator granted to this bottle, which the launcher merges into the policy on ``resume``
  (``bot_bottle.backend.sidecar_config.read_approved_routes`` reads it). Written atomically; a
  route already there is not added twice.
- The bottle's manifest (``~/.bot-bottle/bottles/<bottle>.md``), only when the operator asks:
  the route is appended to ``egress.routes`` as one YAML flow line, leaving every other line
  (comments included) as it was. The result is validated like ``bot-bottle edit`` does before
  the file is replaced; a manifest this cannot edit safely is refused with the line to add.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bot_bottle.backend.sidecar_config import APPROVED_ROUTES_FILE as APPROVED_ROUTES
from bot_bottle.errors import BotBottleError

_TOP_EGRESS = re.compile(r"^egress:\s*(#.*)?$")
_ROUTES_KEY = re.compile(r"^(\s+)routes:\s*(\[\s*\])?\s*(#.*)?$")


class ManifestEditError(BotBottleError):
    """The manifest could not be changed safely; nothing was written."""


# -- state -------------------------------------------------------------------------------------


def read_approved(state_path: Path) -> list[dict[str, Any]]:
    """The bottle's approved routes, read the way the launcher reads them."""
    from bot_bottle.backend.sidecar_config import read_approved_routes

    return read_approved_routes(state_path)


def add_approved(state_path: Path, route: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Append ``route`` to the bottle's approved routes; return (before, after)."""
    before = read_approved(state_path)
    after = before if dict(route) in before else [*before, dict(route)]
    if after is not before:
        _write_atomic(state_path / APPROVED_ROUTES, json.dumps({"routes": after}, indent=2, sort_keys=True) + "\n")
    return before, after


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- the manifest ------------------------------------------------------------------------------


def route_line(route: Mapping[str, Any]) -> str:
    """The route as one YAML flow mapping: ``{host: docs.example, ports: [443]}``."""
    text = yaml.safe_dump(dict(route), default_flow_style=True, sort_keys=False, width=10_000)
    return text.strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def append_route_text(text: str, route: Mapping[str, Any], *, path: Path, note: str = "") -> str:
    """``text`` (a whole manifest) with ``route`` appended to its ``egress.routes``."""
    from bot_bottle.manifest import frontmatter

    frontmatter.split(text, path)  # a file without frontmatter is the manifest loader's error
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    close = next(i for i in range(1, len(lines)) if lines[i].rstrip("\r\n").rstrip() in ("---", "..."))
    yaml_lines = [ln.rstrip("\r\n") for ln in lines[1:close]]
    item = route_line(route) + (f"  # {note}" if note else "")
    manual = f"add this under egress.routes by hand: - {route_line(route)}"

    egress_at = next((i for i, ln in enumerate(yaml_lines) if _TOP_EGRESS.match(ln)), None)
    if egress_at is None:
        if any(ln.startswith("egress:") for ln in yaml_lines):
            raise ManifestEditError(f"{path}: egress is written inline; not edited", hint=manual)
        new = [*yaml_lines, "egress:", "  routes:", f"    - {item}"]
    else:
        end = egress_at + 1
        while end < len(yaml_lines) and (not _content(yaml_lines[end]) or _indent(yaml_lines[end]) > 0):
            end += 1
        block = range(egress_at + 1, end)
        child = next((_indent(yaml_lines[i]) for i in block if _content(yaml_lines[i])), 2)
        routes_at = next((i for i in block if _ROUTES_KEY.match(yaml_lines[i]) and _indent(yaml_lines[i]) == child), None)
        if routes_at is None:
            if any(yaml_lines[i].strip().startswith("routes:") for i in block):
                raise ManifestEditError(f"{path}: egress.routes is written inline; not edited", hint=manual)
            pad = " " * child
            new = [*yaml_lines[: egress_at + 1], f"{pad}routes:", f"{pad}  - {item}", *yaml_lines[egress_at + 1:]]
        else:
            m = _ROUTES_KEY.match(yaml_lines[routes_at])
            assert m is not None
            head = yaml_lines[routes_at]
            if m.group(2):  # "routes: []": becomes a block list with the one route
                head = f"{m.group(1)}routes:" + (f"  {m.group(3)}" if m.group(3) else "")
            items = [i for i in range(routes_at + 1, end) if _content(yaml_lines[i])]
            item_indent = _indent(yaml_lines[items[0]]) if items and yaml_lines[items[0]].lstrip().startswith("-") else child + 2
            last = routes_at
            for i in range(routes_at + 1, end):
                if not _content(yaml_lines[i]):
                    continue
                ind = _indent(yaml_lines[i])
                if ind < item_indent or (ind == item_indent and not yaml_lines[i].lstrip().startswith("-")):
                    break
                last = i
            new = [*yaml_lines[:routes_at], head, *yaml_lines[routes_at + 1: last + 1],
                   f"{' ' * item_indent}- {item}", *yaml_lines[last + 1:]]
    data = yaml.safe_load("\n".join(new) + "\n")
    routes = ((data or {}).get("egress") or {}).get("routes") if isinstance(data, dict) else None
    if not isinstance(routes, list) or dict(route) not in routes:
        raise ManifestEditError(f"{path}: could not place the route in egress.routes safely; not edited", hint=manual)
    return lines[0] + newline.join(new) + newline + "".join(lines[close:])


def save_to_manifest(layout: Any, bottle: str, route: Mapping[str, Any], *, note: str = "") -> tuple[Path, str, str]:
    """Append ``route`` to bottle ``bottle``'s manifest if the result is valid; return
    (path, old text, new text). Nothing is written when it is not."""
    from bot_bottle.manifest import validate

    path = layout.bottles_dir / f"{bottle}.md"
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestEditError(f"no manifest for bottle {bottle!r} at {path}") from None
    new = append_route_text(old, route, path=path, note=note or time.strftime("approved %Y-%m-%d in bot-bottle supervise"))
    report = validate(layout, overrides={path: new})
    mine = [e for e in report.errors if e.path is None or Path(e.path) == path]
    if mine:
        raise ManifestEditError(f"{path}: the manifest with the route would not be valid: {mine[0]}",
                                hint=f"add this under egress.routes by hand: - {route_line(route)}")
    _write_atomic(path, new)
    return path, old, new
