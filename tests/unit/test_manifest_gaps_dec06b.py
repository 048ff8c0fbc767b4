"""Gaps left by the audit of manifests and the dry-run plan: route hosts that reach more than
their name says, start's launch flags in the plan, validate on deep ``extends`` chains, empty
host variables, and one exit code for one bad manifest whichever command reads it.

Manifests are literal strings: line 1 is the opening ``---``, so the first YAML line is line 2.
"""

from __future__ import annotations

import collections
import json
import sys
import unittest
from pathlib import Path
from unittest import mock

from tests.fixtures import ManifestTestCase

ROUTES = "egress:\n  routes:\n"  # the first route is on line 4


def route(host: str) -> str:
    return ROUTES + f"    - host: {json.dumps(host)}\n"


class PublicSuffixWildcardTests(ManifestTestCase):
    """A wildcard over a registry (``*.co.uk``) is every company registered there: refused."""

    @property
    def bpath(self) -> Path:
        return self.mh.bottles_dir / "b.md"

    def test_a_wildcard_over_co_uk_is_refused_at_its_line(self) -> None:
        err = self.bottle_error(route("*.co.uk"))
        self.assertManifestError(err, path=self.bpath, line=4, key="egress.routes[0].host",
                                 contains=("'*.co.uk'", "public suffix", "'*.example.co.uk'"))

    def test_common_registries_of_other_countries_are_refused(self) -> None:
        for host in ("*.com.au", "*.co.jp", "*.or.jp", "*.org.uk", "*.com.br", "*.CO.NZ."):
            with self.subTest(host=host):
                err = self.bottle_error(route(host))
                self.assertManifestError(err, path=self.bpath, line=4, key="egress.routes[0].host",
                                         contains="public suffix")

    def test_a_wildcard_written_as_a_bare_string_is_refused_too(self) -> None:
        err = self.bottle_error(ROUTES + "    - api.example.com\n    - '*.co.uk'\n")
        self.assertManifestError(err, path=self.bpath, line=5, key="egress.routes[1].host", contains="public suffix")

    def test_a_company_under_a_registry_is_a_route(self) -> None:
        for host in ("*.example.co.uk", "co.uk", "www.example.com.au", "*.example.com"):
            with self.subTest(host=host):
                self.assertEqual(self.load_bottle(route(host)).routes[0].host, host)


class SharedHostingWildcardTests(ManifestTestCase):
    """A wildcard over a hosting platform is often needed (downloads, a CDN) but covers every
    tenant's site, an attacker's too: a warning naming the file and line, not an error."""

    def warnings(self, host: str) -> list[str]:
        self.mh.bottle("b", route(host))
        self.mh.agent("a", {"bottle": "b"})
        return [w for w in self.load().warnings if "egress route" in w]

    def test_a_wildcard_over_github_io_is_a_warning_with_its_line(self) -> None:
        (warning,) = self.warnings("*.github.io")
        self.assertTrue(warning.startswith(f"{self.mh.bottles_dir / 'b.md'}:4: "), warning)
        self.assertIn("anybody can make one", warning)

    def test_a_wildcard_over_a_storage_service_zone_is_a_warning(self) -> None:
        self.assertEqual(len(self.warnings("*.s3.amazonaws.com")), 1)

    def test_one_tenants_own_subdomains_are_no_warning(self) -> None:
        self.assertEqual(self.warnings("*.docs.github.io"), [])
        self.assertEqual(self.warnings("*.example.com"), [])

    def test_the_warning_reaches_the_plan_and_validate(self) -> None:
        self.mh.bottle("b", route("*.githubusercontent.com"))
        self.mh.agent("a", {"bottle": "b"})
        plan = self.mh.run_cli("start", "a", "--dry-run", "--format", "json", env={"ANTHROPIC_API_KEY": "k"})
        self.assertEqual(plan.code, 0, plan.stderr)
        self.assertTrue(any("'*.githubusercontent.com' covers" in w for w in json.loads(plan.stdout)["warnings"]))
        validate = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(validate.code, 0, validate.stderr)
        self.assertTrue(any("'*.githubusercontent.com' covers" in w for w in json.loads(validate.stdout)["warnings"]))


class MetadataEndpointTests(ManifestTestCase):
    """The names clouds give their instance-metadata service: the proxy never connects to their
    addresses, so a route to one is refused like the addresses themselves."""

    @property
    def bpath(self) -> Path:
        return self.mh.bottles_dir / "b.md"

    def test_metadata_names_are_refused_at_their_line(self) -> None:
        for host in ("metadata.google.internal", "Metadata.Google.Internal.", "instance-data",
                     "instance-data.ec2.internal", "metadata.tencentyun.com"):
            with self.subTest(host=host):
                err = self.bottle_error(route(host))
                self.assertManifestError(err, path=self.bpath, line=4, key="egress.routes[0].host",
                                         contains="instance-metadata service")

    def test_the_bare_name_metadata_says_how_to_name_a_service_of_ones_own(self) -> None:
        err = self.bottle_error(route("metadata"))
        self.assertManifestError(err, path=self.bpath, line=4, key="egress.routes[0].host",
                                 contains=("instance-metadata", "full name"))

    def test_metadata_addresses_stay_refused(self) -> None:
        for host in ("169.254.169.254", "fd00:ec2::254", "[fd00:ec2::254]", "100.100.100.200"):
            with self.subTest(host=host):
                err = self.bottle_error(route(host))
                self.assertManifestError(err, path=self.bpath, line=4, key="egress.routes[0].host",
                                         contains="metadata")

    def test_a_repo_upstream_on_a_metadata_name_is_refused(self) -> None:
        err = self.bottle_error("git-gate:\n  repos:\n    x: https://metadata.google.internal/a/b.git\n")
        self.assertManifestError(err, path=self.bpath, line=4, key="git-gate.repos.x.url",
                                 contains="instance-metadata service")

    def test_a_wildcard_covering_a_metadata_name_is_a_warning(self) -> None:
        self.mh.bottle("b", route("*.google.internal"))
        self.mh.agent("a", {"bottle": "b"})
        warnings = [w for w in self.load().warnings if "metadata.google.internal" in w]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("b.md:4: ", warnings[0])

    def test_a_name_that_only_contains_metadata_is_a_route(self) -> None:
        for host in ("metadata.example.com", "my-metadata", "metadata.internal.example.com"):
            with self.subTest(host=host):
                self.assertEqual(self.load_bottle(route(host)).routes[0].host, host)


class DryRunLaunchFlagsTests(ManifestTestCase):
    """``--preserve``, ``-y`` and ``--headless`` given with ``--dry-run`` are shown, never dropped."""

    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", {"egress": {"routes": ["example.com"]}})
        self.mh.agent("a", {"bottle": "dev"})

    def plan_json(self, *flags: str) -> dict:
        result = self.mh.run_cli("start", "a", "--dry-run", "--format", "json", *flags)
        self.assertEqual(result.code, 0, result.stderr)
        return json.loads(result.stdout)

    def test_the_json_plan_says_what_the_launch_would_do(self) -> None:
        self.assertEqual(self.plan_json()["launch"], {"preserve": False, "confirm": True, "headless": False})

    def test_preserve_and_yes_are_in_the_json_plan(self) -> None:
        self.assertEqual(self.plan_json("--preserve", "-y")["launch"],
                         {"preserve": True, "confirm": False, "headless": False})

    def test_headless_is_in_the_json_plan(self) -> None:
        self.assertEqual(self.plan_json("--headless", "--prompt", "fix it")["launch"],
                         {"preserve": False, "confirm": False, "headless": True})

    def test_the_launch_key_is_added_not_in_place_of_another(self) -> None:
        data = self.plan_json("--preserve")
        for key in ("schema_version", "agent", "bottle", "backend", "runtime", "hosts", "routes", "env_names",
                    "git_gate", "images", "missing_host_vars", "warnings"):
            self.assertIn(key, data)

    def test_the_text_plan_shows_preserve_and_yes(self) -> None:
        result = self.mh.run_cli("start", "a", "--dry-run", "--preserve", "--yes")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("state kept for `bot-bottle resume` (--preserve)", result.stdout)
        self.assertIn("none (--yes)", result.stdout)

    def test_the_text_plan_without_flags_says_what_happens_on_exit(self) -> None:
        result = self.mh.run_cli("start", "a", "--dry-run")
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn("kept for `bot-bottle resume` when the agent fails", result.stdout)
        self.assertNotIn("confirmation", result.stdout)


def _chain(mh, depth: int, agents: int) -> None:  # type: ignore[no-untyped-def]
    """Bottles b0 <- b1 <- ... (each extends the one before) and agents on the deepest ones."""
    for i in range(depth):
        extends = f"extends: b{i - 1}\n" if i else ""
        mh.bottle(f"b{i}", extends + f"env:\n  V{i}: x\negress:\n  routes:\n    - host: h{i}.example.com\n")
    for j in range(agents):
        mh.agent(f"a{j}", {"bottle": f"b{depth - 1 - j % 3}"})


class DeepExtendsTests(ManifestTestCase):
    """validate reads each bottle of a shared chain a bounded number of times, not once per
    agent, and its errors still name the file and line they are in."""

    def reads_during_validate(self) -> collections.Counter[Path]:
        from bot_bottle.manifest import frontmatter

        real = frontmatter.read
        reads: collections.Counter[Path] = collections.Counter()

        def counting(path, text=None):  # type: ignore[no-untyped-def]
            reads[Path(path)] += 1
            return real(path, text)

        with mock.patch.object(frontmatter, "read", side_effect=counting):
            result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 0, result.stderr)
        return reads

    def test_a_shared_chain_is_read_a_bounded_number_of_times(self) -> None:
        _chain(self.mh, depth=30, agents=20)
        reads = self.reads_during_validate()
        bottom = self.mh.bottles_dir / "b0.md"
        self.assertLessEqual(reads[bottom], 2, reads[bottom])
        self.assertLessEqual(max(reads.values()), 2, reads.most_common(3))

    def test_validate_hashes_no_image_folders_per_agent(self) -> None:
        # What validate checks of a whole agent never depends on the image references, whose
        # computing hashes the image build folders: it was most of validate's time after reading.
        _chain(self.mh, depth=3, agents=5)
        with mock.patch("bot_bottle.plan.default_images") as images:
            result = self.mh.run_cli("validate")
        self.assertEqual(result.code, 0, result.stderr)
        images.assert_not_called()

    def test_the_folded_chain_keeps_its_order_and_every_layer(self) -> None:
        _chain(self.mh, depth=12, agents=1)
        bottle = self.load("a0").bottle
        self.assertEqual([p.stem for p in bottle.chain], [f"b{i}" for i in range(12)])
        self.assertEqual([r.host for r in bottle.routes], [f"h{i}.example.com" for i in range(12)])
        self.assertEqual([e.name for e in bottle.env], [f"V{i}" for i in range(12)])

    def test_a_broken_parent_is_named_for_every_agent_below_it(self) -> None:
        from bot_bottle.manifest import ManifestError, Session

        _chain(self.mh, depth=8, agents=3)
        broken = self.mh.bottles_dir / "b2.md"
        broken.write_text("---\nextends: b1\nbogus: 1\n---\n", encoding="utf-8")
        session = Session(self.mh.layout)
        for agent in ("a0", "a1", "a2"):
            with self.subTest(agent=agent), self.assertRaises(ManifestError) as cm:
                session.load(agent)
            self.assertManifestError(cm.exception, path=broken, line=3, key="bogus", contains="unknown key")

    def test_validate_names_a_broken_parent_once_at_its_line(self) -> None:
        _chain(self.mh, depth=8, agents=3)
        (self.mh.bottles_dir / "b2.md").write_text("---\nextends: b1\nbogus: 1\n---\n", encoding="utf-8")
        result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 2, result.stderr)
        errors = json.loads(result.stdout)["errors"]
        self.assertEqual([(Path(e["path"]).name, e["line"], e["key"]) for e in errors], [("b2.md", 3, "bogus")])

    def test_a_cycle_is_named_once_with_each_side(self) -> None:
        self.mh.bottle("x", "extends: y\n")
        self.mh.bottle("y", "extends: x\n")
        result = self.mh.run_cli("validate", "--format", "json")
        self.assertEqual(result.code, 2, result.stderr)
        errors = json.loads(result.stdout)["errors"]
        self.assertEqual(len(errors), 1, errors)
        text = errors[0]["text"]
        for side in (self.mh.bottles_dir / "x.md", self.mh.bottles_dir / "y.md"):
            self.assertIn(f"{side}:2", text)


class EmptyHostVariableTests(ManifestTestCase):
    """``missing_host_vars`` lists exactly what a real start refuses: a credential the proxy must
    inject is refused when set but empty; an env ``${VAR}`` is refused only when unset (an empty
    value is handed to the agent as it is)."""

    def setUp(self) -> None:
        super().setUp()
        self.mh.bottle("dev", {
            "env": {"DSN": "${SENTRY_DSN}"},
            "egress": {"routes": [{"host": "api.example.com", "auth": {"scheme": "bearer", "token_ref": "EX_TOKEN"}}]},
        })
        self.mh.agent("a", {"bottle": "dev"})

    def missing(self, env: dict[str, str], unset: tuple[str, ...] = ()) -> list[str]:
        result = self.mh.run_cli("start", "a", "--dry-run", "--format", "json", env=env, unset=unset)
        self.assertEqual(result.code, 0, result.stderr)
        return json.loads(result.stdout)["missing_host_vars"]

    def refused_by_start(self, environ: dict[str, str]) -> set[str]:
        """The variables a real start refuses, asked of the functions a launch calls first."""
        from bot_bottle import lifecycle, plan as plan_mod
        from bot_bottle.errors import BotBottleError
        from bot_bottle.manifest import env as env_mod
        from tests.fixtures import TEST_IMAGES

        manifest = self.load()
        plan = plan_mod.resolve(manifest, environ=environ, images=TEST_IMAGES)
        refused = set()
        try:
            lifecycle.collect_secrets(manifest, plan, environ, None)
        except BotBottleError as exc:
            refused |= {name for name in plan.credential_refs if name in str(exc)}
        for entry in manifest.bottle.env:
            try:
                env_mod.resolve([entry], environ, None)
            except BotBottleError:
                refused.add(entry.value)
        return refused

    def test_an_empty_credential_is_listed(self) -> None:
        self.assertEqual(self.missing({"EX_TOKEN": "", "SENTRY_DSN": "d", "ANTHROPIC_API_KEY": "k"}), ["EX_TOKEN"])

    def test_an_empty_provider_key_is_listed(self) -> None:
        self.assertEqual(self.missing({"EX_TOKEN": "t", "SENTRY_DSN": "d", "ANTHROPIC_API_KEY": ""}),
                         ["ANTHROPIC_API_KEY"])

    def test_an_empty_env_variable_is_not_listed_as_start_takes_it(self) -> None:
        self.assertEqual(self.missing({"EX_TOKEN": "t", "SENTRY_DSN": "", "ANTHROPIC_API_KEY": "k"}), [])

    def test_an_unset_env_variable_is_listed(self) -> None:
        self.assertEqual(self.missing({"EX_TOKEN": "t", "ANTHROPIC_API_KEY": "k"}, unset=("SENTRY_DSN",)),
                         ["SENTRY_DSN"])

    def test_the_plan_lists_what_start_refuses(self) -> None:
        from bot_bottle import plan as plan_mod
        from tests.fixtures import TEST_IMAGES

        for environ in ({"EX_TOKEN": "", "SENTRY_DSN": "", "ANTHROPIC_API_KEY": "k"},
                        {"EX_TOKEN": "t", "ANTHROPIC_API_KEY": ""},
                        {"SENTRY_DSN": "d", "ANTHROPIC_API_KEY": "k"}):
            with self.subTest(environ=environ):
                plan = plan_mod.resolve(self.load(), environ=environ, images=TEST_IMAGES)
                self.assertEqual(set(plan.missing_host_vars), self.refused_by_start(environ))


class OneExitCodeTests(ManifestTestCase):
    """The same bad manifest exits 2 from every command that reads it."""

    def assert_two_everywhere(self) -> None:
        for argv in (("validate",), ("validate", "--format", "json"), ("start", "a", "--dry-run"),
                     ("start", "a", "--dry-run", "--format", "json"), ("info", "a"), ("info", "a", "--format", "json")):
            with self.subTest(argv=argv):
                result = self.mh.run_cli(*argv)
                self.assertEqual(result.code, 2, result.stderr)
                self.assertNotIn("Traceback", result.stderr)

    def test_an_unknown_key(self) -> None:
        self.mh.bottle("b", "bogus: 1\n")
        self.mh.agent("a", {"bottle": "b"})
        self.assert_two_everywhere()

    def test_a_public_suffix_wildcard(self) -> None:
        self.mh.bottle("b", route("*.co.uk"))
        self.mh.agent("a", {"bottle": "b"})
        self.assert_two_everywhere()

    def test_a_missing_parent(self) -> None:
        self.mh.bottle("b", "extends: nope\n")
        self.mh.agent("a", {"bottle": "b"})
        self.assert_two_everywhere()

    def test_an_edit_that_saves_a_bad_manifest(self) -> None:
        self.mh.bottle("b", route("api.example.com"))
        self.mh.agent("a", {"bottle": "b"})
        editor = self.mh.raw("editor.py", "import sys\nopen(sys.argv[1], 'w').write('---\\nbogus: 1\\n---\\n')\n")
        result = self.mh.run_cli("edit", "b", env={"EDITOR": f"{sys.executable} {editor}", "VISUAL": ""})
        self.assertEqual(result.code, 2, result.stderr)
        self.assertIn("b.md:2: bogus", result.stderr)


if __name__ == "__main__":
    unittest.main()
