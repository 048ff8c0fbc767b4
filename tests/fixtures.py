"""Manifest builders for tests: a throwaway HOME and working folder, and an in-process CLI runner.

``ManifestHome`` owns two temporary folders, writes bottle and agent files into them (a dict is
dumped as YAML; a string is written verbatim so a test controls every line number) and runs
``bot_bottle.cli.main`` with HOME and the working directory pointed at them.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import textwrap
import unittest
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from unittest import mock

import yaml

from bot_bottle.manifest import Layout
from bot_bottle.plan import ImageRefs

Where = Literal["home", "cwd"]

TEST_IMAGES = ImageRefs(agent="bot-bottle-agent:test", sidecar="bot-bottle-sidecar:test")


def frontmatter_text(frontmatter: Mapping[str, Any] | str, body: str = "") -> str:
    """The text of a manifest file: ``---``, the YAML, ``---``, then the body.

    A string is used verbatim as the YAML between the delimiters (dedented, and ending with a
    newline), so line 2 of the file is the string's first line.
    """
    if isinstance(frontmatter, str):
        yaml_text = textwrap.dedent(frontmatter)
        if yaml_text and not yaml_text.endswith("\n"):
            yaml_text += "\n"
    else:
        yaml_text = yaml.safe_dump(dict(frontmatter), sort_keys=False, default_flow_style=False) if frontmatter else ""
    return f"---\n{yaml_text}---\n{body}"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


class ManifestHome:
    """A temporary HOME and a temporary working directory, cleaned up by ``close()``."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bot-bottle-test-")
        root = Path(self._tmp.name).resolve()
        self.home = root / "home"
        self.cwd = root / "work"
        self.home.mkdir()
        self.cwd.mkdir()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._tmp.cleanup()

    def __enter__(self) -> ManifestHome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @classmethod
    def for_test(cls, case: unittest.TestCase) -> ManifestHome:
        """A ``ManifestHome`` removed when ``case`` finishes."""
        mh = cls()
        case.addCleanup(mh.close)
        return mh

    # ------------------------------------------------------------------ folders

    @property
    def layout(self) -> Layout:
        return Layout(home=self.home, cwd=self.cwd)

    @property
    def home_dir(self) -> Path:
        return self.home / ".bot-bottle"

    @property
    def bottles_dir(self) -> Path:
        return self.home_dir / "bottles"

    def agents_dir(self, where: Where = "home") -> Path:
        base = self.home if where == "home" else self.cwd
        return base / ".bot-bottle" / "agents"

    # ------------------------------------------------------------------ writers

    def write(self, path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def bottle(self, name: str, frontmatter: Mapping[str, Any] | str = "", body: str = "") -> Path:
        """Write ``~/.bot-bottle/bottles/<name>.md``."""
        return self.write(self.bottles_dir / f"{name}.md", frontmatter_text(frontmatter, body))

    def agent(
        self, name: str, frontmatter: Mapping[str, Any] | str, body: str = "", where: Where = "home"
    ) -> Path:
        """Write ``<home or cwd>/.bot-bottle/agents/<name>.md``."""
        return self.write(self.agents_dir(where) / f"{name}.md", frontmatter_text(frontmatter, body))

    def cwd_bottle(self, name: str, frontmatter: Mapping[str, Any] | str = "", body: str = "") -> Path:
        """Write ``./.bot-bottle/bottles/<name>.md`` (a place bottles are never read from)."""
        return self.write(self.cwd / ".bot-bottle" / "bottles" / f"{name}.md", frontmatter_text(frontmatter, body))

    def raw(self, relative: str, text: str, where: Where = "home") -> Path:
        """Write any file under HOME or the working folder, verbatim."""
        base = self.home if where == "home" else self.cwd
        return self.write(base / relative, text)

    # ------------------------------------------------------------------ CLI

    @contextlib.contextmanager
    def environment(self, env: Mapping[str, str] | None = None, *, unset: Sequence[str] = ()) -> Iterator[None]:
        """HOME and the working directory pointed at the temporary folders, restored after."""
        values = {"HOME": str(self.home), "COLUMNS": "400", **(env or {})}
        old_cwd = os.getcwd()
        with mock.patch.dict(os.environ, values):
            for name in unset:
                os.environ.pop(name, None)
            os.chdir(self.cwd)
            try:
                yield
            finally:
                os.chdir(old_cwd)

    def run_cli(
        self,
        *argv: str,
        env: Mapping[str, str] | None = None,
        unset: Sequence[str] = (),
        runtime: tuple[str, str] = ("runc", "test: no Docker consulted"),
        images: ImageRefs | None = None,
        running: Sequence[Any] | BaseException = (),
    ) -> CliResult:
        """Run ``bot-bottle ARGV`` in-process; Docker is never consulted.

        stdin is not a terminal, so nothing prompts. ``images`` replaces the computed image
        references (None uses the real ``bot_bottle.images``); ``running`` is what the engine
        answers for the running bottles (an exception: it does not answer).
        """
        from bot_bottle import plan as plan_mod
        from bot_bottle.cli import main

        out, err = io.StringIO(), io.StringIO()
        engine_answer = ({"side_effect": running} if isinstance(running, BaseException)
                         else {"return_value": list(running)})
        patches: list[contextlib.AbstractContextManager[Any]] = [
            mock.patch("bot_bottle.cli.common.docker_runtime", return_value=runtime),
            mock.patch.object(sys, "stdin", io.StringIO("")),
            mock.patch("bot_bottle.backend.docker.running.running", **engine_answer),
        ]
        if images is not None:
            patches.append(mock.patch.object(plan_mod, "default_images", return_value=images))
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.environment(env, unset=unset))
            for patch in patches:
                stack.enter_context(patch)
            stack.enter_context(contextlib.redirect_stdout(out))
            stack.enter_context(contextlib.redirect_stderr(err))
            try:
                code = main(list(argv))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return CliResult(code=code, stdout=out.getvalue(), stderr=err.getvalue())


# A minimal valid pair most tests start from.
SIMPLE_BOTTLE = {"egress": {"routes": ["example.com"]}}
SIMPLE_AGENT = {"bottle": "dev"}


class ManifestTestCase(unittest.TestCase):
    """A test case with a fresh ``ManifestHome`` and assertions for one-line manifest errors."""

    mh: ManifestHome

    def setUp(self) -> None:
        super().setUp()
        self.mh = ManifestHome.for_test(self)

    def load(self, agent: str = "a") -> Any:
        from bot_bottle.manifest import load

        return load(agent, self.mh.layout)

    def load_bottle(self, frontmatter: Mapping[str, Any] | str, body: str = "", name: str = "b") -> Any:
        """Write bottle ``name`` and an agent ``a`` using it; return the effective bottle."""
        self.mh.bottle(name, frontmatter, body)
        self.mh.agent("a", {"bottle": name})
        return self.load("a").bottle

    def load_error(self, agent: str = "a") -> Any:
        from bot_bottle.manifest import ManifestError, load

        with self.assertRaises(ManifestError) as cm:
            load(agent, self.mh.layout)
        return cm.exception

    def bottle_error(self, frontmatter: Mapping[str, Any] | str, body: str = "", name: str = "b") -> Any:
        """Write bottle ``name`` and an agent using it; return the ``ManifestError`` loading raises."""
        self.mh.bottle(name, frontmatter, body)
        self.mh.agent("a", {"bottle": name})
        return self.load_error("a")

    def assertManifestError(
        self,
        err: Any,
        *,
        path: Path,
        line: int | None,
        key: str | None,
        contains: str | Sequence[str] = (),
    ) -> None:
        """``err`` names ``path``, ``line`` and ``key``, reads ``PATH:LINE: KEY: ...`` and exits 2."""
        from bot_bottle.manifest import ManifestError

        self.assertIsInstance(err, ManifestError)
        self.assertEqual(err.exit_code, 2)
        self.assertEqual(err.path, path)
        self.assertEqual(err.line, line, str(err))
        self.assertEqual(err.key, key, str(err))
        text = str(err)
        self.assertNotIn("\n", text)
        prefix = str(path)
        if line is not None:
            prefix += f":{line}"
        prefix += ": "
        if key is not None:
            prefix += f"{key}: "
        self.assertTrue(text.startswith(prefix), f"{text!r} does not start with {prefix!r}")
        self.assertGreater(len(text), len(prefix), "the error says what is wrong")
        for part in [contains] if isinstance(contains, str) else contains:
            self.assertIn(part, text)
