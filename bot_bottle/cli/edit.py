"""``bot-bottle edit NAME``: open a manifest in $EDITOR, validate on save, reopen on error.

The file on disk changes only when the edited text is valid, so a typo never breaks a bottle.
A rejected draft is kept beside the file (hidden) and offered again next time: nothing is lost.
"""

from __future__ import annotations

import argparse
import os
import shlex
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.text import Text

from bot_bottle.cli import common, output
from bot_bottle.errors import BotBottleError, UsageError
from bot_bottle.manifest import Catalog, FileRef, ManifestError, NotFoundError, discover, frontmatter, validate
from bot_bottle.state import unwritable_hint


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "edit",
        help="open an agent or bottle in $EDITOR; saved only when valid",
        description=(
            "Open the agent or bottle NAME in $EDITOR (or $VISUAL). On save the text is validated; "
            "on an error you are asked whether to reopen the editor (without a terminal, or when you "
            "decline, the edit is kept as a draft and offered next time). The file changes only once it "
            "is valid; its mode is kept, and a symlinked manifest is edited where it lives. A file left "
            "unchanged that is not valid has its errors reported (exit code 2)."
        ),
    )
    p.add_argument("name", metavar="NAME")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--agent", dest="kind", action="store_const", const="agent", help="NAME is an agent")
    kind.add_argument("--bottle", dest="kind", action="store_const", const="bottle", help="NAME is a bottle")
    p.set_defaults(func=run, kind=None)


def _find(name: str, kind: str | None) -> FileRef:
    cat = discover(common.layout())
    found = []
    if kind in (None, "agent") and name in cat.agents:
        found.append(cat.agents[name])
    if kind in (None, "bottle") and name in cat.bottles:
        found.append(cat.bottles[name])
    if not found:
        unreadable = _unreadable_file(cat, name, kind)
        if unreadable is not None:
            raise unreadable  # its file is there but cannot be read: say why, as validate does
        _refuse_blocked_folders(kind)
        names = sorted((set(cat.agents) if kind in (None, "agent") else set())
                       | (set(cat.bottles) if kind in (None, "bottle") else set()))
        from bot_bottle.manifest.schema import did_you_mean

        close = did_you_mean(name, names).strip()
        raise NotFoundError(
            f"no {kind or 'agent or bottle'} named '{name}'" + (f"; {close}" if close else ""),
            hint=f"available: {', '.join(names)}" if names else "run `bot-bottle init` to create examples",
        )
    if len(found) > 1:
        raise UsageError(f"'{name}' is both an agent and a bottle; say which with --agent or --bottle")
    return found[0]


def _refuse_blocked_folders(kind: str | None) -> None:
    """Refuse when the home folder NAME's file would be in is not a folder (a file, a dangling
    symlink): "run init" would send the user where init fails too."""
    from bot_bottle.state import require_folders

    lay = common.layout()
    folders = ([lay.home_agents_dir] if kind in (None, "agent") else []) + (
        [lay.bottles_dir] if kind in (None, "bottle") else [])
    require_folders(*folders, within=lay.home_dir)


def _unreadable_file(cat: Catalog, name: str, kind: str | None) -> ManifestError | None:
    """The error of NAME's file when it is there but discovery could not count it (a dangling
    symlink, a directory), with the loader's wording, or None."""
    lay = common.layout()
    folders = ([lay.cwd_agents_dir, lay.home_agents_dir] if kind in (None, "agent") else []) + (
        [lay.bottles_dir] if kind in (None, "bottle") else [])
    paths = {folder / f"{name}.md" for folder in folders}
    return next((exc for exc in cat.invalid if exc.path in paths), None)


def _editor() -> tuple[list[str], str]:
    """The editor's argv and the variable it came from ("$VISUAL" or "$EDITOR")."""
    var = "VISUAL" if os.environ.get("VISUAL") else "EDITOR"
    editor = os.environ.get(var)
    if not editor:
        raise BotBottleError("no editor: set $EDITOR (or $VISUAL)", hint="for example: export EDITOR=nano")
    try:
        argv = shlex.split(editor)
    except ValueError as exc:
        raise UsageError(f"${var} is not a command line ({exc}): {editor}",
                         hint=f"fix the quoting in ${var}, for example: export {var}=nano") from None
    if not argv:
        raise UsageError(f"${var} names no command", hint=f"for example: export {var}=nano")
    return argv, f"${var}"


def _run_editor(editor: list[str], source: str, work: Path, path: Path) -> None:
    try:
        result = subprocess.run([*editor, str(work)])
    except OSError as exc:
        raise BotBottleError(
            f"cannot run the editor {editor[0]!r} from {source} ({exc.strerror or exc}); {path} is unchanged",
            hint=f"set {source} to an editor installed here, for example: export {source[1:]}=nano",
        ) from None
    if result.returncode != 0:
        raise BotBottleError(f"the editor exited with code {result.returncode}; {path} is unchanged")


def _draft_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.draft")


def _ask(question: str) -> bool | None:
    """The user's answer; None (falsy, as no) when there is no one to ask (no terminal)."""
    if not sys.stdin.isatty():
        return None
    try:
        answer = input(f"{question} [Y/n] ").strip().lower()
    except EOFError:
        return None
    return answer in ("", "y", "yes")


def _errors_for(path: Path, text: str, baseline: set[str]) -> list[ManifestError]:
    report = validate(common.layout(), overrides={path: text})
    # Problems that already existed elsewhere before this edit are not this edit's fault.
    return [e for e in report.errors if e.path == path or str(e) not in baseline]


def _save(path: Path, text: str) -> None:
    """Replace the manifest at once (never half written), keeping its mode, and through a
    symlink (a dotfiles checkout) rather than over it."""
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode)
    _replace(target, text.encode("utf-8"), mode, prefix=f".{target.name}.saving-")


def _save_failed(path: Path, text: str, exc: OSError) -> BotBottleError:
    """The error for a valid edit that could not be saved (a full disk, a read-only home): the
    manifest is unchanged, and the edit is kept where it fits, never lost with the editor's copy."""
    kept = _keep_elsewhere(path, text)
    where = f"your edit is kept at {kept}" if kept else "your edit could not be kept elsewhere either"
    return BotBottleError(f"cannot save {path} ({exc.strerror or exc}); it is unchanged, and {where}",
                          hint=unwritable_hint(path.parent, exc))


def _keep_elsewhere(path: Path, text: str) -> Path | None:
    """``text`` in a private file of the system's temporary folder (often another disk than the
    home's), or None when that cannot be written either."""
    try:
        fd, name = tempfile.mkstemp(prefix=f"bot-bottle-edit-{path.stem}-", suffix=".md")  # 0600
    except OSError:
        return None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError:
        Path(name).unlink(missing_ok=True)
        return None
    return Path(name)


def _replace(target: Path, data: bytes, mode: int, *, prefix: str) -> None:
    """Put ``data`` at ``target`` whole, as a new file of ``mode``.

    The file is written under a fresh random name (created exclusively, never through a
    symlink: a repository can plant a link by any fixed name beside its agent files) and then
    renamed over ``target``, which replaces a link found there rather than writing where it points.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, dir=target.parent)  # O_EXCL | O_NOFOLLOW, 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), mode)  # by descriptor: the mode is never set through a name
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _keep_draft(draft: Path, data: bytes) -> Path:
    """Keep the rejected edit as ``draft`` (private); where something that is not a file blocks
    that name, under a name of its own, so the edit is never lost. Returns where it is."""
    try:
        _replace(draft, data, 0o600, prefix=f"{draft.name}-")
        return draft
    except IsADirectoryError:
        fd, kept = tempfile.mkstemp(prefix=f"{draft.name}-", dir=draft.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return Path(kept)


def _own_draft(draft: Path) -> bytes | None:
    """The draft an earlier rejected edit kept, or None when there is none.

    Only a private regular file of this user counts, as ``_keep_draft`` writes it: a symlink
    planted in a repository would put another file's text (a key, a home bottle) in the editor,
    on its way into the repository's manifest, and a file checked out with the repository is not
    an edit of the user's. It is opened without following a link and checked once open."""
    try:
        fd = os.open(draft, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError:  # a symlink (ELOOP), or unreadable
        _not_a_draft(draft)
        return None
    if not _private_file_of_ours(os.fstat(fd)):  # checked before reading: a directory cannot be read
        os.close(fd)
        _not_a_draft(draft)
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read(frontmatter.MAX_MANIFEST_BYTES + 1)


def _not_a_draft(draft: Path) -> None:
    output.warn(f"ignoring {draft}: not a draft `bot-bottle edit` kept (that is a private file of yours, "
                "not a link); a new rejected edit replaces it")


def _private_file_of_ours(info: os.stat_result) -> bool:
    return (stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and info.st_nlink == 1
            and info.st_mode & 0o077 == 0)


def _drop_draft(draft: Path) -> None:
    """Remove the draft once it is no longer wanted, only if it is one ``_keep_draft`` wrote."""
    try:
        info = draft.lstat()
    except OSError:
        return
    if _private_file_of_ours(info):
        draft.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    ref = _find(args.name, args.kind)
    editor, source = _editor()
    path = ref.path
    original = frontmatter.read_text(path)  # not UTF-8: the error validate gives
    draft = _draft_path(path)
    text = original
    kept = _own_draft(draft)
    answer = None if kept is None else _ask(f"A rejected draft of {path.name} was kept at {draft}. Continue from it?")
    from_draft = answer is True
    if from_draft and kept is not None:
        text = frontmatter.decode(kept, draft)  # not UTF-8: named as the draft
    baseline = {str(e) for e in validate(common.layout()).errors if e.path != path}
    with tempfile.TemporaryDirectory(prefix="bot-bottle-edit-") as tmp:
        work = Path(tmp) / path.name
        work.write_text(text, encoding="utf-8")
        while True:
            _run_editor(editor, source, work, path)
            try:
                saved = work.read_bytes()
            except OSError as exc:
                raise BotBottleError(
                    f"the editor left no readable file ({exc.strerror or exc}); {path} is unchanged") from None
            try:
                text = frontmatter.decode(saved, path)  # named as the real file, like validate
            except ManifestError as exc:
                errors = [exc]
            else:
                if text == original:
                    output.console().print(Text(f"no changes to {path}"))  # a path is never markup
                    if from_draft:  # reverted: a draft not taken up stays offered
                        _drop_draft(draft)
                    if kept is not None and answer is None:
                        _still_kept(draft)
                    return _unchanged_status(path, text, baseline)
                errors = _errors_for(path, text, baseline)
            if not errors:
                break
            for error in errors:
                # Errors name the real file, not the temporary copy.
                output.error(str(error), hint=error.hint)
            if not _ask("Reopen the editor to fix it?"):
                where = _keep_draft(draft, saved)  # as the editor saved it, UTF-8 or not
                offered = (" and offered next time" if where == draft
                           else f" (not at {draft}: something other than a file is in the way)")
                raise ManifestError(f"not saved; your edit is kept at {where}{offered}", path=path)
    try:
        _save(path, text)
    except OSError as exc:
        raise _save_failed(path, text, exc) from None
    if kept is None or answer is not None:
        _drop_draft(draft)  # taken up, or declined when offered
    output.console().print(Text(f"saved {path}", style="green"))
    if kept is not None and answer is None:
        # Never offered (no terminal to ask at): a valid save of something else must not lose it.
        _still_kept(draft)
    return 0


def _unchanged_status(path: Path, text: str, baseline: set[str]) -> int:
    """0 for a file left as it was and valid; for one left broken, its errors (the user just
    looked at it, and a silent 0 would read as "it is fine") and 2, as validate would give."""
    errors = _errors_for(path, text, baseline)
    for error in errors:
        output.error(str(error), hint=error.hint)
    return 2 if errors else 0


def _still_kept(draft: Path) -> None:
    output.console().print(Text(f"an earlier rejected draft is still kept at {draft}; it is "
                                "offered when `bot-bottle edit` runs on a terminal"))
