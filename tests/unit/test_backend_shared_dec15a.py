"""What the Docker and micro-VM backends share, the same on both: an exec that runs too long, a
copy-in of a missing path, the local registry's upload bodies, and npm missing for a cache entry.

Run against stand-in executables (small scripts in a temporary folder): no Docker, no VM, no npm.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import images
from bot_bottle.backend import ExecResult
from bot_bottle.backend.docker.bottle import DockerBottle
from bot_bottle.backend.smolmachines import local_registry, smolvm
from bot_bottle.backend.smolmachines.bottle import SmolmachinesBottle
from bot_bottle.errors import BotBottleError

# Notes each run beside itself (``cli.ran``), prints its words on both streams (the smolvm CLI's
# note line first on stderr) and ends with status 3, or sleeps when asked to run ``sleep``.
STAND_IN = """\
#!{python}
import sys, time
with open(__file__ + ".ran", "a") as ran:
    ran.write(" ".join(sys.argv) + "\\n")
if "sleep" in " ".join(sys.argv):
    time.sleep(30)
print("out")
print("note: no packed assets found here", file=sys.stderr)
print("err", file=sys.stderr)
sys.exit(3)
"""


class _Folder(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.folder = Path(tmp.name)

    def stand_in(self) -> str:
        path = self.folder / "cli"
        path.write_text(STAND_IN.format(python=sys.executable))
        path.chmod(0o755)
        return str(path)

    def bottles(self, timeout: float) -> dict[str, DockerBottle | SmolmachinesBottle]:
        cli = self.stand_in()
        return {"docker": DockerBottle(container="c", docker=cli, exec_timeout=timeout),
                "smolmachines": SmolmachinesBottle("m", exec_timeout=timeout, cli=smolvm.Installed(path=cli))}


class ExecTest(_Folder):
    def test_a_command_that_runs_too_long_is_status_124_on_both(self) -> None:
        for backend, bottle in self.bottles(0.5).items():
            with self.subTest(backend=backend):
                self.assertEqual(bottle.exec("sleep 30"), ExecResult(124, "", "timed out after 0.5 s"))

    def test_a_command_answers_its_status_and_streams(self) -> None:
        found = {backend: bottle.exec("echo hi") for backend, bottle in self.bottles(30).items()}
        self.assertEqual(found["docker"], ExecResult(3, "out\n", "note: no packed assets found here\nerr\n"))
        # The micro-VM CLI's own note is not the command's.
        self.assertEqual(found["smolmachines"], ExecResult(3, "out\n", "err"))


class CopyInTest(_Folder):
    def test_a_missing_source_is_the_clear_error_before_anything_runs(self) -> None:
        missing = self.folder / "gone"
        record = self.folder / "cli.ran"
        for backend, bottle in self.bottles(30).items():
            with self.subTest(backend=backend):
                with self.assertRaises(BotBottleError) as caught:
                    bottle.cp_in(missing, "/home/node/gone")
                self.assertEqual(str(caught.exception), f"cannot copy {missing} into the bottle: it does not exist")
                self.assertFalse(record.exists())


class _Handler:
    """The registry's own handler, its body reading on a request held in memory (no socket)."""

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.handler = local_registry._Handler.__new__(local_registry._Handler)
        self.handler.rfile = io.BytesIO(body)
        self.handler.headers = headers  # type: ignore[assignment]

    def read(self) -> tuple[int, bytes]:
        out = io.BytesIO()
        count = self.handler._body_into(out)
        return count, out.getvalue()


class RegistryBodyTest(unittest.TestCase):
    def test_a_sized_body(self) -> None:
        data = os.urandom(3 * local_registry._CHUNK + 17)
        self.assertEqual(_Handler(data + b"next", {"Content-Length": str(len(data))}).read(), (len(data), data))

    def test_no_body(self) -> None:
        self.assertEqual(_Handler(b"", {}).read(), (0, b""))

    def test_a_chunked_body_with_extensions_and_trailers(self) -> None:
        wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nnext"
        self.assertEqual(_Handler(wire, {"Transfer-Encoding": "Chunked"}).read(), (11, b"hello world"))

    def test_a_body_that_ends_early_is_a_broken_request(self) -> None:
        for body, headers in ((b"abc", {"Content-Length": "10"}),
                              (b"a\r\nxyz", {"Transfer-Encoding": "chunked"})):
            with self.subTest(headers=headers), self.assertRaisesRegex(ConnectionError, "ended early"):
                _Handler(body, headers).read()


class NpmMissingTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.cache = Path(tmp.name)
        empty = self.cache / "empty-bin"
        empty.mkdir()
        patcher = mock.patch.dict(os.environ, {"BOT_BOTTLE_CACHE_DIR": str(self.cache), "PATH": str(empty)})
        patcher.start()
        self.addCleanup(patcher.stop)
        self.package = images.NpmPackage("@scope/pkg", "1.2.3")

    def test_each_cache_entry_names_what_npm_was_needed_for(self) -> None:
        for fetch, words, hint in (
                (images.npm_tarball, "@scope/pkg@1.2.3", "(the image itself needs no Node)"),
                (images.npm_install_tarball, "@scope/pkg@1.2.3 and its dependencies", "install Node.js with npm")):
            with self.subTest(fetch=fetch.__name__), self.assertRaises(BotBottleError) as caught:
                fetch(self.package)
            self.assertEqual(str(caught.exception), f"npm is needed once to fetch {words}")
            self.assertIn(hint, caught.exception.hint or "")

    def test_a_whole_cached_entry_needs_no_npm(self) -> None:
        for folder, fetch in (("npm", images.npm_tarball), ("npm-install", images.npm_install_tarball)):
            with self.subTest(fetch=fetch.__name__):
                cached = self.cache / folder / self.package.tarball_name
                cached.parent.mkdir(parents=True, exist_ok=True)
                cached.write_bytes(b"")  # an empty one is not whole: npm is needed
                with self.assertRaises(BotBottleError):
                    fetch(self.package)
                cached.write_bytes(b"tgz")
                self.assertEqual(fetch(self.package), cached)


if __name__ == "__main__":
    unittest.main()
