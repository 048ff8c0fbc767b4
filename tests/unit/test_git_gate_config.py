"""The git-gate's JSON config: what it accepts, and that every mistake is refused by name."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.git_gate.config import DEFAULT_USERNAME, ConfigError, load, parse

SSH = {"name": "app", "url": "git@github.com:org/app.git", "auth": "ssh-key",
       "ssh_key_file": "/etc/bot-bottle/git-gate/app.key", "known_hosts_file": "/etc/bot-bottle/git-gate/app.known_hosts"}
HTTPS = {"name": "lib", "url": "https://github.com/org/lib.git", "auth": "https-token",
         "token_file": "/etc/bot-bottle/git-gate/lib.token"}


class ParseTest(unittest.TestCase):
    def test_full_config(self) -> None:
        config = parse({
            "version": 1, "user": {"name": "Agent", "email": "a@example.com"}, "secrets_file": "/etc/bot-bottle/secrets.json",
            "connect_timeout": 3, "repos": [SSH, {**HTTPS, "username": "oauth2"}, {"name": "docs", "url": "https://x.org/d.git"}],
        })
        self.assertEqual((config.user_name, config.user_email), ("Agent", "a@example.com"))
        self.assertEqual(config.connect_timeout, 3.0)
        self.assertEqual(config.secrets_file, Path("/etc/bot-bottle/secrets.json"))
        app, lib, docs = config.repos
        self.assertTrue(app.is_ssh)
        self.assertEqual(app.ssh_key_file, Path("/etc/bot-bottle/git-gate/app.key"))
        self.assertEqual((lib.auth, lib.username), ("https-token", "oauth2"))
        self.assertEqual((docs.auth, docs.username), ("none", DEFAULT_USERNAME))
        self.assertIs(config.repo("lib"), lib)
        self.assertIsNone(config.repo("nope"))

    def test_minimal_config(self) -> None:
        config = parse({"repos": []})
        self.assertEqual(config.repos, ())
        self.assertIsNone(config.user_name)

    def test_mistakes_are_refused_by_name(self) -> None:
        cases = {
            "unknown key(s): extra": {"repos": [], "extra": 1},
            "version 2": {"version": 2, "repos": []},
            "repos[0]: unknown key(s): token": {"repos": [{**HTTPS, "token": "x"}]},
            "needs ssh_key_file and known_hosts_file": {"repos": [{k: v for k, v in SSH.items() if k != "known_hosts_file"}]},
            "needs token_file": {"repos": [{k: v for k, v in HTTPS.items() if k != "token_file"}]},
            "only used with auth ssh-key": {"repos": [{**HTTPS, "ssh_key_file": "/k"}]},
            "only used with auth https-token": {"repos": [{**SSH, "token_file": "/t"}]},
            "expected one of": {"repos": [{**HTTPS, "auth": "password"}]},
            "absolute path": {"repos": [{**HTTPS, "token_file": "lib.token"}]},
            "duplicate name(s): app": {"repos": [SSH, SSH]},
            "may hold letters": {"repos": [{**HTTPS, "name": "../etc"}]},
            "not a git URL": {"repos": [{**HTTPS, "url": "--upload-pack=evil"}]},
            "connect_timeout": {"repos": [], "connect_timeout": 0},
            "user.name": {"repos": [], "user": {"name": ""}},
            "username": {"repos": [{**HTTPS, "username": "a:b"}]},
        }
        for expected, raw in cases.items():
            with self.subTest(expected=expected):
                with self.assertRaises(ConfigError) as ctx:
                    parse(raw)
                self.assertIn(expected, str(ctx.exception))

    def test_load_reports_the_file(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "git-gate.json"
            with self.assertRaisesRegex(ConfigError, "no such file"):
                load(path)
            path.write_text("{not json")
            with self.assertRaisesRegex(ConfigError, "git-gate.json: not JSON"):
                load(path)
            path.write_text(json.dumps({"repos": [HTTPS]}))
            self.assertEqual(load(path).repos[0].name, "lib")


if __name__ == "__main__":
    unittest.main()
