"""Bottle file keys: env, egress, git-gate, supervise, agent_provider, and unknown keys.

Manifests are literal strings: line 1 is the opening ``---``, so the first YAML line is line 2.
"""

from __future__ import annotations

import unittest
from pathlib import Path

from bot_bottle.manifest.model import DEFAULT_PORTS, RouteDlp
from tests.fixtures import ManifestTestCase


class BottleKeyTestCase(ManifestTestCase):
    @property
    def bpath(self) -> Path:
        return self.mh.bottles_dir / "b.md"

    def assertBottleError(self, yaml_text: str, *, line: int, key: str | None, contains: str | tuple[str, ...] = ()) -> None:
        err = self.bottle_error(yaml_text)
        self.assertManifestError(err, path=self.bpath, line=line, key=key, contains=contains)


class TopLevelTests(BottleKeyTestCase):
    def test_empty_bottle_has_defaults(self) -> None:
        bottle = self.load_bottle("")
        self.assertEqual(bottle.env, ())
        self.assertEqual(bottle.routes, ())
        self.assertEqual(bottle.repos, ())
        self.assertEqual(bottle.egress_log, 1)
        self.assertTrue(bottle.supervise)
        self.assertIsNone(bottle.supervise_origin)
        self.assertEqual(bottle.template, "claude")
        self.assertEqual(bottle.chain, (self.bpath,))
        self.assertEqual(bottle.name, "b")

    def test_unknown_top_level_key(self) -> None:
        self.assertBottleError(
            "env: {}\nnetwork: open\n", line=3, key="network", contains=("unknown key in a bottle file", "egress")
        )

    def test_misspelt_key(self) -> None:
        self.assertBottleError("git_gate: {}\n", line=2, key="git_gate", contains="unknown key")

    def test_description_key_and_body(self) -> None:
        bottle = self.load_bottle("description: A bottle.\n", body="Body text.\n")
        self.assertEqual(bottle.description, "A bottle.")

    def test_description_defaults_to_first_paragraph_of_the_body(self) -> None:
        bottle = self.load_bottle("", body="\nFirst paragraph\nstill first.\n\nSecond.\n")
        self.assertEqual(bottle.description, "First paragraph\nstill first.")

    def test_description_must_be_a_string(self) -> None:
        self.assertBottleError("description: [a]\n", line=2, key="description", contains="expected a string")

    def test_dict_frontmatter_round_trip(self) -> None:
        bottle = self.load_bottle({"env": {"A": "1"}, "supervise": False})
        self.assertEqual([(e.name, e.value) for e in bottle.env], [("A", "1")])
        self.assertFalse(bottle.supervise)


class EveryErrorTests(BottleKeyTestCase):
    """Independent mistakes in one file are all reported, in line order; dependent ones are not."""

    def test_each_independent_mistake_is_reported_in_line_order(self) -> None:
        from bot_bottle.manifest import ManifestErrors

        err = self.bottle_error(
            "colour: red\n"                                  # line 2
            "env:\n  GOOD: x\n  1BAD: y\n  HTTP_PROXY: z\n"  # 5, 6
            "egress:\n  log: 7\n  routes:\n"                  # 8
            "    - host: a.example\n      bogus: 1\n"         # 11
            "    - b.example\n"
            "    - host: ''\n"                               # 13
            "git-gate:\n  repos:\n    lib: {url: 'ftp://x'}\n"  # 16
            "supervise: maybe\n"                             # 17
        )
        self.assertIsInstance(err, ManifestErrors)
        self.assertEqual(
            [(e.path, e.line, e.key) for e in err.each()],
            [(self.bpath, 2, "colour"), (self.bpath, 5, "env.1BAD"), (self.bpath, 6, "env.HTTP_PROXY"),
             (self.bpath, 8, "egress.log"), (self.bpath, 11, "egress.routes[0].bogus"),
             (self.bpath, 13, "egress.routes[2].host"), (self.bpath, 16, "git-gate.repos.lib.url"),
             (self.bpath, 17, "supervise")],
        )
        # Read as one error, it is the first, and says how many more there are.
        self.assertManifestError(err, path=self.bpath, line=2, key="colour", contains="and 7 more errors in this file")

    def test_a_single_mistake_is_a_plain_error(self) -> None:
        from bot_bottle.manifest import ManifestErrors

        err = self.bottle_error("env:\n  A: x\nsupervise: maybe\n")
        self.assertNotIsInstance(err, ManifestErrors)
        self.assertEqual(err.each(), (err,))
        self.assertNotIn("more error", str(err))

    def test_a_wrong_route_reports_its_first_mistake_only(self) -> None:
        # Its unknown key is the mistake; "needs 'host'" would follow from it and is not repeated.
        err = self.bottle_error("egress:\n  routes:\n    - hots: a.example\n")
        self.assertEqual([e.key for e in err.each()], ["egress.routes[0].hots"])


class EnvTests(BottleKeyTestCase):
    def test_literal(self) -> None:
        bottle = self.load_bottle("env:\n  TZ: UTC\n")
        (entry,) = bottle.env
        self.assertEqual((entry.name, entry.kind, entry.value), ("TZ", "literal", "UTC"))
        self.assertFalse(entry.secret)
        self.assertEqual(entry.origin.path, self.bpath)
        self.assertEqual(entry.origin.line, 3)

    def test_numbers_and_booleans_are_stringified(self) -> None:
        bottle = self.load_bottle("env:\n  N: 3\n  F: 1.5\n  T: true\n  NO: false\n")
        self.assertEqual({e.name: e.value for e in bottle.env}, {"N": "3", "F": "1.5", "T": "true", "NO": "false"})
        self.assertTrue(all(e.kind == "literal" for e in bottle.env))

    def test_empty_string_literal_is_allowed(self) -> None:
        bottle = self.load_bottle('env:\n  EMPTY: ""\n')
        self.assertEqual(bottle.env[0].value, "")
        self.assertEqual(bottle.env[0].kind, "literal")

    def test_prompt(self) -> None:
        bottle = self.load_bottle('env:\n  DB_PASSWORD: "?Password for the staging database"\n')
        (entry,) = bottle.env
        self.assertEqual(entry.kind, "prompt")
        self.assertEqual(entry.value, "Password for the staging database")
        self.assertTrue(entry.secret)

    def test_empty_prompt(self) -> None:
        self.assertBottleError('env:\n  A: x\n  P: "?"\n', line=4, key="env.P", contains="prompt text")

    def test_blank_prompt(self) -> None:
        self.assertBottleError('env:\n  P: "?   "\n', line=3, key="env.P", contains="prompt text")

    def test_host_variable(self) -> None:
        bottle = self.load_bottle('env:\n  SENTRY_DSN: "${HOST_SENTRY}"\n')
        (entry,) = bottle.env
        self.assertEqual(entry.kind, "host")
        self.assertEqual(entry.value, "HOST_SENTRY")
        self.assertTrue(entry.secret)

    def test_host_variable_mixed_with_text(self) -> None:
        self.assertBottleError('env:\n  URL: "https://${HOST}/x"\n', line=3, key="env.URL", contains="whole value")

    def test_host_variable_with_a_bad_name(self) -> None:
        self.assertBottleError('env:\n  A: "${1BAD}"\n', line=3, key="env.A", contains="whole value")

    def test_dollar_without_braces_is_a_literal(self) -> None:
        bottle = self.load_bottle('env:\n  PS: "$HOME/x"\n')
        self.assertEqual(bottle.env[0].kind, "literal")
        self.assertEqual(bottle.env[0].value, "$HOME/x")

    def test_bad_names(self) -> None:
        for name in ("1ABC", "A-B", "A.B", "A B"):
            with self.subTest(name=name):
                self.assertBottleError(f'env:\n  "{name}": x\n', line=3, key=f"env.{name}", contains="not an environment variable name")

    def test_reserved_names(self) -> None:
        for name in ("HTTPS_PROXY", "http_proxy", "NO_PROXY", "ALL_PROXY", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE"):
            with self.subTest(name=name):
                self.assertBottleError(f"env:\n  {name}: x\n", line=3, key=f"env.{name}", contains="set by the bottle itself")

    def test_list_value_rejected(self) -> None:
        self.assertBottleError("env:\n  A: [1, 2]\n", line=3, key="env.A", contains="got a list")

    def test_mapping_value_rejected(self) -> None:
        self.assertBottleError("env:\n  A:\n    b: c\n", line=3, key="env.A", contains="got a mapping")

    def test_null_value_rejected(self) -> None:
        self.assertBottleError("env:\n  A:\n", line=3, key="env.A", contains="null")

    def test_env_must_be_a_mapping(self) -> None:
        self.assertBottleError("env:\n  - A=b\n", line=2, key="env", contains="mapping of variable names")

    def test_entries_keep_file_order(self) -> None:
        bottle = self.load_bottle("env:\n  Z: 1\n  A: 2\n  M: 3\n")
        self.assertEqual([e.name for e in bottle.env], ["Z", "A", "M"])

    # Plain words YAML 1.1 would type: each must reach the agent exactly as written.
    YAML11_WORDS = ("1.10", "yes", "0x10", "010", "12:30", "off", "Y", "1e3", "1_000", ".inf", "2024-01-01", "=", "<<")

    def test_plain_values_reach_the_agent_as_written(self) -> None:
        for word in self.YAML11_WORDS:
            with self.subTest(word=word):
                (entry,) = self.load_bottle(f"env:\n  V: {word}\n").env
                self.assertEqual((entry.kind, entry.value), ("literal", word))

    def test_plain_values_as_written_in_one_file(self) -> None:
        bottle = self.load_bottle("env:\n  V: 1.10\n  F: yes\n  N: 0x10\n  O: 010\n  T: 12:30\n")
        self.assertEqual(
            {e.name: e.value for e in bottle.env}, {"V": "1.10", "F": "yes", "N": "0x10", "O": "010", "T": "12:30"}
        )

    def test_flow_mapping_values_as_written(self) -> None:
        bottle = self.load_bottle("env: {V: 1.10, F: on}\n")
        self.assertEqual({e.name: e.value for e in bottle.env}, {"V": "1.10", "F": "on"})

    def test_values_as_written_survive_extends(self) -> None:
        self.mh.bottle("base", "env:\n  V: 2.10\n  W: 0o17\n")
        bottle = self.load_bottle("extends: base\nenv:\n  W: 010\n")
        self.assertEqual({e.name: e.value for e in bottle.env}, {"V": "2.10", "W": "010"})

    def test_explicit_tag_keeps_its_type(self) -> None:
        # Only a type YAML guessed is undone; a tag the user wrote still converts.
        self.assertEqual(self.load_bottle("env:\n  O: !!int 010\n").env[0].value, "8")
        self.assertEqual(self.load_bottle("env:\n  S: !!str 1.10\n").env[0].value, "1.10")

    def test_tilde_null_value_rejected(self) -> None:
        self.assertBottleError("env:\n  A: ~\n", line=3, key="env.A", contains="null")
        self.assertBottleError("env:\n  A: null\n", line=3, key="env.A", contains="null")

    def test_list_of_numbers_rejected(self) -> None:
        self.assertBottleError("env:\n  A: [1.10]\n", line=3, key="env.A", contains="got a list")

    def test_multi_line_literal_rejected(self) -> None:
        cases = {
            '"s3cr3t-one\\ns3cr3t-two"': "a line break",
            '"s3cr3t-one\\rs3cr3t-two"': "a carriage return",
            '"s3cr3t-one\\0s3cr3t-two"': "a NUL character",
            "|\n    s3cr3t-one\n    s3cr3t-two": "a line break",
            "|\n    s3cr3t-one": "'|-' drops it",
            ">\n    s3cr3t-one": "a line break",
        }
        for value, what in cases.items():
            with self.subTest(value=value):
                err = self.bottle_error(f"env:\n  OK: x\n  A: {value}\n")
                self.assertManifestError(err, path=self.bpath, line=4, key="env.A", contains=("one line", what))
                self.assertNotIn("s3cr3t", str(err) + (err.hint or ""))

    def test_a_literal_longer_than_the_kernel_takes_is_refused_at_its_line(self) -> None:
        err = self.bottle_error("env:\n  OK: x\n  A: " + "y" * (200 * 1024) + "\n")
        self.assertManifestError(err, path=self.bpath, line=4, key="env.A", contains="at most 127 KiB")
        self.assertEqual(len(self.load_bottle("env:\n  A: " + "y" * 100_000 + "\n").env[0].value), 100_000)

    def test_single_line_block_scalar_without_final_break_is_fine(self) -> None:
        self.assertEqual(self.load_bottle("env:\n  A: |-\n    one line\n").env[0].value, "one line")

    def test_multi_line_prompt_and_host_values_are_left_to_launch(self) -> None:
        bottle = self.load_bottle('env:\n  P: "?Paste the key\\n(all of it)"\n  H: "${HOST_KEY}"\n')
        self.assertEqual([(e.name, e.kind) for e in bottle.env], [("P", "prompt"), ("H", "host")])

    def test_validate_reports_a_multi_line_literal(self) -> None:
        from bot_bottle.manifest import validate

        self.mh.bottle("b", 'env:\n  A: "s3cr3t\\nx"\n')
        self.mh.agent("a", {"bottle": "b"})
        report = validate(self.mh.layout)
        self.assertEqual(len(report.errors), 1, report.errors)
        self.assertManifestError(report.errors[0], path=self.bpath, line=3, key="env.A", contains="one line")
        self.assertNotIn("s3cr3t", str(report.errors[0]))


class EgressLogTests(BottleKeyTestCase):
    def test_levels(self) -> None:
        for level in (0, 1, 2):
            with self.subTest(level=level):
                bottle = self.load_bottle(f"egress:\n  log: {level}\n")
                self.assertEqual(bottle.egress_log, level)
                self.assertEqual(bottle.egress_log_origin.line, 3)

    def test_bad_values(self) -> None:
        for value in ("3", "-1", "true", "false", '"1"', "high", "[1]"):
            with self.subTest(value=value):
                self.assertBottleError(f"egress:\n  log: {value}\n", line=3, key="egress.log", contains="0 (off)")

    def test_unknown_egress_key(self) -> None:
        self.assertBottleError("egress:\n  log: 1\n  allow: [a.com]\n", line=4, key="egress.allow", contains="unknown key in egress")

    def test_egress_must_be_a_mapping(self) -> None:
        self.assertBottleError("egress: [a.com]\n", line=2, key="egress", contains="expected a mapping")


class RouteTests(BottleKeyTestCase):
    def route(self, yaml_route: str) -> object:
        bottle = self.load_bottle("egress:\n  routes:\n" + yaml_route)
        self.assertEqual(len(bottle.routes), 1)
        return bottle.routes[0]

    def test_route_as_a_string(self) -> None:
        route = self.route("    - pypi.org\n")
        self.assertEqual(route.host, "pypi.org")
        self.assertEqual(route.ports, DEFAULT_PORTS)
        self.assertEqual(route.matches, ())
        self.assertIsNone(route.auth)
        self.assertEqual(route.dlp, RouteDlp())
        self.assertFalse(route.tls_passthrough)
        self.assertEqual(route.origin.line, 4)

    def test_route_as_a_mapping(self) -> None:
        route = self.route("    - host: pypi.org\n      ports: [443]\n")
        self.assertEqual(route.host, "pypi.org")
        self.assertEqual(route.ports, (443,))

    def test_routes_must_be_a_list(self) -> None:
        self.assertBottleError("egress:\n  routes: pypi.org\n", line=3, key="egress.routes", contains="list of routes")

    def test_route_needs_host(self) -> None:
        self.assertBottleError("egress:\n  routes:\n    - ports: [443]\n", line=4, key="egress.routes[0]", contains="needs 'host'")

    def test_unknown_route_key(self) -> None:
        self.assertBottleError(
            "egress:\n  routes:\n    - host: a.com\n      path: /x\n", line=5, key="egress.routes[0].path", contains="unknown key in a route"
        )

    def test_route_of_a_wrong_type(self) -> None:
        self.assertBottleError("egress:\n  routes:\n    - a.com\n    - 42\n", line=5, key="egress.routes[1]", contains="got a number")

    def test_normalisation_case_and_trailing_dot(self) -> None:
        route = self.route("    - Api.GitHub.COM.\n")
        self.assertEqual(route.host, "api.github.com")

    def test_valid_hosts(self) -> None:
        for host in ("example.com", "a-b.example.com", "*.example.com", "xn--bcher-kva.example", "10.1.2.3", "2001:db8::1"):
            with self.subTest(host=host):
                route = self.route(f'    - "{host}"\n')
                self.assertEqual(route.host, host)

    def test_invalid_hosts(self) -> None:
        cases = {
            "https://example.com": "without a scheme",
            "example.com/api": "matches",
            "example.com:8443": "ports",
            "*": "wildcard",
            "*.com": "at least two labels",
            "a.*.example.com": "whole first label",
            "*foo.example.com": "whole first label",
            "localhost": "sidecar's own loopback",
            "api.localhost": "sidecar's own loopback",
            "127.0.0.1": "loopback and unspecified",
            "::1": "loopback and unspecified",
            "0.0.0.0": "loopback and unspecified",
            "169.254.169.254": "link-local or cloud metadata",
            "fe80::1": "link-local or cloud metadata",
            "fd00:ec2::254": "link-local or cloud metadata",
            "::ffff:127.0.0.1": "the sidecar itself",
            "224.0.0.1": "multicast",
            "127.1": "four decimal numbers",
            "0x7f.1": "four decimal numbers",
            "2130706433": "four decimal numbers",
            "017700000001": "four decimal numbers",
            "010.0.0.1": "four decimal numbers",
            "a..example.com": "not a valid host name",
            "-a.example.com": "not a valid host name",
            "a-.example.com": "not a valid host name",
            "under_score.example.com": "not a valid host name",
            "a" * 64 + ".com": "not a valid host name",
            "bottle.internal": "reserved",
            "proxy.bottle.internal": "reserved",
            "*.bottle.internal": "reserved",
            "Proxy.Bottle.Internal.": "reserved",
        }
        for host, why in cases.items():
            with self.subTest(host=host):
                self.assertBottleError(
                    f'egress:\n  routes:\n    - host: "{host}"\n', line=4, key="egress.routes[0].host", contains=why
                )

    def test_similar_names_are_not_reserved(self) -> None:
        for host in ("mybottle.internal", "bottle.internal.example.com"):
            with self.subTest(host=host):
                self.assertEqual(self.route(f"    - {host}\n").host, host)

    def test_empty_host(self) -> None:
        self.assertBottleError('egress:\n  routes:\n    - host: ""\n', line=4, key="egress.routes[0].host", contains="non-empty")

    def test_ports(self) -> None:
        self.assertEqual(self.route("    - host: a.com\n      ports: 8443\n").ports, (8443,))
        self.mh.bottle("b", "")
        self.assertEqual(self.route("    - host: a.com\n      ports: [8443, 443, 443]\n").ports, (443, 8443))

    def test_bad_ports(self) -> None:
        for value, key in (("[70000]", "egress.routes[0].ports[0]"), ("[true]", "egress.routes[0].ports[0]"),
                           ('["443"]', "egress.routes[0].ports[0]"), ("[]", "egress.routes[0].ports"), ("https", "egress.routes[0].ports")):
            with self.subTest(value=value):
                err = self.bottle_error(f"egress:\n  routes:\n    - host: a.com\n      ports: {value}\n")
                self.assertManifestError(err, path=self.bpath, line=5, key=key)

    def test_port_zero_scalar(self) -> None:
        self.assertBottleError("egress:\n  routes:\n    - host: a.com\n      ports: 0\n", line=5, key="egress.routes[0].ports[0]", contains="1 to 65535")


class MatchTests(BottleKeyTestCase):
    HEAD = "egress:\n  routes:\n    - host: api.example.com\n      matches:\n"  # matches on line 5

    def route(self, matches: str) -> object:
        return self.load_bottle(self.HEAD + matches).routes[0]

    def test_paths_methods_headers(self) -> None:
        route = self.route(
            "        - paths: [/v1/, /v2/]\n"
            "          methods: [get, HEAD, GET]\n"
            "          headers:\n"
            "            X-Team: blue\n"
            "            X-Num: 7\n"
            "        - paths: /health\n"
        )
        first, second = route.matches
        self.assertEqual(first.paths, ("/v1/", "/v2/"))
        self.assertEqual(first.methods, ("GET", "HEAD"))
        self.assertEqual(first.headers, (("x-team", "blue"), ("x-num", "7")))
        self.assertEqual(second.paths, ("/health",))
        self.assertEqual(second.methods, ())

    def test_methods_as_a_string(self) -> None:
        self.assertEqual(self.route("        - methods: post\n").matches[0].methods, ("POST",))

    def test_websocket_is_named_among_methods(self) -> None:
        self.assertEqual(self.route("        - methods: [GET, websocket]\n").matches[0].methods, ("GET", "WEBSOCKET"))

    def test_matches_must_be_a_non_empty_list(self) -> None:
        self.assertBottleError(self.HEAD.replace("matches:\n", "matches: []\n"), line=5, key="egress.routes[0].matches", contains="non-empty list")
        self.assertBottleError(self.HEAD.replace("matches:\n", "matches: {paths: [/]}\n"), line=5, key="egress.routes[0].matches", contains="non-empty list")

    def test_empty_entry(self) -> None:
        self.assertBottleError(self.HEAD + "        - {}\n", line=6, key="egress.routes[0].matches[0]", contains="match everything")

    def test_entry_must_be_a_mapping(self) -> None:
        self.assertBottleError(self.HEAD + "        - /v1\n", line=6, key="egress.routes[0].matches[0]", contains="match entry")

    def test_unknown_entry_key(self) -> None:
        self.assertBottleError(
            self.HEAD + "        - paths: [/a]\n          query: x\n", line=7, key="egress.routes[0].matches[0].query", contains="unknown key in a match entry"
        )

    def test_path_must_start_with_a_slash(self) -> None:
        self.assertBottleError(
            self.HEAD + "        - paths:\n            - /ok\n            - v1/\n", line=8, key="egress.routes[0].matches[0].paths[1]", contains="start with '/'"
        )

    def test_a_star_only_ends_a_path(self) -> None:
        # The sidecar's policy parser refuses these: accepted here, the bottle failed to start.
        for path in ("/a*b", "/*/x", "/**"):
            with self.subTest(path=path):
                self.assertBottleError(self.HEAD + f'        - paths: ["/ok", "{path}"]\n', line=6,
                                       key="egress.routes[0].matches[0].paths[1]", contains="allowed only at the end")
        self.assertEqual(self.route("        - paths: [/repo*, /a/*]\n").matches[0].paths, ("/repo*", "/a/*"))

    def test_paths_follow_the_policy_parser(self) -> None:
        from bot_bottle.sidecar.egress.policy import Policy, PolicyError

        for path in ("/a*b", "/*/x", "/*", "/a/*", "v1", "/", "*", "/a*b*"):
            with self.subTest(path=path):
                try:
                    Policy.from_dict({"version": 2, "routes": [{"host": "a.com", "matches": [{"paths": [path]}]}]})
                    sidecar_ok = True
                except PolicyError:
                    sidecar_ok = False
                try:
                    self.route(f'        - paths: ["{path}"]\n')
                    manifest_ok = True
                except Exception:  # noqa: BLE001 - any refusal counts
                    manifest_ok = False
                self.assertEqual(manifest_ok, sidecar_ok)

    def test_path_must_be_a_string(self) -> None:
        self.assertBottleError(self.HEAD + "        - paths: [[/a]]\n", line=6, key="egress.routes[0].matches[0].paths[0]", contains="expected a string")

    def test_numeric_path_is_read_as_written_and_still_needs_a_slash(self) -> None:
        self.assertBottleError(self.HEAD + "        - paths: [010]\n", line=6, key="egress.routes[0].matches[0].paths[0]", contains="got '010'")

    def test_unknown_method(self) -> None:
        self.assertBottleError(self.HEAD + "        - methods: [GET, FETCH]\n", line=6, key="egress.routes[0].matches[0].methods[1]", contains="unknown HTTP method")

    def test_bad_header_name(self) -> None:
        self.assertBottleError(
            self.HEAD + "        - headers:\n            'X Bad': 1\n", line=7, key="egress.routes[0].matches[0].headers.X Bad", contains="not a valid HTTP header name"
        )

    def test_headers_must_be_a_mapping(self) -> None:
        self.assertBottleError(self.HEAD + "        - headers: [X-A]\n", line=6, key="egress.routes[0].matches[0].headers", contains="mapping of header names")

    def test_header_value_must_be_a_string(self) -> None:
        self.assertBottleError(self.HEAD + "        - headers:\n            X-A: [1]\n", line=7, key="egress.routes[0].matches[0].headers.X-A", contains="expected a string")
        self.assertBottleError(self.HEAD + "        - headers:\n            X-A: {b: 1}\n", line=7, key="egress.routes[0].matches[0].headers.X-A", contains="expected a string")

    def test_null_header_value_rejected(self) -> None:
        self.assertBottleError(self.HEAD + "        - headers:\n            X-A:\n", line=7, key="egress.routes[0].matches[0].headers.X-A", contains="null")

    def test_header_values_as_written(self) -> None:
        for word in ("2.10", "yes", "0x10", "010", "12:30", "false", "2024-01-01"):
            with self.subTest(word=word):
                route = self.route(f"        - headers:\n            x-api-version: {word}\n")
                self.assertEqual(route.matches[0].headers, (("x-api-version", word),))

    def test_header_values_as_written_in_one_entry(self) -> None:
        route = self.route("        - headers: {x-api-version: 2.10, x-a: yes, x-b: 0x10, x-c: 010, x-d: 12:30}\n")
        self.assertEqual(
            route.matches[0].headers,
            (("x-api-version", "2.10"), ("x-a", "yes"), ("x-b", "0x10"), ("x-c", "010"), ("x-d", "12:30")),
        )


class AuthTests(BottleKeyTestCase):
    HEAD = "egress:\n  routes:\n    - host: api.example.com\n      auth:\n"  # auth on line 5

    def auth(self, body: str) -> object:
        return self.load_bottle(self.HEAD + body).routes[0].auth

    def test_schemes(self) -> None:
        for scheme in ("bearer", "token", "basic", "Bearer"):
            with self.subTest(scheme=scheme):
                auth = self.auth(f"        scheme: {scheme}\n        token_ref: API_TOKEN\n")
                self.assertEqual(auth.scheme, scheme.lower())
                self.assertEqual(auth.token_ref, "API_TOKEN")
                self.assertIsNone(auth.header)

    def test_header_scheme(self) -> None:
        auth = self.auth("        scheme: header\n        token_ref: KEY\n        header: X-Api-Key\n")
        self.assertEqual((auth.scheme, auth.token_ref, auth.header), ("header", "KEY", "x-api-key"))

    def test_header_scheme_needs_header(self) -> None:
        self.assertBottleError(self.HEAD + "        scheme: header\n        token_ref: KEY\n", line=5, key="egress.routes[0].auth", contains="needs 'header'")

    def test_header_only_with_header_scheme(self) -> None:
        self.assertBottleError(
            self.HEAD + "        scheme: bearer\n        token_ref: KEY\n        header: X-Key\n", line=8, key="egress.routes[0].auth.header", contains="only used with 'scheme: header'"
        )

    def test_bad_header_name(self) -> None:
        self.assertBottleError(
            self.HEAD + "        scheme: header\n        token_ref: KEY\n        header: 'x key'\n", line=8, key="egress.routes[0].auth.header", contains="not a valid HTTP header name"
        )

    def test_unknown_scheme(self) -> None:
        self.assertBottleError(self.HEAD + "        scheme: digest\n        token_ref: KEY\n", line=6, key="egress.routes[0].auth.scheme", contains="unknown auth scheme")

    def test_missing_scheme(self) -> None:
        self.assertBottleError(self.HEAD + "        token_ref: KEY\n", line=5, key="egress.routes[0].auth", contains="needs 'scheme'")

    def test_missing_token_ref(self) -> None:
        self.assertBottleError(self.HEAD + "        scheme: bearer\n", line=5, key="egress.routes[0].auth", contains="needs 'token_ref'")

    def test_token_ref_must_be_a_variable_name(self) -> None:
        self.assertBottleError(
            self.HEAD + '        scheme: bearer\n        token_ref: "${TOKEN}"\n', line=7, key="egress.routes[0].auth.token_ref", contains="not an environment variable name"
        )

    def test_a_token_written_in_place_of_its_variables_name_is_refused_and_never_echoed(self) -> None:
        token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
        err = self.bottle_error(self.HEAD + f"        scheme: bearer\n        token_ref: {token}\n")
        self.assertManifestError(err, path=self.bpath, line=7, key="egress.routes[0].auth.token_ref",
                                 contains=("a token itself", "GitHub token"))
        self.assertNotIn(token, str(err) + (err.hint or ""))
        key = "sk-ant-api03-" + "Zq8xW2vB7nM4kJ6hG1fD9sA3pL5oI0uY7tR2eE4wQ6"
        err = self.bottle_error(self.HEAD + f"        scheme: bearer\n        token_ref: {key}\n")
        self.assertIn("Anthropic API key", str(err))
        self.assertNotIn(key, str(err) + (err.hint or ""))
        # Not a name, nor a known format (a home-grown secret): refused without quoting it either.
        odd = "s3cr3t-Zq8xW2vB7nM4k"
        err = self.bottle_error(self.HEAD + f"        scheme: bearer\n        token_ref: {odd}\n")
        self.assertIn("not an environment variable name", str(err))
        self.assertNotIn(odd, str(err) + (err.hint or ""))

    def test_unknown_auth_key(self) -> None:
        self.assertBottleError(
            self.HEAD + "        scheme: bearer\n        token_ref: K\n        value: abc\n", line=8, key="egress.routes[0].auth.value", contains="unknown key in route auth"
        )

    def test_auth_must_be_a_mapping(self) -> None:
        self.assertBottleError(self.HEAD.replace("auth:\n", "auth: bearer\n"), line=5, key="egress.routes[0].auth", contains="'scheme' and 'token_ref'")


class DlpTests(BottleKeyTestCase):
    HEAD = "egress:\n  routes:\n    - host: api.example.com\n      dlp:\n"  # dlp on line 5

    def test_defaults(self) -> None:
        route = self.load_bottle("egress:\n  routes: [a.com]\n").routes[0]
        self.assertEqual(route.dlp, RouteDlp(outbound_on_match=None, tokens=True, secrets=True, entropy=False, inbound=True))

    def test_switches(self) -> None:
        dlp = self.load_bottle(self.HEAD + "        tokens: false\n        secrets: false\n        entropy: true\n        inbound: false\n").routes[0].dlp
        self.assertEqual((dlp.tokens, dlp.secrets, dlp.entropy, dlp.inbound), (False, False, True, False))
        self.assertIsNone(dlp.outbound_on_match)

    def test_outbound_on_match_values(self) -> None:
        for action in ("block", "redact", "supervise"):
            with self.subTest(action=action):
                dlp = self.load_bottle(self.HEAD + f"        outbound_on_match: {action}\n").routes[0].dlp
                self.assertEqual(dlp.outbound_on_match, action)

    def test_bad_outbound_on_match(self) -> None:
        self.assertBottleError(self.HEAD + "        outbound_on_match: allow\n", line=6, key="egress.routes[0].dlp.outbound_on_match", contains="block, redact, supervise")

    def test_switch_must_be_boolean(self) -> None:
        self.assertBottleError(self.HEAD + "        entropy: high\n", line=6, key="egress.routes[0].dlp.entropy", contains="true or false")

    def test_server_fetch_values(self) -> None:
        self.assertIsNone(self.load_bottle("egress:\n  routes: [a.com]\n").routes[0].dlp.server_fetch)
        for value in ("block", "allow"):
            with self.subTest(value=value):
                dlp = self.load_bottle(self.HEAD + f"        server_fetch: {value}\n").routes[0].dlp
                self.assertEqual(dlp.server_fetch, value)
        dlp = self.load_bottle("egress:\n  routes:\n    - {host: api.openai.com, dlp: {server_fetch: allow}}\n").routes[0].dlp
        self.assertEqual(dlp.server_fetch, "allow")

    def test_bad_server_fetch(self) -> None:
        self.assertBottleError(self.HEAD + "        entropy: true\n        server_fetch: supervise\n", line=7,
                               key="egress.routes[0].dlp.server_fetch", contains=("block, allow", "'supervise'"))
        self.assertBottleError(self.HEAD + "        server_fetch: false\n", line=6, key="egress.routes[0].dlp.server_fetch",
                               contains="block, allow")
        self.assertBottleError(self.HEAD + "        server_fetch: [block]\n", line=6, key="egress.routes[0].dlp.server_fetch",
                               contains="expected a string")

    def test_unknown_dlp_key(self) -> None:
        self.assertBottleError(self.HEAD + "        pii: true\n", line=6, key="egress.routes[0].dlp.pii", contains="unknown key in route dlp")


class PassthroughTests(BottleKeyTestCase):
    def test_passthrough_route(self) -> None:
        route = self.load_bottle("egress:\n  routes:\n    - host: a.com\n      tls_passthrough: true\n").routes[0]
        self.assertTrue(route.tls_passthrough)

    def test_passthrough_must_be_boolean(self) -> None:
        self.assertBottleError(
            "egress:\n  routes:\n    - host: a.com\n      tls_passthrough: 1\n", line=5, key="egress.routes[0].tls_passthrough", contains="true or false"
        )

    def test_passthrough_refuses_auth(self) -> None:
        self.assertBottleError(
            "egress:\n  routes:\n    - host: a.com\n      auth: {scheme: bearer, token_ref: T}\n      tls_passthrough: true\n",
            line=6,
            key="egress.routes[0].tls_passthrough",
            contains="cannot have 'auth' or 'matches'",
        )

    def test_a_wildcard_route_refuses_auth(self) -> None:
        self.assertBottleError(
            "egress:\n  routes:\n    - host: '*.tenant-cloud.example'\n      auth: {scheme: bearer, token_ref: T}\n",
            line=5,
            key="egress.routes[0].auth",
            contains="'*.tenant-cloud.example' is a wildcard route: 'auth' would send the real token to every subdomain",
        )

    def test_passthrough_refuses_matches(self) -> None:
        self.assertBottleError(
            "egress:\n  routes:\n    - host: a.com\n      tls_passthrough: true\n      matches: [{paths: [/]}]\n",
            line=5,
            key="egress.routes[0].tls_passthrough",
            contains="cannot have",
        )


class GitGateTests(BottleKeyTestCase):
    def test_user(self) -> None:
        bottle = self.load_bottle("git-gate:\n  user:\n    name: Bot\n    email: bot@example.com\n")
        user = bottle.git_user
        self.assertEqual((user.name, user.email), ("Bot", "bot@example.com"))
        self.assertEqual(user.name_origin.line, 4)
        self.assertEqual(user.email_origin.line, 5)

    def test_user_name_as_written(self) -> None:
        user = self.load_bottle("git-gate:\n  user:\n    name: 1.10\n    email: 7@example.com\n").git_user
        self.assertEqual(user.name, "1.10")

    def test_typed_keys_keep_their_yaml_types(self) -> None:
        bottle = self.load_bottle(
            "supervise: off\negress:\n  log: 0x2\n  routes:\n    - host: a.com\n      ports: [8443]\n      tls_passthrough: yes\n"
        )
        self.assertFalse(bottle.supervise)
        self.assertEqual(bottle.egress_log, 2)
        self.assertEqual((bottle.routes[0].ports, bottle.routes[0].tls_passthrough), ((8443,), True))

    def test_user_name_only(self) -> None:
        user = self.load_bottle("git-gate:\n  user: {name: Bot}\n").git_user
        self.assertEqual(user.name, "Bot")
        self.assertIsNone(user.email)
        self.assertIsNone(user.email_origin)

    def test_bad_emails(self) -> None:
        for email in ("no-at-sign", "a b@example.com"):
            with self.subTest(email=email):
                self.assertBottleError(f'git-gate:\n  user:\n    email: "{email}"\n', line=4, key="git-gate.user.email", contains="email address")

    def test_empty_name(self) -> None:
        self.assertBottleError('git-gate:\n  user:\n    name: ""\n', line=4, key="git-gate.user.name", contains="non-empty")

    def test_unknown_user_key(self) -> None:
        self.assertBottleError("git-gate:\n  user:\n    login: bot\n", line=4, key="git-gate.user.login", contains="unknown key in git-gate.user")

    def test_unknown_git_gate_key(self) -> None:
        self.assertBottleError("git-gate:\n  remotes: {}\n", line=3, key="git-gate.remotes", contains="unknown key in git-gate")

    def test_git_gate_must_be_a_mapping(self) -> None:
        self.assertBottleError("git-gate: yes\n", line=2, key="git-gate", contains="expected a mapping")

    def test_repo_as_a_string(self) -> None:
        (repo,) = self.load_bottle("git-gate:\n  repos:\n    app: https://github.com/me/app.git\n").repos
        self.assertEqual((repo.name, repo.url, repo.auth_kind), ("app", "https://github.com/me/app.git", "none"))
        self.assertEqual(repo.origin.line, 4)

    def test_url_forms(self) -> None:
        ssh = '      ssh_key: ~/.ssh/deploy\n      known_hosts: "github.com ssh-ed25519 AAAA"\n'
        for url in ("https://github.com/me/app.git", "http://git.local/me/app", "ssh://git@github.com/me/app.git", "git@github.com:me/app.git"):
            with self.subTest(url=url):
                extra = "" if url.startswith("http") else ssh
                (repo,) = self.load_bottle(f"git-gate:\n  repos:\n    app:\n      url: {url}\n{extra}").repos
                self.assertEqual(repo.url, url)

    def test_an_ssh_repo_needs_a_key(self) -> None:
        # Without one the gate (no identity, unknown host keys refused) failed every fetch at launch.
        for url in ("git@github.com:me/app.git", "ssh://git@github.com/me/app.git"):
            with self.subTest(url=url):
                self.assertBottleError(f"git-gate:\n  repos:\n    app:\n      url: {url}\n", line=4,
                                       key="git-gate.repos.app", contains="needs 'ssh_key'")
        self.assertBottleError(
            'git-gate:\n  repos:\n    app:\n      url: https://github.com/me/app.git\n      known_hosts: "x ssh-ed25519 AAAA"\n',
            line=6, key="git-gate.repos.app.known_hosts", contains="does not use it")

    def test_bad_urls(self) -> None:
        for url in ("github.com/me/app", "file:///srv/app.git", "ftp://host/app", "https://github.com", "/srv/app.git"):
            with self.subTest(url=url):
                self.assertBottleError(f'git-gate:\n  repos:\n    app:\n      url: "{url}"\n', line=5, key="git-gate.repos.app.url", contains="git URL")

    def test_a_url_carrying_credentials_is_refused_and_never_echoed(self) -> None:
        secret = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
        for url, says in ((f"https://me:{secret}@github.com/me/app.git", "HTTPS URL may not carry"),
                          (f"https://{secret}@github.com/me/app.git", "HTTPS URL may not carry"),
                          (f"ssh://git:{secret}@github.com/me/app.git", "SSH URL may not carry a password")):
            with self.subTest(url=url[:12]):
                err = self.bottle_error(f'git-gate:\n  repos:\n    app:\n      url: "{url}"\n')
                self.assertManifestError(err, path=self.bpath, line=5, key="git-gate.repos.app.url", contains=says)
                self.assertNotIn(secret, str(err) + (err.hint or ""))
        # A user name alone is how SSH URLs are written.
        (repo,) = self.load_bottle('git-gate:\n  repos:\n    app:\n      url: ssh://git@github.com/me/app.git\n'
                                   '      ssh_key: ~/.ssh/deploy\n      known_hosts: "github.com ssh-ed25519 AAAA"\n').repos
        self.assertEqual(repo.url, "ssh://git@github.com/me/app.git")

    def test_ssh_repo_with_key(self) -> None:
        (repo,) = self.load_bottle(
            "git-gate:\n  repos:\n    app:\n      url: git@github.com:me/app.git\n      ssh_key: ~/.ssh/deploy\n"
            '      known_hosts: "github.com ssh-ed25519 AAAA"\n'
        ).repos
        self.assertEqual(repo.auth_kind, "ssh-key")
        self.assertEqual(repo.ssh_key, "~/.ssh/deploy")

    def test_ssh_key_needs_known_hosts(self) -> None:
        self.assertBottleError(
            "git-gate:\n  repos:\n    app:\n      url: git@github.com:me/app.git\n      ssh_key: ~/.ssh/deploy\n",
            line=4,
            key="git-gate.repos.app",
            contains="known_hosts",
        )

    def test_ssh_key_with_https_url(self) -> None:
        self.assertBottleError(
            "git-gate:\n  repos:\n    app:\n      url: https://github.com/me/app.git\n      ssh_key: ~/.ssh/k\n      known_hosts: x\n",
            line=6,
            key="git-gate.repos.app.ssh_key",
            contains="token_ref",
        )

    def test_https_repo_with_token(self) -> None:
        (repo,) = self.load_bottle(
            "git-gate:\n  repos:\n    app:\n      url: https://github.com/me/app.git\n      token_ref: GH_PUSH\n      username: x-access-token\n"
        ).repos
        self.assertEqual((repo.auth_kind, repo.token_ref, repo.username), ("https-token", "GH_PUSH", "x-access-token"))

    def test_token_ref_only_with_https(self) -> None:
        self.assertBottleError(
            "git-gate:\n  repos:\n    app:\n      url: git@github.com:me/app.git\n      token_ref: GH_PUSH\n",
            line=6,
            key="git-gate.repos.app.token_ref",
            contains="HTTPS",
        )

    def test_a_token_needs_an_https_url(self) -> None:
        # The gate sends the token as "Authorization: Basic ..." to the URL: over http:// in clear.
        err = self.bottle_error("git-gate:\n  repos:\n    app:\n      url: http://git.example/org/app.git\n"
                                "      token_ref: GIT_TOKEN\n")
        self.assertManifestError(err, path=self.bpath, line=6, key="git-gate.repos.app.token_ref",
                                 contains=("needs an https:// URL", "in clear"))
        # Without a token nothing secret goes upstream: a public http:// repo stays allowed.
        (repo,) = self.load_bottle("git-gate:\n  repos:\n    app: http://git.example/org/app.git\n").repos
        self.assertEqual(repo.auth_kind, "none")

    def test_an_upstream_host_follows_the_route_host_rule(self) -> None:
        ssh = '      ssh_key: ~/.ssh/deploy\n      known_hosts: "h ssh-ed25519 AAAA"\n'
        cases = {
            "http://127.0.0.1:9430/x.git": "loopback",
            "https://localhost/x.git": "sidecar's own loopback",
            "https://api.localhost/x.git": "sidecar's own loopback",
            "https://[::1]/x.git": "loopback",
            "http://169.254.169.254/latest.git": "link-local or cloud metadata",
            "https://100.100.100.200/x.git": "link-local or cloud metadata",
            "https://0x7f.1/x.git": "four decimal numbers",
            "https://git-gate.bottle.internal/x.git": "reserved",
            "https://*.example.com/x.git": "wildcard",
            "https://under_score.example.com/x.git": "not a valid host name",
            "git@127.0.0.1:x.git": "loopback",
            "git@LOCALHOST:x.git": "sidecar's own loopback",
            "ssh://git@169.254.169.254:22/x.git": "link-local or cloud metadata",
            "ssh://git@proxy.bottle.internal/x.git": "reserved",
        }
        for url, why in cases.items():
            with self.subTest(url=url):
                extra = "" if url.startswith("http") else ssh
                self.assertBottleError(f'git-gate:\n  repos:\n    app:\n      url: "{url}"\n{extra}', line=5,
                                       key="git-gate.repos.app.url", contains=("upstream host", why))
        for url in ("https://git.example.com:8443/a/b.git", "https://10.1.2.3/a.git", "https://[2001:db8::1]/a.git",
                    "ssh://git@github.com:2222/me/app.git", "git@GitHub.com:me/app.git"):
            with self.subTest(url=url):
                extra = "" if url.startswith("http") else ssh
                (repo,) = self.load_bottle(f'git-gate:\n  repos:\n    app:\n      url: "{url}"\n{extra}').repos
                self.assertEqual(repo.url, url)

    def test_a_username_follows_the_gates_rule(self) -> None:
        from bot_bottle.sidecar.git_gate.config import ConfigError, parse

        for username in ("a:b c", "a b", "user:pass", "tab\tname"):
            with self.subTest(username=username):
                err = self.bottle_error(
                    'git-gate:\n  repos:\n    app:\n      url: https://git.example/a.git\n      token_ref: T\n'
                    f'      username: "{username}"\n'
                )
                self.assertManifestError(err, path=self.bpath, line=7, key="git-gate.repos.app.username",
                                         contains="may not contain ':' or spaces")
                self.assertNotIn(username, str(err))
                # The gate refuses the same name at start.
                with self.assertRaises(ConfigError):
                    parse({"repos": [{"name": "app", "url": "https://git.example/a.git", "username": username}]})

    def test_repo_needs_url(self) -> None:
        self.assertBottleError("git-gate:\n  repos:\n    app:\n      token_ref: X\n", line=4, key="git-gate.repos.app", contains="needs 'url'")

    def test_unknown_repo_key(self) -> None:
        self.assertBottleError(
            "git-gate:\n  repos:\n    app:\n      url: https://h.com/a/b\n      branch: main\n", line=6, key="git-gate.repos.app.branch", contains="unknown key in a git-gate repo"
        )

    def test_bad_repo_name(self) -> None:
        self.assertBottleError('git-gate:\n  repos:\n    "my app": https://h.com/a/b\n', line=4, key="git-gate.repos.my app", contains="repo name")

    def test_repos_must_be_a_mapping(self) -> None:
        self.assertBottleError("git-gate:\n  repos:\n    - https://h.com/a/b\n", line=3, key="git-gate.repos", contains="mapping of repo names")


class SuperviseTests(BottleKeyTestCase):
    def test_default_is_on(self) -> None:
        self.assertTrue(self.load_bottle("env: {}\n").supervise)

    def test_off_and_on(self) -> None:
        bottle = self.load_bottle("supervise: false\n")
        self.assertFalse(bottle.supervise)
        self.assertEqual(bottle.supervise_origin.line, 2)
        self.assertTrue(self.load_bottle("supervise: true\n").supervise)

    def test_not_a_boolean(self) -> None:
        for value in ("1", '"true"', "always", "[true]"):
            with self.subTest(value=value):
                self.assertBottleError(f"env: {{}}\nsupervise: {value}\n", line=3, key="supervise", contains="true or false")


class ProviderTests(BottleKeyTestCase):
    def test_builtin_templates(self) -> None:
        for template in ("claude", "codex", "pi"):
            with self.subTest(template=template):
                bottle = self.load_bottle(f"agent_provider:\n  template: {template}\n")
                self.assertEqual(bottle.template, template)
                self.assertEqual(bottle.provider.template_origin.line, 3)

    def test_unknown_template(self) -> None:
        err = self.bottle_error("agent_provider:\n  template: gemini\n")
        self.assertManifestError(err, path=self.bpath, line=3, key="agent_provider.template", contains=("unknown template", "claude, codex, pi"))
        self.assertIn(str(self.mh.home_dir / "contrib" / "gemini"), str(err))

    def test_plugin_template_from_contrib_folder(self) -> None:
        # Loading the bottle loads the plugin it names (a broken one is the bottle's error).
        self.mh.raw(".bot-bottle/contrib/mine/provider.py",
                    "from bot_bottle.providers import ProviderInfo\n"
                    "PROVIDER = ProviderInfo('mine', 'mine', '', 'bearer', None, '')\n")
        self.assertEqual(self.load_bottle("agent_provider:\n  template: mine\n").template, "mine")

    def test_plugin_must_be_a_folder(self) -> None:
        self.mh.raw(".bot-bottle/contrib/mine", "not a folder")
        self.assertBottleError("agent_provider:\n  template: mine\n", line=3, key="agent_provider.template", contains="unknown template")

    def test_plugin_name_cannot_escape_contrib(self) -> None:
        (self.mh.home_dir / "elsewhere").mkdir(parents=True)
        self.assertBottleError('agent_provider:\n  template: "../elsewhere"\n', line=3, key="agent_provider.template", contains="unknown template")

    def test_dockerfile_relative_to_the_bottle_file(self) -> None:
        dockerfile = self.mh.raw(".bot-bottle/bottles/images/Dockerfile", "FROM scratch\n")
        bottle = self.load_bottle("agent_provider:\n  dockerfile: images/Dockerfile\n")
        self.assertEqual(bottle.provider.dockerfile, dockerfile)
        self.assertEqual(bottle.provider.dockerfile_origin.line, 3)

    def test_dockerfile_absolute(self) -> None:
        dockerfile = self.mh.raw("df/Dockerfile", "FROM scratch\n")
        bottle = self.load_bottle(f"agent_provider:\n  dockerfile: {dockerfile}\n")
        self.assertEqual(bottle.provider.dockerfile, dockerfile)

    def test_missing_dockerfile(self) -> None:
        err = self.bottle_error("agent_provider:\n  template: claude\n  dockerfile: nope/Dockerfile\n")
        self.assertManifestError(err, path=self.bpath, line=4, key="agent_provider.dockerfile", contains="no such file")
        self.assertIn(str(self.mh.bottles_dir / "nope" / "Dockerfile"), str(err))

    def test_auth_token(self) -> None:
        bottle = self.load_bottle("agent_provider:\n  auth_token: MY_CLAUDE_KEY\n")
        self.assertEqual(bottle.provider.auth_token, "MY_CLAUDE_KEY")
        self.assertEqual(bottle.provider.auth_token_origin.line, 3)
        self.assertEqual(bottle.template, "claude")

    def test_bad_auth_token_name(self) -> None:
        self.assertBottleError('agent_provider:\n  auth_token: "sk-ant-123"\n', line=3, key="agent_provider.auth_token", contains="not an environment variable name")

    def test_unknown_provider_key(self) -> None:
        self.assertBottleError("agent_provider:\n  image: x\n", line=3, key="agent_provider.image", contains="unknown key in agent_provider")

    def test_provider_must_be_a_mapping(self) -> None:
        self.assertBottleError("agent_provider: codex\n", line=2, key="agent_provider", contains="expected a mapping")


if __name__ == "__main__":
    unittest.main()
