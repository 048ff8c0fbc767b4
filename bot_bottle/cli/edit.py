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
from bot_bottle.manifest import FileRef, ManifestError, NotFoundError, discover, frontmatter, validate


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "edit",
        help="open an agent or bottle in $EDITOR; saved only when valid",
        description=(
            "Open the agent or bottle NAME in $EDITOR (or $VISUAL). On save the text is validated; "
            "on an error you are asked whether to reopen the editor (without a terminal, or when you "
            "decline, the edit is kept as a draft and offered next time). The file changes only once it "
            "is valid; its mode is kept, and a symlinked manifest is edited where it lives."
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
        names = sorted((set(cat.agents) if kind in (None, "agent") else set())
                       | (set(cat.bottles) if kind in (None, "bottle") else set()))
        raise NotFoundError(
            f"no {kind or 'agent or bottle'} named '{name}'",
            hint=f"available: {', '.join(names)}" if names else "run `bot-bottle init` to create examples",
        )
    if len(found) > 1:
        raise UsageError(f"'{name}' is both an agent and a bottle; say which with --agent or --bottle")
    return found[0]


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


def _ask(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [Y/n] ").strip().lower()
    except EOFError:
        return False
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
    tmp_out = target.with_name(f".{target.name}.saving")
    fd = os.open(tmp_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp_out, mode)
    os.replace(tmp_out, target)


def run(args: argparse.Namespace) -> int:
    ref = _find(args.name, args.kind)
    editor, source = _editor()
    path = ref.path
    original = frontmatter.read_text(path)  # not UTF-8: the error validate gives
    draft = _draft_path(path)
    text = original
    from_draft = draft.is_file() and _ask(f"A rejected draft of {path.name} was kept at {draft}. Continue from it?")
    if from_draft:
        text = frontmatter.read_text(draft)
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
                    output.console().print(f"no changes to {path}")
                    if from_draft:  # reverted: a draft not taken up stays offered
                        draft.unlink(missing_ok=True)
                    return 0
                errors = _errors_for(path, text, baseline)
            if not errors:
                break
            for error in errors:
                # Errors name the real file, not the temporary copy.
                output.error(str(error), hint=error.hint)
            if not _ask("Reopen the editor to fix it?"):
                draft.write_bytes(saved)  # as the editor saved it, UTF-8 or not
                os.chmod(draft, 0o600)
                raise ManifestError(
                    f"not saved; your edit is kept at {draft} and offered next time",
                    path=path,
                )
    _save(path, text)
    draft.unlink(missing_ok=True)
    output.console().print(Text(f"saved {path}", style="green"))
    return 0
