"""The mitmproxy adapter: facts from flows, 403s on denial, one JSON line per decision.

Runs where mitmproxy is importable (the sidecar image, or a developer venv); skips elsewhere.
The import-boundary test runs everywhere.
"""

from __future__ import annotations

import ast
import io
import json
import sys
import tempfile
import unittest
from contextlib import redirect_stdout
from pathlib import Path

SIDECAR = Path(__file__).resolve().parents[2] / "bot_bottle" / "sidecar"

try:
    from mitmproxy.test import taddons, tflow, tutils

    from bot_bottle.sidecar.egress import addon as addon_mod
except ImportError:  # pragma: no cover - depends on the environment
    addon_mod = None


class ImportBoundaryTest(unittest.TestCase):
    """The sidecar image ships bot_bottle/sidecar alone: nothing else of the package may be imported."""

    def test_sidecar_imports_only_stdlib_mitmproxy_and_itself(self) -> None:
        allowed_roots = set(sys.stdlib_module_names) | {"mitmproxy", "__future__"}
        for path in SIDECAR.rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    with self.subTest(file=path.name, module=name):
                        ok = name.split(".")[0] in allowed_roots or name.startswith("bot_bottle.sidecar")
                        self.assertTrue(ok, f"{path} imports {name}")

    def test_only_the_addon_imports_mitmproxy(self) -> None:
        for path in SIDECAR.rglob("*.py"):
            if path.name == "addon.py":
                continue
            self.assertNotIn("import mitmproxy", path.read_text(), path)
            self.assertNotIn("from mitmproxy", path.read_text(), path)


@unittest.skipIf(addon_mod is None, "mitmproxy is not installed here (it is in the sidecar image)")
class AddonTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.policy = self.dir / "policy.json"
        self.write_policy({"version": 1, "log": 2, "routes": [{"host": "allowed.example", "ports": [80, 443]}]})

    def write_policy(self, doc: dict) -> None:
        self.policy.write_text(json.dumps(doc))

    def run_hook(self, hook: str, flow, **options):
        addon = addon_mod.EgressAddon()
        out = io.StringIO()
        with taddons.context(addon) as tctx, redirect_stdout(out):
            tctx.configure(addon, bottle_policy=str(self.policy), bottle_log_dir=str(self.dir / "log"), **options)
            getattr(addon, hook)(flow)
            addon.done()
        lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
        return flow, lines

    def request_flow(self, host: str, port: int = 80, path: str = "/", headers: dict | None = None):
        flow = tflow.tflow()
        flow.request = tutils.treq(host=host, port=port, path=path.encode(), scheme=b"http")
        flow.request.headers.clear()
        for k, v in (headers or {"Host": host}).items():
            flow.request.headers[k] = v
        return flow

    def connect_flow(self, host: str, port: int = 443):
        flow = tflow.tflow()
        flow.request = tutils.treq(method=b"CONNECT", host=host, port=port, path=b"", scheme=b"", authority=f"{host}:{port}".encode())
        return flow

    def test_allowed_request_passes_untouched_and_is_logged(self) -> None:
        flow, lines = self.run_hook("requestheaders", self.request_flow("allowed.example"))
        self.assertIsNone(flow.response)
        self.assertEqual(lines[0]["decision"], "allow")
        self.assertEqual(lines[0]["host"], "allowed.example")
        self.assertEqual(flow.metadata["bottle_verdict"].rule, "route")

    def test_denied_request_gets_403_naming_host_and_rule(self) -> None:
        flow, lines = self.run_hook("requestheaders", self.request_flow("evil.example"))
        self.assertEqual(flow.response.status_code, 403)
        body = flow.response.get_text()
        self.assertIn("evil.example", body)
        self.assertIn("default-deny", body)
        self.assertEqual(flow.response.headers["X-Bot-Bottle-Rule"], "default-deny")
        self.assertEqual(lines[0]["decision"], "deny")
        self.assertEqual(lines[0]["rule"], "default-deny")

    def test_connect_denied_and_port_checked(self) -> None:
        flow, _ = self.run_hook("http_connect", self.connect_flow("evil.example"))
        self.assertEqual(flow.response.status_code, 403)
        flow, lines = self.run_hook("http_connect", self.connect_flow("allowed.example", 8443))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "port")
        self.assertTrue(lines[0]["connect"])
        flow, _ = self.run_hook("http_connect", self.connect_flow("allowed.example", 443))
        self.assertIsNone(flow.response)

    def test_spoofed_host_header_refused(self) -> None:
        flow, lines = self.run_hook(
            "requestheaders", self.request_flow("allowed.example", headers={"Host": "evil.example"})
        )
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "host-header-mismatch")

    def test_log_line_has_no_header_values_or_query(self) -> None:
        flow = self.request_flow("evil.example", path="/p?token=supersecret",
                                 headers={"Host": "evil.example", "Authorization": "Bearer supersecret"})
        _, lines = self.run_hook("requestheaders", flow)
        text = json.dumps(lines)
        self.assertNotIn("supersecret", text)
        self.assertEqual(lines[0]["path"], "/p")
        file_lines = (self.dir / "log" / addon_mod.LOG_FILE_NAME).read_text().splitlines()
        self.assertEqual(json.loads(file_lines[-1])["host"], "evil.example")

    def test_log_levels(self) -> None:
        for level, allow_lines, deny_lines in ((0, 0, 0), (1, 0, 1), (2, 1, 1)):
            with self.subTest(level=level):
                self.write_policy({"log": level, "routes": [{"host": "allowed.example"}]})
                _, allowed = self.run_hook("requestheaders", self.request_flow("allowed.example"))
                _, denied = self.run_hook("requestheaders", self.request_flow("evil.example"))
                self.assertEqual((len(allowed), len(denied)), (allow_lines, deny_lines))

    def test_stdout_can_be_switched_off(self) -> None:
        _, lines = self.run_hook("requestheaders", self.request_flow("evil.example"), bottle_log_stdout=False)
        self.assertEqual(lines, [])

    def test_broken_policy_stops_the_proxy(self) -> None:
        from mitmproxy import exceptions

        self.policy.write_text('{"routes": [{"hots": "x"}]}')
        addon = addon_mod.EgressAddon()
        with taddons.context(addon) as tctx:
            with self.assertRaisesRegex(exceptions.OptionsError, "unknown key 'hots'"):
                tctx.configure(addon, bottle_policy=str(self.policy))

    def test_crash_in_decide_denies(self) -> None:
        from unittest import mock

        with mock.patch.object(addon_mod, "decide", side_effect=RuntimeError("boom")):
            flow, lines = self.run_hook("requestheaders", self.request_flow("allowed.example"))
        self.assertEqual(flow.response.status_code, 403)
        self.assertEqual(lines[0]["rule"], "internal-error")

    def test_no_policy_option_denies_everything(self) -> None:
        addon = addon_mod.EgressAddon()
        flow = self.request_flow("allowed.example")
        with taddons.context(addon), redirect_stdout(io.StringIO()):
            addon.requestheaders(flow)
        self.assertEqual(flow.response.status_code, 403)


if __name__ == "__main__":
    unittest.main()
