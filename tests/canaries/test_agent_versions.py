"""Canary: the agent versions pinned in images/versions.toml still install and start.

Run only with ``BOT_BOTTLE_RUN_CANARIES=1`` (it talks to the npm registry). For every
``[agents.*]`` table it fetches the pinned package afresh, through the same code the image build
uses (``npm pack`` for a self-contained binary; ``npm install`` of the dependency closure plus the
pinned Node platform package for ``runtime = "node"``), into an empty cache, unpacks it and runs
``<entry point> --version``: the command must exit 0 and print the pinned version. A version
withdrawn from the registry, a package that moved its binary, or a release that no longer starts
on this platform fails here before a user's first ``start`` does.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import images

RUN = os.environ.get("BOT_BOTTLE_RUN_CANARIES") == "1"


def _unpack(tarball: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="tar")


def _expected_version(pins: dict) -> str:
    # codex publishes per-platform builds as versions like "0.169.0-linux-x64" of one package.
    return str(pins["version"]).split("-linux-")[0]


@unittest.skipUnless(RUN, "set BOT_BOTTLE_RUN_CANARIES=1 to check the pinned agents against the npm registry")
class PinnedAgentsInstallAndStart(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="bb-canary-agents-")
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        # An empty cache: every tarball comes from the registry now, not from an earlier build.
        patcher = mock.patch.dict(os.environ, {"BOT_BOTTLE_CACHE_DIR": str(self.root / "cache")})
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_every_pinned_agent(self) -> None:
        agents = images.load_versions().get("agents", {})
        self.assertTrue(agents, "no [agents.*] tables in versions.toml")
        for template, pins in sorted(agents.items()):
            with self.subTest(template=template, version=pins["version"]):
                argv = self._install(template, pins)
                result = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=120,
                                        stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", ""),
                                                                       "HOME": str(self.root / "home")})
                output = result.stdout + result.stderr
                self.assertEqual(result.returncode, 0, f"{template} --version failed:\n{output[-2000:]}")
                self.assertIn(_expected_version(pins), output, f"{template} --version printed:\n{output[-2000:]}")

    def _install(self, template: str, pins: dict) -> list[str]:
        spec = images.agent_image(template)
        where = self.root / template
        if spec.node_package is not None:
            assert spec.npm_install is not None
            _unpack(images.npm_install_tarball(spec.npm_install), where / "agent")
            _unpack(images.npm_tarball(spec.node_package), where / "node")
            node = where / "node" / "package" / "bin" / "node"
            entry = where / "agent" / str(pins["binary"])
            self.assertTrue(node.is_file(), f"{spec.node_package.spec} has no bin/node")
            self.assertTrue(entry.is_file(), f"{pins['binary']} is not in the install of {spec.npm_install.spec}")
            return [str(node), str(entry)]
        assert spec.npm_package is not None
        _unpack(images.npm_tarball(spec.npm_package), where)
        binary = where / str(pins["binary"])
        self.assertTrue(binary.is_file(), f"{pins['binary']} is not in {spec.npm_package.spec}")
        binary.chmod(0o755)
        return [str(binary)]


if __name__ == "__main__":
    unittest.main()
