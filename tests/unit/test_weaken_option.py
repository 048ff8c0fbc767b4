"""The test-only weakened bottle: only Python code can ask for it, never a manifest or the environment.

``LaunchOptions.weaken`` exists so the sandbox-escape suite can prove its attacks fail when a
protection is missing. A manifest (the thing a cloned repository or a prompt-injected agent could
influence) must never be able to switch a protection off.
"""

from __future__ import annotations

import os
import re
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle.backend.docker import launch
from bot_bottle.backend.docker.launch import WEAKNESSES, DockerLauncher, LaunchOptions, _weakened_policy
from bot_bottle.errors import BotBottleError
from bot_bottle.plan import ImageRefs, resolve
from tests.fixtures import ManifestTestCase

REPO = Path(__file__).resolve().parents[2]


class _Stop(Exception):
    """Raised by the capturing backend: the launch is never carried out."""


class WeakenFromManifests(ManifestTestCase):
    def test_a_bottle_manifest_cannot_name_it(self) -> None:
        for text in ("weaken: [agent-network]\n", "egress:\n  weaken: [no-dlp]\n",
                     "git-gate:\n  weaken: [no-gate]\n", "LaunchOptions: {weaken: [privileged]}\n"):
            with self.subTest(text=text):
                from bot_bottle.manifest import ManifestError

                self.assertIsInstance(self.bottle_error(text), ManifestError)

    def test_an_agent_manifest_cannot_name_it(self) -> None:
        from bot_bottle.manifest import ManifestError

        self.mh.bottle("b", {"egress": {"routes": ["example.com"]}})
        self.mh.agent("a", "bottle: b\nweaken: [agent-network]\n")
        self.assertIsInstance(self.load_error("a"), ManifestError)

    def test_starting_a_bottle_passes_no_weakness_whatever_the_environment_says(self) -> None:
        """The real start path (lifecycle.run_bottle) builds the options; capture what reaches the backend."""
        from bot_bottle import lifecycle

        self.mh.bottle("b", {"egress": {"routes": ["example.com"]}, "env": {"TZ": "UTC"}})
        self.mh.agent("a", {"bottle": "b"})
        manifest = self.load("a")
        plan = resolve(manifest, images=ImageRefs(agent="agent:test", sidecar="sidecar:test"), environ={})
        seen: list[LaunchOptions] = []

        class Backend:
            def launcher(self, plan, opts, **kw):  # noqa: ANN001, ANN201
                seen.append(opts)
                raise _Stop

        hostile = {name: "agent-network,privileged,no-dlp" for name in
                   ("BOT_BOTTLE_WEAKEN", "BOT_BOTTLE_ESCAPE_WEAKEN", "WEAKEN", "BOT_BOTTLE_WEAKNESSES")}
        hostile["ANTHROPIC_API_KEY"] = "test-key"
        with mock.patch.dict(os.environ, hostile), \
                mock.patch.object(lifecycle.registry, "for_name", lambda name: Backend()):
            with self.assertRaises(_Stop):
                lifecycle.run_bottle(manifest, plan, state_root=self.mh.home / "state", environ=hostile,
                                     prompt_fn=None, tty=False)
        self.assertEqual(len(seen), 1)
        self.assertEqual(seen[0].weaken, frozenset())
        with mock.patch.dict(os.environ, hostile):
            self.assertEqual(LaunchOptions().weaken, frozenset())

    def test_no_product_module_but_the_launcher_reads_it(self) -> None:
        """Nothing in the package (manifest parsing, CLI, API, plan) refers to the option."""
        pattern = re.compile(r"\bweaken\b\s*[=:)\]]|\.weaken\b|WEAKNESSES|_weakened_policy")
        users = sorted(str(p.relative_to(REPO)) for p in (REPO / "bot_bottle").rglob("*.py")
                       if pattern.search(p.read_text(encoding="utf-8")))
        self.assertEqual(users, ["bot_bottle/backend/docker/launch.py"])


class WeakenSemantics(unittest.TestCase):
    def test_unknown_weakness_is_refused(self) -> None:
        with self.assertRaises(BotBottleError) as cm:
            DockerLauncher(mock.Mock(agent="a"), LaunchOptions(weaken=frozenset({"everything"})), Path("/nonexistent"))
        self.assertIn("everything", str(cm.exception))

    def test_policy_weakening_drops_dlp_and_injection_only_when_asked(self) -> None:
        doc = {"version": 2, "log": 1, "internal_services": {},
               "routes": [{"host": "api.example", "ports": [443], "tls_passthrough": False,
                           "auth": {"scheme": "bearer", "token_ref": "T"}, "dlp": {"outbound_on_match": "block"}}]}
        self.assertEqual(_weakened_policy(doc, frozenset({"agent-network"})), doc)
        weak = _weakened_policy(doc, frozenset({"no-dlp", "no-injection"}))
        self.assertEqual(weak["routes"][0]["dlp"], {"tokens": False, "secrets": False})
        self.assertNotIn("auth", weak["routes"][0])
        self.assertIn("auth", doc["routes"][0], "the original policy was changed in place")

    def test_the_names_are_the_documented_ones(self) -> None:
        text = Path(launch.__file__).read_text(encoding="utf-8")
        for name in WEAKNESSES:
            self.assertIn(f'"{name}"', text)


if __name__ == "__main__":
    unittest.main()
