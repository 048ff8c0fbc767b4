"""``env.resolve()``: literals, host variables and prompts at launch; values never leak in reprs."""

from __future__ import annotations

import unittest
from pathlib import Path

from bot_bottle.manifest import EnvEntry, ManifestError
from bot_bottle.manifest.env import ResolvedEnv, resolve
from bot_bottle.manifest.model import Origin
from tests.fixtures import ManifestTestCase

PATH = Path("/home/u/.bot-bottle/bottles/dev.md")


def entry(name: str, kind: str, value: str, line: int = 3) -> EnvEntry:
    return EnvEntry(name=name, kind=kind, value=value, origin=Origin(PATH, line))  # type: ignore[arg-type]


class ResolveTests(ManifestTestCase):
    def test_literal(self) -> None:
        resolved = resolve([entry("TZ", "literal", "UTC")], {}, None)
        self.assertEqual(resolved.values, {"TZ": "UTC"})
        self.assertEqual(resolved.secret_names, frozenset())
        self.assertEqual(resolved.secret_values, ())

    def test_host_variable_present(self) -> None:
        resolved = resolve([entry("DSN", "host", "SENTRY_DSN")], {"SENTRY_DSN": "https://k@sentry"}, None)
        self.assertEqual(resolved.values, {"DSN": "https://k@sentry"})
        self.assertEqual(resolved.secret_names, frozenset({"DSN"}))
        self.assertEqual(resolved.secret_values, ("https://k@sentry",))

    def test_host_variable_empty_string_is_set(self) -> None:
        resolved = resolve([entry("DSN", "host", "SENTRY_DSN")], {"SENTRY_DSN": ""}, None)
        self.assertEqual(resolved.values, {"DSN": ""})
        self.assertEqual(resolved.secret_values, ())

    def test_host_variable_missing(self) -> None:
        environ = {"OTHER": "s3cr3t-value-123"}
        with self.assertRaises(ManifestError) as cm:
            resolve([entry("TZ", "literal", "UTC"), entry("DSN", "host", "SENTRY_DSN", line=7)], environ, None)
        err = cm.exception
        self.assertManifestError(err, path=PATH, line=7, key="env.DSN", contains="SENTRY_DSN is not set")
        self.assertIn("export SENTRY_DSN", err.hint)
        self.assertNotIn("s3cr3t-value-123", str(err) + (err.hint or ""))

    def test_prompt_uses_the_callable(self) -> None:
        asked: list[str] = []

        def ask(e: EnvEntry) -> str:
            asked.append(e.value)
            return "typed-answer"

        resolved = resolve([entry("PW", "prompt", "Database password")], {}, ask)
        self.assertEqual(asked, ["Database password"])
        self.assertEqual(resolved.values, {"PW": "typed-answer"})
        self.assertEqual(resolved.secret_names, frozenset({"PW"}))

    def test_prompt_without_a_callable(self) -> None:
        with self.assertRaises(ManifestError) as cm:
            resolve([entry("PW", "prompt", "Database password", line=5)], {}, None)
        self.assertManifestError(cm.exception, path=PATH, line=5, key="env.PW", contains="no terminal")
        self.assertIn("${HOST_VAR}", cm.exception.hint)

    def test_mixed_entries(self) -> None:
        resolved = resolve(
            [entry("A", "literal", "1"), entry("B", "host", "HB"), entry("C", "prompt", "C?")],
            {"HB": "host-b"},
            lambda e: "prompted-c",
        )
        self.assertEqual(resolved.values, {"A": "1", "B": "host-b", "C": "prompted-c"})
        self.assertEqual(resolved.secret_names, frozenset({"B", "C"}))
        self.assertEqual(resolved.secret_values, ("host-b", "prompted-c"))

    def test_repr_never_contains_values(self) -> None:
        resolved = resolve(
            [entry("LIT", "literal", "literal-value-xyz"), entry("SEC", "host", "HS")], {"HS": "secret-value-abc"}, None
        )
        for text in (repr(resolved), str(resolved), f"{resolved!r}", repr([resolved])):
            self.assertNotIn("secret-value-abc", text)
            self.assertNotIn("literal-value-xyz", text)
        self.assertIn("SEC", repr(resolved))

    def test_resolves_a_loaded_manifest(self) -> None:
        self.mh.bottle("dev", 'env:\n  TZ: UTC\n  TOKEN: "${MY_TOKEN}"\n  PW: "?Password"\n')
        self.mh.agent("a", {"bottle": "dev"})
        manifest = self.load("a")
        resolved = resolve(manifest.bottle.env, {"MY_TOKEN": "tok"}, lambda e: f"answer to {e.value}")
        self.assertEqual(resolved.values, {"TZ": "UTC", "TOKEN": "tok", "PW": "answer to Password"})
        self.assertIsInstance(resolved, ResolvedEnv)

    def test_missing_host_variable_from_a_loaded_manifest_names_its_line(self) -> None:
        path = self.mh.bottle("dev", 'env:\n  TZ: UTC\n  TOKEN: "${MY_TOKEN}"\n')
        self.mh.agent("a", {"bottle": "dev"})
        with self.assertRaises(ManifestError) as cm:
            resolve(self.load("a").bottle.env, {}, None)
        self.assertManifestError(cm.exception, path=path, line=4, key="env.TOKEN", contains="MY_TOKEN")


if __name__ == "__main__":
    unittest.main()
