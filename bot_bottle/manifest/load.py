"""Find manifest files, fold ``extends``, and load one agent with its effective bottle.

``HOME`` and the working directory are parameters (a ``Layout``), so tests run against
temporary folders. Nothing here prompts, reads host secrets or touches Docker. A plugin provider
a bottle names is loaded (the user's own code, under the home), so a broken one is reported at
the bottle line that names it.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bot_bottle import providers
from bot_bottle.errors import BotBottleError
from bot_bottle.manifest import frontmatter, reach, schema
from bot_bottle.manifest.conceal import may_hold_credential
from bot_bottle.manifest.errors import ManifestError, NotFoundError
from bot_bottle.manifest.model import (
    DEFAULT_EGRESS_LOG,
    AgentFile,
    Bottle,
    BottleFile,
    EnvEntry,
    GitRepo,
    GitUser,
    Manifest,
    Origin,
    Provider,
    Route,
)
from bot_bottle.providers.plugins import PluginError
from bot_bottle.state import not_a_folder, not_a_folder_hint

Kind = Literal["agent", "bottle"]


@dataclass(frozen=True)
class Layout:
    """Where manifests live for one user (``home``) run from one folder (``cwd``)."""

    home: Path
    cwd: Path

    @classmethod
    def from_env(cls, cwd: Path | None = None) -> Layout:
        return cls(home=home_from_env(), cwd=(cwd or Path.cwd()))

    @property
    def home_dir(self) -> Path:
        return self.home / ".bot-bottle"

    @property
    def cwd_dir(self) -> Path:
        return self.cwd / ".bot-bottle"

    @property
    def bottles_dir(self) -> Path:
        return self.home_dir / "bottles"

    @property
    def home_agents_dir(self) -> Path:
        return self.home_dir / "agents"

    @property
    def cwd_agents_dir(self) -> Path:
        return self.cwd_dir / "agents"

    @property
    def cwd_bottles_dir(self) -> Path:
        return self.cwd_dir / "bottles"

    @property
    def contrib_dir(self) -> Path:
        return self.home_dir / "contrib"

    @property
    def state_dir(self) -> Path:
        return self.home_dir / "state"

    @property
    def cwd_is_home(self) -> bool:
        """Run from the home folder itself: the cwd folder is the home folder, not a repo's."""
        try:
            return self.cwd_dir.resolve() == self.home_dir.resolve()
        except OSError:
            return False


_HOME_HINT = "set HOME to your home folder, for example: export HOME=/home/you"


def home_from_env() -> Path:
    """The user's home: ``$HOME`` or, when it is unset, the account's home folder in the user
    database (as ``~`` is found everywhere). An empty or relative HOME is refused: bottles,
    their state and the manifests would land under ``/``, or under whatever folder bot-bottle
    happens to run from."""
    home = os.environ.get("HOME")
    if home is None:
        try:
            return Path.home()
        except (RuntimeError, KeyError):
            raise BotBottleError("HOME is not set, and the user database names no home folder for this user",
                                 hint=_HOME_HINT) from None
    if not home:
        raise BotBottleError("HOME is empty; bot-bottle keeps its files under $HOME/.bot-bottle", hint=_HOME_HINT)
    if not os.path.isabs(home):
        raise BotBottleError(f"HOME is {home!r}, a relative path; it must be an absolute one (bot-bottle keeps "
                             "its files under $HOME/.bot-bottle)", hint=_HOME_HINT)
    return Path(home)


@dataclass(frozen=True)
class FileRef:
    kind: Kind
    name: str
    path: Path
    origin: Literal["home", "cwd"]


@dataclass
class Catalog:
    """Every manifest file that counts, and what was ignored and why."""

    agents: dict[str, FileRef] = field(default_factory=dict)
    bottles: dict[str, FileRef] = field(default_factory=dict)
    # Home agents hidden by a cwd agent of the same name.
    shadowed: dict[str, FileRef] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # Files that cannot count (a name that is not a valid name): reported, never fatal to others.
    invalid: list[ManifestError] = field(default_factory=list)
    # Folders that could not be listed (``discover(strict=False)``): their manifests are unknown.
    unreadable: list[ManifestError] = field(default_factory=list)


def _md_files(folder: Path) -> list[Path]:
    """Every ``*.md`` entry of ``folder``, files or not: one that is not a file is reported by
    ``_checked_name`` (left out silently, it would read as a missing agent or bottle)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".md" and not p.name.startswith("."))


# What a manifest saved under another name tends to end with: a file named so is never read
# (only NAME.md is), and is named where its absence would otherwise puzzle (a missing agent).
_UNREAD_SUFFIXES = frozenset({"", ".md", ".markdown", ".yaml", ".yml", ".txt"})
# The folders manifests are read from, by the kind they hold: one named almost so (``agent/``,
# ``Bottles/``) is a slip, and is named rather than silently skipped.
_FOLDER_SLIPS = {"agent": "agents", "bottle": "bottles"}


def _unread_files(folder: Path) -> list[Path]:
    """Files of ``folder`` that look like manifests but are not read, as they do not end in
    ``.md`` exactly (``coder.MD``, ``coder.yaml``, ``coder``). Hidden files (drafts, an editor's
    swap files) and backups (``coder.md~``) are not manifests anyone meant. A folder that cannot
    be listed has none here: ``discover`` is what reports it."""
    try:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir()
                      if p.suffix != ".md" and p.suffix.lower() in _UNREAD_SUFFIXES
                      and not p.name.startswith(".") and not p.name.endswith("~") and p.is_file())
    except OSError:
        return []


def _slipped_folders(folder: Path) -> list[Path]:
    """Folders of ``folder`` named almost as agents/ or bottles/ (``agent``, ``Bottles``)."""
    try:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.name not in _FOLDER_SLIPS.values()
                      and p.name.lower().rstrip("s") in _FOLDER_SLIPS and p.is_dir())
    except OSError:
        return []


def _unreadable_folder(folder: Path, exc: OSError) -> ManifestError:
    return ManifestError(f"this folder could not be read ({exc.strerror or exc}), so the manifests in it were "
                         "not checked", path=folder,
                         hint="make it readable by this user (and each folder above it searchable)")


def _unread_hint(name: str, folders: Iterable[Path]) -> str | None:
    """The hint for a missing agent or bottle ``name`` whose file is there under another name."""
    for folder in folders:
        for path in _unread_files(folder):
            if path.stem.lower() == name.lower():
                return (f"{path} is not read: a manifest file is named NAME.md; "
                        f"rename it to {folder / (name + '.md')}")
    return None


def _not_a_file(path: Path) -> str | None:
    """Why the entry at ``path`` cannot be read as a manifest file, or None when it can."""
    if path.is_file():
        return None
    if path.is_symlink():
        try:
            target = str(path.readlink())
        except OSError:
            target = "?"
        if _loops(path):
            return f"is a symlink that leads back to itself (to {target}), not a manifest file"
        return f"is a dangling symlink (to {target}, which does not exist or cannot be reached)"
    if path.is_dir():
        return "is a directory, not a manifest file"
    # A FIFO is never opened: reading one would wait for a writer forever.
    return "is not a regular file (a manifest is a Markdown file)"


def _loops(path: Path) -> bool:
    """Whether following the symlink at ``path`` comes back to where it started (ELOOP)."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _checked_name(path: Path) -> str:
    problem = _not_a_file(path)
    if problem is not None:
        raise ManifestError(problem, path=path, hint="replace it with a Markdown file, or remove it")
    name = path.stem
    if not schema.NAME_RE.match(name):
        raise ManifestError(
            f"'{name}' is not a valid name (the file name without .md): letters, digits, '.', '_', '-'",
            path=path,
            line=1,
        )
    return name


def discover(layout: Layout, *, strict: bool = True) -> Catalog:
    """List bottles (home only) and agents (home, then cwd: the cwd one wins on a clash).

    A folder that cannot be listed raises its ``ManifestError`` (what could not be read, and how
    to make it readable: not the hint for a home that cannot be written), or with ``strict`` false
    is kept in ``unreadable`` and the others are listed (``validate`` says which it could not check)."""
    cat = Catalog()

    def listed(folder: Path) -> list[Path]:
        try:
            return _md_files(folder)
        except OSError as exc:
            unreadable = _unreadable_folder(folder, exc)
            if strict:
                raise unreadable from exc
            cat.unreadable.append(unreadable)
            return []

    def named(path: Path) -> str | None:
        try:
            return _checked_name(path)
        except ManifestError as exc:
            cat.invalid.append(exc)
            return None

    for path in listed(layout.bottles_dir):
        if (name := named(path)) is not None:
            cat.bottles[name] = FileRef("bottle", name, path, "home")
    for path in listed(layout.home_agents_dir):
        if (name := named(path)) is not None:
            cat.agents[name] = FileRef("agent", name, path, "home")
    if not layout.cwd_is_home:
        if _ignored_bottles(layout.cwd_bottles_dir):
            cat.warnings.append(
                f"ignoring {layout.cwd_bottles_dir}: bottles are defined only in {layout.bottles_dir}, "
                "so a checked-out repository can never define or redirect one"
            )
        for path in listed(layout.cwd_agents_dir):
            if (name := named(path)) is None:
                continue
            if name in cat.agents:
                cat.shadowed[name] = cat.agents[name]
            cat.agents[name] = FileRef("agent", name, path, "cwd")
    cat.warnings.extend(f"{exc} (file ignored)" for exc in cat.invalid)
    return cat


def _ignored_bottles(folder: Path) -> list[Path]:
    """The bottle files of the working folder, which are never read (only named in a warning).
    One that cannot be listed stops nothing: what it holds would be ignored all the same."""
    try:
        return _md_files(folder)
    except OSError:
        return []


class _Loader:
    """Reads and caches files for one operation; ``overrides`` replace file text (for ``edit``)."""

    def __init__(self, layout: Layout, catalog: Catalog, overrides: Mapping[Path, str] | None = None) -> None:
        self.layout = layout
        self.catalog = catalog
        self.overrides = {Path(p): t for p, t in (overrides or {}).items()}
        # A file's own errors depend on its text alone, so they are kept too: a broken parent of
        # a long ``extends`` chain is read once, not once per bottle below it.
        self._bottle_files: dict[str, BottleFile | ManifestError] = {}
        self._bottles: dict[str, Bottle] = {}

    def _doc(self, path: Path) -> frontmatter.Document:
        return frontmatter.read(path, self.overrides.get(path))

    def bottle_file(self, name: str) -> BottleFile:
        if name not in self._bottle_files:
            ref = self.catalog.bottles[name]
            try:
                self._bottle_files[name] = schema.bottle_file(self._doc(ref.path), contrib_dir=self.layout.contrib_dir)
            except ManifestError as exc:
                self._bottle_files[name] = exc
        read = self._bottle_files[name]
        if isinstance(read, ManifestError):
            raise read.with_traceback(None)  # raised again and again: its traceback must not grow
        return read

    def agent_file(self, name: str) -> AgentFile:
        ref = self.catalog.agents[name]
        return schema.agent_file(self._doc(ref.path), ref.origin)

    def bottle(self, name: str, *, stack: tuple[str, ...] = (), wanted_at: Origin | None = None) -> Bottle:
        if name in self._bottles:
            return self._bottles[name]
        if name not in self.catalog.bottles:
            raise _missing_bottle(name, self.layout, self.catalog, wanted_at, via="extends" if stack else "bottle")
        own = self.bottle_file(name)
        parents: list[Bottle] = []
        for parent, origin in own.extends:
            if parent == name or parent in stack:
                raise self._cycle((*stack, name), parent, origin)
            parents.append(self.bottle(parent, stack=(*stack, name), wanted_at=origin))
        effective = fold(own, parents)
        self._bottles[name] = effective
        return effective

    def _cycle(self, walk: tuple[str, ...], parent: str, closing: Origin) -> ExtendsCycleError:
        """The error for ``walk`` (the bottles followed so far) whose last one extends ``parent``,
        already on it, at ``closing``: the walk as followed, then every step of the cycle with
        the file and line that writes it, as one fix may be at any of them."""
        members = walk[walk.index(parent):]
        steps = []
        for index, member in enumerate(members):
            target = members[(index + 1) % len(members)]
            where = closing if index == len(members) - 1 else next(
                o for p, o in self.bottle_file(member).extends if p == target)
            steps.append(f"{member} -> {target} at {where}")
        return ExtendsCycleError(
            f"'extends' makes a cycle: {' -> '.join((*walk, parent))} ({'; '.join(steps)})",
            cycle=frozenset(members),
            path=closing.path,
            line=closing.line,
            column=closing.column,
            key="extends",
        )


class ExtendsCycleError(ManifestError):
    """``extends`` loops back. ``cycle`` is the bottles on the loop, the same whichever of them
    a walk began at, so that ``validate`` reports one loop once."""

    def __init__(self, message: str, *, cycle: frozenset[str], path: Path, line: int, key: str,
                 column: int | None = None) -> None:
        super().__init__(message, path=path, line=line, key=key, column=column)
        self.cycle = cycle


def _suggestion(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` for a mistyped agent or bottle name, else ``""``."""
    from bot_bottle.manifest.schema import did_you_mean

    close = did_you_mean(name, known)
    return f"; {close.strip()}" if close else ""


def _name_of_file(written: str, known: Iterable[str]) -> str | None:
    """``"; give the name, not the file: 'NAME'"`` when ``written`` is the path of a known
    manifest's file (the command line takes the name, the file name without ``.md``), else None."""
    if "/" not in written and not written.endswith(".md"):
        return None
    name = Path(written).name.removesuffix(".md")
    return f"; give the name, not the file: '{name}'" if name in known else None


def _not_folders(folders: Iterable[Path]) -> list[Path]:
    """Those of ``folders`` that stand there but are not folders (a file, a dangling symlink):
    nothing is read from them, silently."""
    return [folder for folder in folders if not_a_folder(folder) is not None]


def _exists(path: Path, *, file: bool = False) -> bool:
    """Whether ``path`` exists (as a file, with ``file``); under a folder that cannot be searched
    it is not known to (``discover`` reports that folder)."""
    try:
        return path.is_file() if file else path.exists()
    except OSError:
        return False


def _not_a_folder_note(path: Path) -> str:
    what = not_a_folder(path)
    return f"{path} is not a folder{f' (it is {what})' if what else ''}, so no manifest is read from it"


def _not_a_folder_hint(path: Path) -> str:
    """What is at ``path`` instead of a folder, and how to clear it."""
    what = not_a_folder(path)
    if what is None:  # gone since it was found
        return "move the file aside; manifests live in folders of that name"
    return f"it is {what}; {not_a_folder_hint(path, what)}"


def _manifest_folders(layout: Layout) -> list[Path]:
    folders = [layout.home_dir, layout.bottles_dir, layout.home_agents_dir]
    if not layout.cwd_is_home:
        folders += [layout.cwd_dir, layout.cwd_agents_dir]
    return folders


def _invalid_file(catalog: Catalog, path: Path) -> ManifestError | None:
    """The error of the file at ``path`` when discovery could not count it, else None."""
    return next((exc for exc in catalog.invalid if exc.path == path), None)


def _missing_bottle(
    name: str, layout: Layout, catalog: Catalog, wanted_at: Origin | None, *, via: str
) -> ManifestError:
    available = ", ".join(sorted(catalog.bottles)) or "none yet"
    hint = f"bottles live in {layout.bottles_dir}/<name>.md (available: {available})"
    blocked = _not_folders((layout.home_dir, layout.bottles_dir))
    if blocked:
        # "none yet" would send the user looking for files that cannot be read from there.
        hint = _not_a_folder_note(blocked[0])
    invalid = _invalid_file(catalog, layout.bottles_dir / f"{name}.md")
    if invalid is not None:
        hint = f"{invalid.path} {invalid.detail}"  # it is there, but cannot count: say why, not "none yet"
    if _exists(layout.cwd_bottles_dir / f"{name}.md", file=True) and not layout.cwd_is_home:
        hint = (
            f"{layout.cwd_bottles_dir / (name + '.md')} is ignored: bottles are defined only in "
            f"{layout.bottles_dir}; move it there if you trust it"
        )
    hint = _unread_hint(name, (layout.bottles_dir,)) or hint
    what = "parent bottle" if via == "extends" else "bottle"
    message = f"no {what} named '{name}'" + _suggestion(name, catalog.bottles)
    if wanted_at is None:
        return NotFoundError(message, hint=hint)
    return NotFoundError(
        message,
        path=wanted_at.path,
        line=wanted_at.line,
        column=wanted_at.column,
        key=via,
        hint=hint,
    )


def fold(own: BottleFile, parents: list[Bottle]) -> Bottle:
    """Fold parents left to right, then the file itself: child wins.

    env merges per key; routes concatenate (parents first); repos merge by name (the later
    entry of a name replaces the earlier one whole, so a URL never pairs with another's key);
    scalars are last-wins; git-gate.user overlays field by field.
    """
    env: dict[str, EnvEntry] = {}
    # Insertion-ordered sets: a deep chain's every layer is checked against the ones before it.
    routes: dict[Route, None] = {}
    repos: dict[str, GitRepo] = {}
    user = GitUser()
    log: tuple[int, Origin | None] = (DEFAULT_EGRESS_LOG, None)
    supervise: tuple[bool, Origin | None] = (True, None)
    clipboard: tuple[str, Origin | None] = ("hold", None)
    provider = Provider()
    chain: dict[Path, None] = {}
    descriptions: list[str] = []

    def take(
        env_items: tuple[EnvEntry, ...] | list[EnvEntry],
        route_items: tuple[Route, ...],
        repo_items: tuple[GitRepo, ...],
        layer_user: GitUser,
        layer_log: tuple[int, Origin | None] | None,
        layer_supervise: tuple[bool, Origin | None] | None,
        layer_clipboard: tuple[str, Origin | None] | None,
        layer_provider: Provider,
        description: str,
    ) -> None:
        nonlocal user, log, supervise, clipboard, provider
        for entry in env_items:
            env[entry.name] = entry
        for route in route_items:
            routes.setdefault(route, None)
        for repo in repo_items:
            repos[repo.name] = repo
        user = user.overlay(layer_user)
        if layer_log is not None:
            log = layer_log
        if layer_supervise is not None:
            supervise = layer_supervise
        if layer_clipboard is not None:
            clipboard = layer_clipboard
        provider = _overlay_provider(provider, layer_provider)
        if description:
            descriptions.append(description)

    for parent in parents:
        for path in parent.chain:
            chain.setdefault(path, None)
        take(
            parent.env,
            parent.routes,
            parent.repos,
            parent.git_user,
            (parent.egress_log, parent.egress_log_origin) if parent.egress_log_origin else None,
            (parent.supervise, parent.supervise_origin) if parent.supervise_origin else None,
            (parent.clipboard, parent.clipboard_origin) if parent.clipboard_origin else None,
            parent.provider,
            "",
        )
    chain.setdefault(own.path, None)
    take(own.env, own.routes, own.repos, own.git_user, own.egress_log, own.supervise, own.clipboard, own.provider,
         own.description)
    return Bottle(
        name=own.name,
        path=own.path,
        chain=tuple(chain),
        env=tuple(env.values()),
        egress_log=log[0],
        egress_log_origin=log[1],
        routes=tuple(routes),
        git_user=user,
        repos=tuple(repos.values()),
        supervise=supervise[0],
        supervise_origin=supervise[1],
        provider=provider,
        description=own.description,
        clipboard=clipboard[0],
        clipboard_origin=clipboard[1],
    )


def _overlay_provider(base: Provider, layer: Provider) -> Provider:
    return Provider(
        template=layer.template if layer.template is not None else base.template,
        dockerfile=layer.dockerfile if layer.dockerfile is not None else base.dockerfile,
        auth_token=layer.auth_token if layer.auth_token is not None else base.auth_token,
        template_origin=layer.template_origin if layer.template is not None else base.template_origin,
        dockerfile_origin=layer.dockerfile_origin if layer.dockerfile is not None else base.dockerfile_origin,
        auth_token_origin=layer.auth_token_origin if layer.auth_token is not None else base.auth_token_origin,
    )


class PluginProviderError(ManifestError, PluginError):
    """A bottle names a plugin provider that cannot be used. Reported at the line that names it
    (the bottle is what the user fixes or points elsewhere), and still a ``PluginError``."""


def _provider_info(bottle: Bottle, contrib_dir: Path) -> providers.ProviderInfo | None:
    """The bottle's provider, loading a plugin's module (the user's own code, under the home)."""
    try:
        return providers.resolve(bottle.template, contrib_dir)
    except PluginError as exc:
        origin = bottle.provider.template_origin
        raise PluginProviderError(
            f"template '{bottle.template}' is a plugin provider that cannot be used: {exc}",
            path=origin.path if origin else bottle.path,
            line=origin.line if origin else None,
            column=origin.column if origin else None,
            key="agent_provider.template",
            hint=exc.hint,
        ) from None


_SHELL_VARIABLE_RE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


def _check_bottle(bottle: Bottle, contrib_dir: Path) -> list[str]:
    """Cross-layer rules that only the folded bottle can see; returns warnings, raises errors."""
    warnings: list[str] = []
    by_host: dict[str, Route] = {}
    for route in bottle.routes:
        earlier = by_host.get(route.host)
        if earlier is not None and earlier.auth != route.auth and earlier.auth and route.auth:
            raise ManifestError(
                f"host '{route.host}' has two routes with different auth: {earlier.key} at {earlier.origin} "
                f"and {route.key} at {route.origin}; the proxy could not tell which credential to inject",
                path=route.origin.path,
                line=route.origin.line,
                column=route.origin.column,
                key=f"{route.key}.auth",
            )
        by_host.setdefault(route.host, route)
        wide = reach.wildcard_warning(route.host)
        if wide is not None:
            warnings.append(f"{route.origin}: egress route {wide}")
    injected = {route.auth.token_ref for route in bottle.routes if route.auth}
    provider = _provider_info(bottle, contrib_dir)
    if bottle.provider.auth_token:
        injected.add(bottle.provider.auth_token)
    elif provider is not None:
        # The plan's provider route injects the default token when the bottle names none.
        injected.add(provider.default_auth_token)
    for entry in bottle.env:
        shell_name = _SHELL_VARIABLE_RE.match(entry.value) if entry.kind == "literal" else None
        if shell_name and not may_hold_credential(entry.value):  # a token is never echoed
            # A shell's spelling: the agent gets these very characters, not the host's value.
            warnings.append(
                f"{entry.origin}: env.{entry.name} is the literal text '{entry.value}'; to hand the agent the "
                f"host's {shell_name.group(1)}, write \"${{{shell_name.group(1)}}}\""
            )
        if entry.kind == "host" and entry.value in injected:
            warnings.append(
                f"{entry.origin}: env.{entry.name} hands the agent ${{{entry.value}}}, which the proxy also "
                "injects; the agent then holds the real credential (DLP still guards where it may go)"
            )
    return warnings


def load(agent: str, layout: Layout, *, overrides: Mapping[Path, str] | None = None) -> Manifest:
    """Load one agent and its effective bottle. Raises ``ManifestError`` (exit code 2)."""
    return Session(layout, overrides).load(agent)


class Session:
    """The manifest files as one operation sees them: discovered once, each bottle read and
    folded once. ``validate`` loads every agent through one session, so the bottles of a
    shared ``extends`` chain are not read again for each agent that ends in it."""

    def __init__(self, layout: Layout, overrides: Mapping[Path, str] | None = None, *, strict: bool = True) -> None:
        self.layout = layout
        self.catalog = discover(layout, strict=strict)
        self._loader = _Loader(layout, self.catalog, overrides)

    def load(self, agent: str) -> Manifest:
        """Load one agent and its effective bottle. Raises ``ManifestError`` (exit code 2)."""
        layout, catalog, loader = self.layout, self.catalog, self._loader
        if agent not in catalog.agents:
            available = ", ".join(sorted(catalog.agents)) or "none yet"
            where = (str(layout.home_agents_dir) if layout.cwd_is_home
                     else f"{layout.home_agents_dir} or {layout.cwd_agents_dir}")
            hint = f"agents live in {where} (available: {available})"
            if agent in catalog.bottles:
                hint = f"'{agent}' is a bottle; start an agent that names it with 'bottle: {agent}'"
            if not catalog.agents and not catalog.bottles:
                hint = "run `bot-bottle init` to create an example bottle and agent"
            blocked = _not_folders(_manifest_folders(layout))
            if blocked and not catalog.agents:
                hint = _not_a_folder_note(blocked[0])  # init could not write there either
            folders = ((layout.home_agents_dir,) if layout.cwd_is_home
                       else (layout.cwd_agents_dir, layout.home_agents_dir))
            hint = _unread_hint(agent, folders) or hint
            for folder in (layout.cwd_agents_dir, layout.home_agents_dir):
                invalid = _invalid_file(catalog, folder / f"{agent}.md")
                if invalid is not None:
                    raise invalid  # its file is there, but cannot count: that is the error
            named = _name_of_file(agent, catalog.agents)
            # The command line's word is echoed back unless it is a token pasted in by mistake.
            shown = "(the name is not shown, in case it holds a credential)" if may_hold_credential(agent) \
                else f"'{agent}'"
            raise NotFoundError(f"no agent named {shown}" + (named or _suggestion(agent, catalog.agents)),
                                hint=hint)
        shadowed = catalog.shadowed.get(agent)
        try:
            agent_file = loader.agent_file(agent)
        except ManifestError as exc:
            if shadowed is not None and exc.hint is None:
                # The working folder's file wins even when it is broken: say which one it hides.
                exc.hint = (f"this file overrides the home agent {shadowed.path}; fix it, or rename it to start "
                            "the home one")
            raise
        bottle = loader.bottle(agent_file.bottle, wanted_at=agent_file.bottle_origin)
        warnings = list(catalog.warnings) + _check_bottle(bottle, layout.contrib_dir)
        return Manifest(
            agent=agent_file,
            bottle=bottle,
            shadowed=shadowed.path if shadowed else None,
            warnings=tuple(warnings),
        )


@dataclass(frozen=True)
class ValidationReport:
    checked: tuple[Path, ...]
    errors: tuple[ManifestError, ...]
    warnings: tuple[str, ...]
    # Folders that could not be listed: not manifest files, and not valid either (unknown).
    unreadable: tuple[ManifestError, ...] = ()
    # Where a manifest folder belongs but something else stands (its error is in ``errors``).
    not_folders: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors and not self.unreadable


def _stray_files(layout: Layout) -> list[str]:
    notes = []
    for folder in (layout.home_dir, layout.cwd_dir):
        for path in _md_files(folder):
            notes.append(f"{path}: not in an agents/ or bottles/ folder, so it is ignored")
        for slip in _slipped_folders(folder):
            kind = slip.name.lower().rstrip("s")
            notes.append(f"{slip}: this folder is not read; {kind} files go in {folder / _FOLDER_SLIPS[kind]}")
    manifest_dirs = [layout.bottles_dir, layout.home_agents_dir]
    if not layout.cwd_is_home:
        manifest_dirs.append(layout.cwd_agents_dir)
    for folder in manifest_dirs:
        for path in _unread_files(folder):
            ending = f"it ends in '{path.suffix}'" if path.suffix else "it has no extension"
            notes.append(f"{path}: not read, as a manifest file is named NAME.md ({ending})")
    return sorted(set(notes))


def validate(layout: Layout, *, overrides: Mapping[Path, str] | None = None) -> ValidationReport:
    """Check every manifest file, and report each file's errors rather than stopping at one."""
    errors: list[ManifestError] = []
    checked: list[Path] = []
    not_folders: list[Path] = []
    catalog = discover(layout, strict=False)
    errors.extend(catalog.invalid)
    checked.extend(e.path for e in catalog.invalid if e.path is not None)
    for folder in _not_folders(_manifest_folders(layout)):
        # Its agents or bottles are nowhere: "no manifest files found" and a pass would hide that.
        errors.append(ManifestError("is not a folder, so no manifest is read from it", path=folder,
                                    hint=_not_a_folder_hint(folder)))
        not_folders.append(folder)  # not a manifest file: not counted among those checked
    warnings = [w for w in catalog.warnings if not w.endswith("(file ignored)")] + _stray_files(layout)
    loader = _Loader(layout, catalog, overrides)
    failed_paths: set[Path] = set()
    cycles: set[frozenset[str]] = set()
    for name, ref in sorted(catalog.bottles.items()):
        checked.append(ref.path)
        try:
            warnings.extend(_check_bottle(loader.bottle(name), layout.contrib_dir))
        except ExtendsCycleError as exc:
            # Every bottle on (or leading into) a loop meets it: it is one mistake.
            if exc.cycle not in cycles:
                cycles.add(exc.cycle)
                errors.append(exc)
                failed_paths.add(exc.path or ref.path)
        except ManifestError as exc:
            if exc.path not in failed_paths:
                errors.extend(exc.each())
                failed_paths.add(exc.path or ref.path)
    refs = list(catalog.agents.values()) + list(catalog.shadowed.values())
    for ref in sorted(refs, key=lambda r: str(r.path)):
        checked.append(ref.path)
        try:
            agent_file = schema.agent_file(frontmatter.read(ref.path, loader.overrides.get(ref.path)), ref.origin)
            if agent_file.bottle not in catalog.bottles:
                raise _missing_bottle(agent_file.bottle, layout, catalog, agent_file.bottle_origin, via="bottle")
        except ManifestError as exc:
            if exc.path not in failed_paths:
                errors.extend(exc.each())
                failed_paths.add(exc.path or ref.path)
    return ValidationReport(tuple(checked), tuple(errors), tuple(dict.fromkeys(warnings)), tuple(catalog.unreadable),
                            tuple(not_folders))
