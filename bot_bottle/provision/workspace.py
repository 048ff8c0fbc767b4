"""Copy the user's working tree into the bottle (``start --cwd``), owned by the agent user."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from bot_bottle.backend import Bottle
from bot_bottle.errors import BotBottleError


# Folders and files that hold the user's own credentials: a working tree holding them at its top
# would hand them to the agent, which is what a bottle exists to prevent.
CREDENTIAL_ENTRIES = (".ssh", ".aws", ".gnupg", ".netrc", ".docker", ".kube", ".config/gcloud", ".bot-bottle",
                      ".git-credentials", ".pypirc")
# Dotenv files hold a project's secrets by convention; these suffixes name the committed,
# value-free templates of one instead.
DOTENV_TEMPLATES = frozenset({"example", "sample", "template", "tmpl", "tpl", "dist"})
# A project's .npmrc is often committed and holds only settings; one with an auth key holds a
# token, unless its value only names an environment variable (``${NPM_TOKEN}``).
_NPMRC_AUTH = re.compile(r"^\s*[^#;\s]*(?:_authToken|_auth|_password|password)\s*=\s*(?!\$\{[^}]*\}\s*$)\S",
                         re.IGNORECASE | re.MULTILINE)
# A URL with a password (``https://user:secret@host``) or a token as its user name
# (``https://ghp_...@github.com``); a plain user name (``ssh://git@host``) is no secret.
_SECRET_USERINFO = r"[a-z][a-z0-9+.-]*://(?:[^/@\s:]*:[^/@\s]+|(?:gh[pousr]_|github_pat_|glpat-)[^/@\s]*)@"
# Such a URL in git's config: a remote's (push) URL or a ``[url "..."]`` rewrite section; and the
# header that ``actions/checkout`` leaves in a clone.
_GIT_URL_SECRET = re.compile(
    rf"^\s*(?:(?:url|pushurl)\s*=\s*|\[url\s+\"){_SECRET_USERINFO}",
    re.IGNORECASE | re.MULTILINE,
)
_GIT_AUTH_HEADER = re.compile(r"^\s*extraheader\s*=\s*\S*\s*authorization\s*:", re.IGNORECASE | re.MULTILINE)
# Only the start of a file is read: credentials sit in small config files, and a huge file named
# like one must not slow the plan down.
_READ_LIMIT = 256 * 1024
GIT_CONFIG_WITH_CREDENTIALS = ".git/config (credentials in a remote URL or header)"


def refused_tree(cwd: Path, home: Path) -> str | None:
    """Why ``cwd`` may not be copied into a bottle at all, or None. Both paths resolved."""
    if cwd == Path(cwd.anchor) or cwd == home or home.is_relative_to(cwd):
        return (f"the working tree {cwd} is {'your home folder' if cwd == home else 'a folder holding your home'}: "
                "copying it would put your SSH keys, cloud credentials and bot-bottle's own state into the "
                "bottle; give the project's folder instead")
    return None


def credential_entries(cwd: Path) -> list[str]:
    """The credential folders and files at the top of the working tree (copied in with it).

    Named only: what they hold is never part of the answer.
    """
    found = [name for name in CREDENTIAL_ENTRIES if os.path.lexists(cwd / name)]
    found += _dotenv_files(cwd)
    if _holds(cwd / ".npmrc", _NPMRC_AUTH):
        found.append(".npmrc")
    if _holds(cwd / ".git" / "config", _GIT_URL_SECRET, _GIT_AUTH_HEADER):
        found.append(GIT_CONFIG_WITH_CREDENTIALS)
    return found


def _dotenv_files(cwd: Path) -> list[str]:
    """``.env`` and ``.env.<name>`` files at the top of the tree, templates (``.env.example``)
    aside. Folders are not: ``.env`` is also a common name for a Python virtual environment."""
    try:
        names = os.listdir(cwd)
    except OSError:
        return []
    dotenv = (name for name in names
              if name == ".env" or (name.startswith(".env.") and name[5:].lower() not in DOTENV_TEMPLATES))
    return sorted(name for name in dotenv if not os.path.isdir(cwd / name))


def _holds(path: Path, *patterns: re.Pattern[str]) -> bool:
    """Does the regular file ``path`` match any of ``patterns``? A link is copied as a link, so
    what it points to never enters the bottle: only a file itself is read."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with path.open("rb") as fh:
            text = fh.read(_READ_LIMIT).decode("utf-8", errors="replace")
    except OSError:
        return False
    return any(pattern.search(text) for pattern in patterns)


def tree_size(source: Path) -> tuple[int, int]:
    """(files, bytes) under ``source``; links count as links, never as what they point to."""
    files = size = 0
    for folder, dirs, names in os.walk(source):
        for name in names:
            try:
                size += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue  # gone meanwhile, or unreadable: the copy itself says so
            files += 1
    return files, size


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def copy_in(bottle: Bottle, source: Path, workdir: str, progress: Callable[[str], None] | None = None) -> None:
    if not source.is_dir():
        raise BotBottleError(f"--cwd {source}: not a folder")
    if progress is not None:
        # A big tree takes a while: say how big, so a long copy does not look like a hang.
        files, size = tree_size(source)
        progress(f"copying the working tree {source} into the bottle ({human_bytes(size)} in {files:,} files)")
    # One archive whose top folder is named like the workspace unpacks onto it, merging.
    bottle.cp_in(source, workdir)
