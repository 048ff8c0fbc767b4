"""Manifests: one Markdown file per bottle or agent, YAML frontmatter for the structured part."""

from __future__ import annotations

from bot_bottle.manifest.errors import ManifestError, ManifestErrors, NotFoundError
from bot_bottle.manifest.load import Catalog, FileRef, Layout, Session, ValidationReport, discover, load, validate
from bot_bottle.manifest.model import Bottle, EnvEntry, GitRepo, GitUser, Manifest, Route

__all__ = [
    "Bottle",
    "Catalog",
    "EnvEntry",
    "FileRef",
    "GitRepo",
    "GitUser",
    "Layout",
    "Manifest",
    "ManifestError",
    "ManifestErrors",
    "NotFoundError",
    "Route",
    "Session",
    "ValidationReport",
    "discover",
    "load",
    "validate",
]
