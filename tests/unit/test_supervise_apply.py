"""Deciding and applying proposals: per kind, per backend, with audit rows for everything.

The sidecar is the real ctl on a spool in a temporary folder (``LocalSidecar``); a failing
sidecar is a link whose runner answers like a stopped container. Capability changes run on the
fake host of the backend parity tests, so each backend's real handler runs and every host
command either one would run is recorded.
"""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path
from typing import Any

import yaml

from bot_bottle.backend import registry, sidecar_config
from bot_bottle.manifest import Layout, load
from bot_bottle.sidecar.supervise.channel import Proposal, read_grants
from bot_bottle.state import Metadata, StateDir
from bot_bottle.supervise import apply, routes
from bot_bottle.supervise.apply import Context
from bot_bottle.supervise.link import RunResult, SidecarLink
from bot_bottle.supervise.proposals import InvalidDecision, InvalidTransition
from bot_bottle.supervise.store import StaleProposal, Store
from bot_bottle.supervise.sync import sync
from tests.fixtures import ManifestHome
from tests.unit.test_backend_parity import BACKENDS, Run
from tests.unit.test_supervise_link import LocalSidecar

BOTTLE = "abcdef12"
SHA_A = "a" * 40
SHA_B = "b" * 40
DEV_MANIFEST = """\
# the team's bottle
egress:
  log: 1
  routes:
    - host: api.github.com   # the API only
      ports: [443]
    - example.com
supervise: true
"""


class Base(unittest.TestCase):
    def setUp(self) -> None:
        self.mh = ManifestHome.for_test(self)
        self.layout: Layout = self.mh.layout
        self.manifest = self.mh.bottle("dev", DEV_MANIFEST)
        self.mh.agent("coder", {"bottle": "dev"})
        state = StateDir(self.layout.state_dir, BOTTLE)
        state.create()
        state.write(Metadata(id=BOTTLE, agent="coder", bottle="dev", backend="docker", image="agent:1"))
        self.state = state
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.side = LocalSidecar(Path(tmp.name) / "sidecar")
        self.store = Store(Path(tmp.name) / "supervise.db")
        self.addCleanup(self.store.close)
        self.ctx = Context(layout=self.layout, link_for=self.side.link, clock=lambda: 1234.5)

    def propose(self, kind: str, payload: dict[str, Any], pid: str | None = None) -> str:
        proposal = Proposal(id=pid or f"{kind}-1", kind=kind, justification="the agent says why",
                            payload=payload, timeout_s=600, created_at=1000.0)
        self.side.spool.submit(proposal)
        sync(self.store, bottles=[self._bottle()], link_for=self.side.link)
        return proposal.id

    def _bottle(self) -> Any:
        from bot_bottle.supervise.sync import BottleInfo

        return BottleInfo(BOTTLE, "coder", None, None, "docker", "2026-11-22T05:00:00+00:00")

    def decision(self, pid: str) -> Any:
        return self.side.spool.decision_for(pid)

    def actions(self, pid: str) -> list[tuple[str, str]]:
        key = self.store.find(pid).key
        return [(a.action, a.outcome) for a in self.store.audit_rows(proposal_key=key)]


class Egress(Base):
    def test_approve_grants_the_route_keeps_it_for_resume_and_leaves_the_manifest(self) -> None:
        pid = self.propose("egress", {"host": "docs.example", "methods": ["get"], "paths": ["/v2/"]})
        before_manifest = self.manifest.read_text()
        row = apply.decide(self.store, pid, "approved", reason="fine", operator="ann", context=self.ctx)
        self.assertEqual((row.status, row.verdict, row.operator, row.error), ("applied", "approved", "ann", None))
        route = {"host": "docs.example", "ports": [80, 443], "matches": [{"paths": ["/v2/"], "methods": ["GET"]}]}
        self.assertEqual(read_grants(self.side.spool.root)["routes"], [route], "the proxy's grants")
        self.assertEqual(routes.read_approved(self.state.path), [route], "kept for resume")
        resumed = sidecar_config.with_approved_routes({"version": 2, "routes": []},
                                                      sidecar_config.read_approved_routes(self.state.path))
        self.assertEqual([r["host"] for r in resumed["routes"]], ["docs.example"], "the launcher merges it on resume")
        d = self.decision(pid)
        self.assertEqual((d.verdict, d.operator, d.reason), ("approved", "ann", "fine"))
        self.assertEqual(self.manifest.read_text(), before_manifest, "the manifest is not touched unless asked")
        self.assertEqual(self.actions(pid), [("approved", "ok"), ("apply", "ok")])
        apply_row = self.store.audit_rows(proposal_key=row.key)[-1]
        self.assertEqual(apply_row.before, {"approved_routes": []})
        self.assertEqual(apply_row.after["approved_routes"], [route])
        self.assertEqual(apply_row.after["grant"], {"kind": "route", "route": route})

    def test_modify_grants_the_changed_route_and_tells_the_agent_the_change(self) -> None:
        pid = self.propose("egress", {"host": "*.docs.example"})
        row = apply.decide(self.store, pid, "modified", change={"host": "api.docs.example", "ports": [443]},
                           operator="ann", context=self.ctx)
        self.assertEqual(row.status, "applied")
        self.assertEqual(read_grants(self.side.spool.root)["routes"], [{"host": "api.docs.example", "ports": [443]}])
        d = self.decision(pid)
        self.assertEqual((d.verdict, d.change["host"]), ("modified", "api.docs.example"))

    def test_save_to_manifest_appends_the_route_and_keeps_every_other_line(self) -> None:
        pid = self.propose("egress", {"host": "docs.example", "ports": [443]})
        before = self.manifest.read_text()
        row = apply.decide(self.store, pid, "approved", operator="ann", save_to_manifest=True, context=self.ctx)
        self.assertEqual((row.status, row.error), ("applied", None))
        after = self.manifest.read_text()
        for line in before.splitlines():
            self.assertIn(line, after.splitlines(), "every line of the manifest is kept")
        self.assertIn("- {host: docs.example, ports: [443]}", after)
        hosts = [r.host for r in load("coder", self.layout).bottle.routes]
        self.assertEqual(hosts, ["api.github.com", "example.com", "docs.example"])
        self.assertEqual(self.actions(pid)[-1], ("apply", "ok"))
        self.assertIn("docs.example", self.store.audit_rows(proposal_key=row.key)[-1].after["manifest"]["added"])

    def test_a_manifest_that_cannot_be_saved_leaves_the_grant_and_records_why(self) -> None:
        self.manifest.write_text("---\negress: {routes: [example.com]}\n---\n")
        pid = self.propose("egress", {"host": "docs.example"})
        row = apply.decide(self.store, pid, "approved", operator="ann", save_to_manifest=True, context=self.ctx)
        self.assertEqual(row.status, "applied", "the route works in the running bottle")
        self.assertIn("inline", row.error or "")
        self.assertEqual(self.manifest.read_text(), "---\negress: {routes: [example.com]}\n---\n")
        self.assertIn(("save-to-manifest", "failed"), self.actions(pid))

    def test_reject_changes_nothing_but_the_decision(self) -> None:
        pid = self.propose("egress", {"host": "evil.example"})
        row = apply.decide(self.store, pid, "rejected", reason="not for this task", operator="ann", context=self.ctx)
        self.assertEqual((row.status, row.reason), ("rejected", "not for this task"))
        self.assertEqual(read_grants(self.side.spool.root), {"routes": [], "pushes": [], "token_uses": []})
        self.assertEqual(routes.read_approved(self.state.path), [])
        d = self.decision(pid)
        self.assertEqual((d.verdict, d.reason), ("rejected", "not for this task"))
        self.assertEqual(self.actions(pid), [("rejected", "ok")])

    def test_an_invalid_verdict_is_refused_and_audited_and_changes_nothing(self) -> None:
        pid = self.propose("egress", {"host": "evil.example"})
        with self.assertRaises(InvalidDecision):
            apply.decide(self.store, pid, "rejected", reason="", operator="ann", context=self.ctx)
        with self.assertRaises(InvalidDecision):
            apply.decide(self.store, pid, "modified", change={"host": "a.example", "paths": ["x"]},
                         operator="ann", context=self.ctx)
        self.assertEqual(self.store.find(pid).status, "pending")
        self.assertIsNone(self.decision(pid))
        self.assertEqual(self.actions(pid), [("rejected", "refused"), ("modified", "refused")])

    def test_a_decided_proposal_cannot_be_decided_again(self) -> None:
        pid = self.propose("egress", {"host": "docs.example"})
        apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        with self.assertRaises(InvalidTransition):
            apply.decide(self.store, pid, "rejected", reason="changed my mind", operator="bob", context=self.ctx)
        self.assertEqual(self.decision(pid).verdict, "approved")

    def test_a_stale_read_loses_to_the_first_decider(self) -> None:
        pid = self.propose("egress", {"host": "docs.example"})
        stale = self.store.find(pid)
        apply.decide(self.store, pid, "rejected", reason="no", operator="ann", context=self.ctx)
        # A console that read the row before ann decided still holds "pending".
        original = self.store.find
        self.store.find = lambda *a, **k: stale  # type: ignore[method-assign]
        self.addCleanup(setattr, self.store, "find", original)
        self.store.get = lambda key: stale  # type: ignore[method-assign]
        with self.assertRaises(StaleProposal):
            apply.decide(self.store, pid, "approved", operator="bob", context=self.ctx)
        del self.store.get
        self.assertEqual(self.store.get(stale.key).status, "rejected")

    def test_a_sidecar_that_does_not_take_the_grant_fails_the_proposal_and_keeps_nothing(self) -> None:
        pid = self.propose("egress", {"host": "docs.example"})
        self.side.up = False
        row = apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "failed")
        self.assertIn("did not take the grant", row.error or "")
        self.assertEqual(routes.read_approved(self.state.path), [], "no route kept when none was granted")
        self.assertIn(("deliver", "failed"), self.actions(pid))
        self.assertEqual(self.actions(pid)[:2], [("approved", "ok"), ("deliver", "failed")])
        self.assertIn(("apply", "failed"), self.actions(pid))

    def test_a_rejection_the_sidecar_cannot_take_is_recorded(self) -> None:
        pid = self.propose("egress", {"host": "docs.example"})
        self.side.up = False
        row = apply.decide(self.store, pid, "rejected", reason="no", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "rejected")
        self.assertIn("not delivered", row.error or "")
        self.assertEqual(self.actions(pid), [("rejected", "ok"), ("deliver", "failed")])


class OtherKinds(Base):
    def test_push_exception_grants_that_exact_push_once(self) -> None:
        pid = self.propose("push-exception", {"repo": "app", "ref": "refs/heads/fix", "old": SHA_A, "new": SHA_B,
                                              "finding": "gf-0123456789ab", "detectors": ["aws-access-key-id"],
                                              "places": ["commit 0123: file a line 1: detector aws-access-key-id"]})
        row = apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "applied")
        self.assertEqual(read_grants(self.side.spool.root)["pushes"],
                         [{"repo": "app", "ref": "refs/heads/fix", "old": SHA_A, "new": SHA_B,
                           "finding": "gf-0123456789ab", "used": False}])
        self.assertIn("once", self.decision(pid).reason)

    def test_token_use_grants_the_route_and_detectors(self) -> None:
        pid = self.propose("token-use", {"hold_id": "h1", "method": "POST", "host": "api.example", "path": "/v1",
                                         "route": "api.example", "detectors": ["aws-access-key"]})
        row = apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "applied")
        self.assertEqual(read_grants(self.side.spool.root)["token_uses"],
                         [{"route": "api.example", "detectors": ["aws-access-key"]}])

    def test_a_failure_to_apply_tells_the_agent_why_but_not_the_hosts_paths(self) -> None:
        from unittest import mock

        home = str(Path.home())
        where = f"{home}/.bot-bottle/state/{BOTTLE}/meta.json"
        failing = mock.Mock(side_effect=apply.ApplyFailed(f"cannot read {where}: permission denied"))
        with mock.patch.object(registry, "for_state", failing):
            pid = self.propose("capability", {"packages": ["ripgrep"]})
            row = apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "failed")
        self.assertIn(where, row.error or "", "the operator's console keeps the full text")
        reason = self.decision(pid).reason
        self.assertIn("could not be applied", reason)
        self.assertIn("permission denied", reason, "the agent still learns why")
        self.assertNotIn(home, reason)
        self.assertNotIn(".bot-bottle", reason)
        self.assertNotIn(str(self.layout.state_dir), reason)

    def test_for_agent_hides_paths_but_keeps_urls_and_words(self) -> None:
        self.assertEqual(apply.for_agent("no state folder (/srv/x/state/ab); see http://deb.example/pool, apt/dpkg"),
                         "no state folder (<host path>); see http://deb.example/pool, apt/dpkg")
        self.assertEqual(apply.for_agent("denied: '/tmp/a b/c' here"), "denied: <host path> here")
        self.assertEqual(len(apply.for_agent("x" * 2000)), apply.AGENT_REASON_MAX)

    def test_capability_with_dockerfile_lines_fails_clearly_and_tells_the_agent(self) -> None:
        pid = self.propose("capability", {"packages": [], "dockerfile": "RUN curl x | sh"})
        row = apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "failed")
        self.assertIn("Dockerfile lines", row.error or "")
        d = self.decision(pid)
        self.assertEqual(d.verdict, "rejected")
        self.assertIn("could not be applied", d.reason)

    def test_an_unexpected_error_while_applying_ends_in_failed_not_stuck(self) -> None:
        pid = self.propose("egress", {"host": "docs.example"})
        (self.state.path / "approved_routes.json").write_text("{not json")
        row = apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "applied", "the grant works in the running bottle")
        self.assertIn("approved_routes.json", row.error or "")
        self.assertIn(("keep-for-resume", "failed"), self.actions(pid))

        original = apply._APPLY["push-exception"]
        apply._APPLY["push-exception"] = lambda *a: {}["boom"]  # a bug in a handler
        self.addCleanup(apply._APPLY.__setitem__, "push-exception", original)
        pid = self.propose("push-exception", {"repo": "app", "ref": "refs/heads/x", "old": SHA_A, "new": SHA_B,
                                              "finding": "gf-0123456789ab"}, pid="push-1")
        row = apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "failed")
        self.assertIn("internal error: KeyError", row.error or "")
        self.assertEqual(self.decision(pid).verdict, "rejected", "the waiting agent is not left hanging")

    def test_a_failed_link_does_not_stop_a_rejection_of_another_bottle(self) -> None:
        broken = SidecarLink("bbbbbb22", runner=lambda argv, stdin: RunResult(1, "", "no such container"))
        ctx = Context(layout=self.layout, link_for=lambda bid: broken if bid == "bbbbbb22" else self.side.link(bid))
        self.store.add_proposal("bbbbbb22", {"id": "egress-x", "kind": "egress", "payload": {"host": "x.example"}})
        row = apply.decide(self.store, "egress-x", "rejected", reason="no", operator="ann", context=ctx)
        self.assertEqual(row.status, "rejected")
        pid = self.propose("egress", {"host": "docs.example"})
        self.assertEqual(apply.decide(self.store, pid, "approved", operator="ann", context=ctx).status, "applied")


class DecisionThatDidNotStand(Base):
    """A decision the sidecar cannot take (the agent's wait ended first) changes nothing more."""

    def fake_backend(self, calls: list[str], *, during_build: Any = None) -> Any:
        class Fake:
            name = "docker"
            supports_capability_change = True

            def commit(self, *a: Any, **k: Any) -> str:
                calls.append("commit")
                return "snap:0"

            def apply_capability_change(self, change: Any, **k: Any) -> str:
                calls.append("build")
                if during_build:
                    during_build()
                return "snap:1"

            def owner_running(self, *a: Any, **k: Any) -> bool:
                return True

            def request_restart(self, *a: Any, **k: Any) -> None:
                calls.append("restart")

        return Fake()

    def decide_capability(self, calls: list[str], *, during_build: Any = None) -> Any:
        from unittest import mock

        with mock.patch.object(registry, "for_state", lambda state: self.fake_backend(calls, during_build=during_build)):
            return apply.decide(self.store, "capability-1", "approved", operator="ann", context=self.ctx)

    def test_a_capability_whose_wait_already_ended_builds_and_restarts_nothing(self) -> None:
        pid = self.propose("capability", {"packages": ["ripgrep"]})
        self.side.spool.expire(pid, "the agent's wait ended")  # the store lags by one sync
        calls: list[str] = []
        row = self.decide_capability(calls)
        self.assertEqual(calls, [], "no commit, no build, no restart")
        self.assertEqual(row.status, "failed")
        self.assertIn("wait for it had already ended", row.error or "")
        self.assertEqual(self.decision(pid).verdict, "expired", "the sidecar's decision stands")

    def test_a_capability_whose_wait_ends_during_the_build_is_applied_late_without_a_restart(self) -> None:
        # The image the operator approved is built and resume starts from it: the proposal says
        # so (applied, the agent not told), never "failed, nothing granted" beside a changed bottle.
        pid = self.propose("capability", {"packages": ["ripgrep"]})
        calls: list[str] = []
        row = self.decide_capability(calls, during_build=lambda: self.side.spool.expire(pid, "the agent's wait ended"))
        self.assertEqual(calls, ["commit", "build"], "built, but never restarted")
        self.assertEqual(row.status, "applied")
        self.assertIn("the agent was told its request expired", row.error or "")
        self.assertIn("snap:1", row.error or "", "what was built is said")
        self.assertNotIn("nothing was granted", row.error or "")
        self.assertEqual(self.actions(pid), [("approved", "ok"), ("deliver", "failed"), ("apply", "ok")])
        audit = self.store.audit_rows(proposal_key=row.key)[-1]
        self.assertEqual((audit.after["snapshot"], audit.after["agent_told"]), ("snap:1", False))
        self.assertNotIn("restart", audit.after)
        self.assertEqual(self.decision(pid).verdict, "expired", "the sidecar's decision stands")

    def test_an_egress_approval_whose_wait_ended_keeps_no_route(self) -> None:
        pid = self.propose("egress", {"host": "docs.example"})
        self.side.spool.expire(pid, "the agent's wait ended")
        row = apply.decide(self.store, pid, "approved", operator="ann", context=self.ctx)
        self.assertEqual(row.status, "failed")
        self.assertIn("did not stand", row.error or "")
        self.assertEqual(routes.read_approved(self.state.path), [])
        self.assertEqual(read_grants(self.side.spool.root)["routes"], [])


class CapabilityDispatch(unittest.TestCase):
    """A Docker bottle and a smolmachines bottle each reach their own backend's handler; a VM
    bottle's change ends in a clean "not supported" having run nothing (CONTRACTS.md parity)."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def test_each_backend_handles_its_own_bottle(self) -> None:
        for backend in BACKENDS:
            with self.subTest(backend=backend):
                run = Run(self, backend, self.tmp / backend / "state")
                side = LocalSidecar(self.tmp / backend / "sidecar")
                store = Store(self.tmp / backend / "supervise.db")
                self.addCleanup(store.close)
                with run.host():
                    run.launch()
                    launcher = run.launcher
                    assert launcher is not None
                    launcher.preserve_reason = "running"
                    launcher.teardown()
                    bottle_id = launcher.state.id
                    side.spool.submit(Proposal(id="capability-1", kind="capability", justification="search code",
                                               payload={"packages": ["ripgrep"]}, timeout_s=600))
                    store.add_proposal(bottle_id, side.spool.get("capability-1").to_dict())
                    ctx = Context(layout=Layout(home=self.tmp, cwd=self.tmp), link_for=side.link,
                                  state_dir=run.state_root)
                    before = launcher.state.read()
                    run.fake.calls.clear()
                    row = apply.decide(store, "capability-1", "approved", operator="ann", context=ctx)
                    owner = registry.for_state(launcher.state)
                    self.assertEqual(owner.name, backend, f"[{backend}] backend from the bottle's metadata")
                    if backend == "docker":
                        self.assertEqual(row.status, "applied", f"[docker] applied: {row.error}")
                        verbs = [c[0] for c in run.fake.docker_calls()]
                        steps = [v for v in verbs if v in ("commit", "build", "stop")]
                        self.assertEqual(steps, ["commit", "build", "build", "stop"],
                                         "[docker] the running work is committed, built on (packages fetched, "
                                         "then installed), then the owner restarts it")
                        self.assertLess(verbs.index("inspect"), verbs.index("commit"),
                                        "[docker] its size and launch env read first (the env blanked in the snapshot)")
                        installs = [c.input for c in run.fake.calls if c.input and "dpkg-query" in c.input]
                        self.assertIn("dpkg-query -W ripgrep", installs[-1], "[docker] the package is installed")
                        self.assertEqual(launcher.state.read().snapshot, f"bot-bottle/snapshot:{bottle_id}",
                                         "[docker] the next resume starts from it")
                        self.assertEqual(side.spool.decision_for("capability-1").verdict, "approved")
                        self.assertIn("resume", side.spool.decision_for("capability-1").reason)
                    else:
                        self.assertEqual(row.status, "failed", "[smolmachines] not applied")
                        self.assertIn("not supported on smolmachines", row.error or "", "[smolmachines] clean error")
                        self.assertEqual(run.fake.docker_calls(), [], "[smolmachines] no Docker call for a VM bottle")
                        self.assertEqual(run.fake.smolvm_calls(), [], "[smolmachines] nothing run at all")
                        self.assertEqual(launcher.state.read(), before, "[smolmachines] state unchanged")
                        d = side.spool.decision_for("capability-1")
                        self.assertEqual(d.verdict, "rejected", "[smolmachines] the agent hears it was not granted")
                        self.assertIn("not supported on smolmachines", d.reason)
                    audit = store.audit_rows(proposal_key=row.key)
                    self.assertEqual([(a.action, a.outcome) for a in audit],
                                     [("approved", "ok"), ("apply", "ok" if backend == "docker" else "failed")],
                                     f"[{backend}] audited")


class ManifestText(unittest.TestCase):
    path = Path("dev.md")
    route = {"host": "docs.example", "ports": [443]}

    def routes_of(self, text: str) -> list[Any]:
        return yaml.safe_load(text.split("---\n")[1])["egress"]["routes"]

    def test_appended_after_the_last_route_with_comments_kept(self) -> None:
        text = "---\negress:\n  routes:\n    - host: a.example  # mine\n      ports: [443]\n    # note\n  log: 2\n---\nbody\n"
        out = routes.append_route_text(text, self.route, path=self.path, note="ok")
        self.assertIn("    - host: a.example  # mine\n      ports: [443]\n    - {host: docs.example, ports: [443]}  # ok\n", out)
        self.assertTrue(out.endswith("---\nbody\n"))
        self.assertEqual(self.routes_of(out)[-1], self.route)
        self.assertEqual(yaml.safe_load(out.split("---\n")[1])["egress"]["log"], 2)

    def test_items_at_the_same_indent_as_the_key(self) -> None:
        text = "---\negress:\n  routes:\n  - a.example\n  log: 1\n---\n"
        out = routes.append_route_text(text, self.route, path=self.path)
        self.assertEqual(self.routes_of(out), ["a.example", self.route])

    def test_no_egress_or_no_routes_or_empty_routes(self) -> None:
        for text in ("---\nsupervise: true\n---\n", "---\negress:\n  log: 1\n---\n", "---\negress:\n  routes: []\n---\n"):
            with self.subTest(text=text):
                out = routes.append_route_text(text, self.route, path=self.path)
                self.assertEqual(self.routes_of(out), [self.route])

    def test_inline_egress_is_refused_with_the_line_to_add(self) -> None:
        with self.assertRaises(routes.ManifestEditError) as ctx:
            routes.append_route_text("---\negress: {routes: []}\n---\n", self.route, path=self.path)
        self.assertIn("{host: docs.example, ports: [443]}", ctx.exception.hint or "")


if __name__ == "__main__":
    unittest.main()
