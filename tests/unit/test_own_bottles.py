"""Commands act only on this home's bottles: ``commit``, ``stop``, ``cleanup`` and ``list`` on an
engine shared with other homes and other PID namespaces. Docker is faked throughout: a real
engine call fails the test (other people's bottles may run on the real one)."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle import proc
from bot_bottle.backend.docker import cleanup as docker_cleanup
from bot_bottle.backend.docker.engine import DockerResult
from bot_bottle.backend.docker.names import LABEL_BOTTLE, LABEL_ID, LABEL_OWNER, LABEL_ROLE
from bot_bottle.backend.docker.running import RunningBottle
from bot_bottle.errors import BotBottleError
from bot_bottle.state import Metadata, StateDir
from tests.fixtures import ManifestTestCase

OWN, FOREIGN, UNSEEN, DEAD, OLD, SAVED = "aaaaaaaa", "dc1c8a27", "eeeeeeee", "bbbbbbbb", "cccccccc", "ffffffff"


def _parts() -> tuple[str, str, str, str]:
    """This process's identity as (pid, start, pid namespace, host)."""
    pid, rest = proc.identity().split(":", 1)
    start, namespace, host = rest.split("-", 2)
    return pid, start, namespace, host


def other_namespace() -> str:
    """The identity of a live process of another PID namespace (whose pid happens to be ours)."""
    pid, start, namespace, host = _parts()
    return f"{pid}:{start}-{int(namespace) + 1}-{host}"


def other_host() -> str:
    pid, start, namespace, _ = _parts()
    return f"{pid}:{start}-{namespace}-elsewhere.example"


def dead() -> str:
    """The identity of a process of this namespace that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ident = proc.identity(child.pid)
    child.wait()
    return ident


def dead_old_format() -> str:
    """A label written before identities named their namespace (``PID:START``), owner gone."""
    return dead().split("-", 1)[0]


def _no_engine(args: Any, **_kw: Any) -> DockerResult:
    raise AssertionError(f"a real docker call: {args}")


class FakeEngine:
    """Bottles' containers, networks, volumes and snapshots, answered like the engine would;
    anything but listing and inspecting fails the test (nothing is ever removed)."""

    def __init__(self) -> None:
        self.objects: dict[str, list[dict]] = {"container": [], "network": [], "volume": [], "image": []}

    def add(self, kind: str, name: str, labels: dict[str, str]) -> None:
        """One object as ``inspect`` shows it (containers and images keep labels in Config)."""
        obj: dict[str, Any] = {"Id": f"id-{name}", "Name": name, "Labels": labels}
        if kind == "container":
            obj.update(Name=f"/{name}", Config={"Labels": labels})
        elif kind == "image":
            obj.update(RepoTags=[name], Config={"Labels": labels})
        self.objects[kind].append(obj)

    def bottle(self, bottle_id: str, owner: str, state_folder: Path | None = None) -> None:
        labels = {LABEL_ID: bottle_id, LABEL_BOTTLE: "dev", LABEL_OWNER: owner,
                  **({"bot-bottle.state": str(state_folder)} if state_folder else {})}
        for role in ("agent", "sidecar"):
            self.add("container", f"bot-bottle-{bottle_id}-{role}", labels)
        self.add("network", f"bot-bottle-{bottle_id}-net", labels)
        self.add("volume", f"bot-bottle-{bottle_id}-sock", labels)

    def helper(self, helper_id: str, owner: str) -> None:
        """A demo's stand-in host: labelled like a bottle's objects but of no bottle."""
        labels = {LABEL_ID: helper_id, LABEL_OWNER: owner, LABEL_ROLE: "demo"}
        self.add("container", f"api-{helper_id}", labels)
        self.add("network", f"bot-bottle-{helper_id}-internet", labels)

    def snapshot(self, bottle_id: str, state_folder: Path | None) -> None:
        labels = {LABEL_ID: bottle_id, **({"bot-bottle.state": str(state_folder)} if state_folder else {})}
        self.add("image", f"bot-bottle/snapshot:{bottle_id}", labels)

    @staticmethod
    def _ref(kind: str, obj: dict) -> str:
        return str(obj["Name"] if kind == "volume" else obj["Id"])

    def run(self, args: list[str], **_kw: Any) -> DockerResult:
        listing = {"ps": "container", "network ls": "network", "volume ls": "volume", "images": "image"}
        inspect = {"inspect": "container", "network inspect": "network", "volume inspect": "volume",
                   "image inspect": "image"}
        for words, table in ((2, listing), (1, listing), (2, inspect), (1, inspect)):
            kind = table.get(" ".join(args[:words]))
            if kind is None:
                continue
            objects = self.objects[kind]
            if table is listing:
                return DockerResult(0, "\n".join(self._ref(kind, o) for o in objects), "")
            wanted = set(args[words:])
            return DockerResult(0, json.dumps([o for o in objects if self._ref(kind, o) in wanted]), "")
        raise AssertionError(f"unexpected docker call {args}")


def _state(root: Path, bottle_id: str, owner: str | None, *, preserved: bool = False) -> StateDir:
    sdir = StateDir(root, bottle_id)
    sdir.create()
    sdir.write(Metadata(id=bottle_id, agent="coder", bottle="dev", backend="docker", owner=owner))
    if preserved:
        sdir.preserve("the agent exited with status 1")
    return sdir


class OwnerIdentityTest(unittest.TestCase):
    def test_an_identity_names_its_pid_namespace_and_host(self) -> None:
        ident = proc.identity()
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
        self.assertTrue(ident.startswith(f"{os.getpid()}:"), ident)
        self.assertIn(f"-{namespace}-", ident)
        self.assertEqual(proc.owner_state(ident), proc.ALIVE)

    def test_an_owner_from_another_namespace_or_host_is_unknown_never_gone(self) -> None:
        for owner in (other_namespace(), other_host()):
            self.assertEqual(proc.owner_state(owner), proc.UNKNOWN, owner)
            self.assertTrue(proc.is_alive(owner), f"{owner}: nothing may be torn down on a guess")

    def test_an_ended_owner_of_this_namespace_is_gone(self) -> None:
        self.assertEqual(proc.owner_state(dead()), proc.GONE)
        self.assertFalse(proc.is_alive(dead()))

    def test_labels_in_the_old_format_are_read_as_before(self) -> None:
        pid, start, _, _ = _parts()
        self.assertEqual(proc.owner_state(f"{pid}:{start}"), proc.ALIVE)
        self.assertEqual(proc.owner_state(f"{pid}:?"), proc.ALIVE)
        self.assertEqual(proc.owner_state(dead_old_format()), proc.GONE)
        for unreadable in (None, "", "garbage", f"{pid}:1"):
            self.assertEqual(proc.owner_state(unreadable), proc.GONE, unreadable)


class DockerInventoryTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.state_root = Path(tmp.name) / "home" / ".bot-bottle" / "state"
        self.state_root.mkdir(parents=True)
        self.other_root = Path(tmp.name) / "other" / ".bot-bottle" / "state"
        self.fake = FakeEngine()

    def inventory(self) -> docker_cleanup.Inventory:
        with mock.patch.object(docker_cleanup.engine, "run", self.fake.run):
            return docker_cleanup.inventory(self.state_root)

    def test_another_homes_bottles_are_skipped_whatever_their_owner(self) -> None:
        self.fake.bottle(FOREIGN, other_namespace())  # live, started by a process we cannot see
        self.fake.bottle(DEAD, dead())  # another home's leftovers: its cleanup's to remove
        self.fake.snapshot(FOREIGN, self.other_root / FOREIGN)
        self.fake.snapshot(DEAD, None)
        inv = self.inventory()
        self.assertEqual(inv.orphans, [])
        self.assertEqual(inv.kept, [], "nothing of another home is offered to --all either")
        skipped = {(r.kind, r.name): why for r, why in inv.skipped}
        self.assertEqual(len(skipped), 10)
        self.assertIn("not started from this home", skipped[("container", f"bot-bottle-{FOREIGN}-agent")])
        self.assertIn("another PID namespace", skipped[("container", f"bot-bottle-{FOREIGN}-agent")])
        self.assertIn("HOME that started it", skipped[("volume", f"bot-bottle-{DEAD}-sock")])
        self.assertIn(str(self.other_root), skipped[("image", f"bot-bottle/snapshot:{FOREIGN}")])

    def test_this_homes_orphans_are_removed_and_an_unknown_owner_keeps_its_bottle(self) -> None:
        _state(self.state_root, DEAD, dead())
        self.fake.bottle(DEAD, dead())
        self.fake.snapshot(DEAD, self.state_root / DEAD)
        _state(self.state_root, OLD, dead_old_format())
        self.fake.bottle(OLD, dead_old_format())  # labels in the old format: judged as before
        _state(self.state_root, OWN, other_namespace())
        self.fake.bottle(OWN, other_namespace())
        _state(self.state_root, UNSEEN, other_host(), preserved=True)
        self.fake.bottle(UNSEEN, other_host())
        _state(self.state_root, SAVED, dead(), preserved=True)
        self.fake.snapshot("dddddddd", self.state_root / "dddddddd")  # this home's; its state is gone
        inv = self.inventory()
        removed = {(r.kind, r.bottle_id) for r in inv.orphans}
        for bottle_id in (DEAD, OLD):
            self.assertTrue({("container", bottle_id), ("network", bottle_id), ("volume", bottle_id),
                             ("state", bottle_id)} <= removed, bottle_id)
        self.assertIn(("image", DEAD), removed)  # its state folder goes: nothing resumes from it
        self.assertIn(("image", "dddddddd"), removed)
        self.assertFalse({bid for _, bid in removed} & {OWN, UNSEEN}, removed)
        skipped = {(r.kind, r.bottle_id): why for r, why in inv.skipped}
        self.assertIn("cannot be checked from here", skipped[("container", OWN)])
        self.assertIn("cannot be checked from here", skipped[("state", OWN)])
        self.assertIn("cannot be checked from here", skipped[("volume", UNSEEN)])
        self.assertIn("cannot be checked from here", skipped[("state", UNSEEN)])  # even preserved: it may run
        self.assertEqual([(r.kind, r.bottle_id, why) for r, why in inv.kept],
                         [("state", SAVED, "preserved for resume")])  # what --all adds to the orphans

    def test_what_a_failed_teardown_left_after_its_state_went_is_still_this_homes(self) -> None:
        # The engine stopped answering during teardown: containers stayed, the state folder went.
        self.fake.bottle(DEAD, dead(), self.state_root / DEAD)
        self.fake.bottle(FOREIGN, dead(), self.other_root / FOREIGN)
        inv = self.inventory()
        removed = {(r.kind, r.bottle_id) for r in inv.orphans}
        self.assertTrue({("container", DEAD), ("network", DEAD), ("volume", DEAD)} <= removed, removed)
        self.assertFalse({bid for _, bid in removed} & {FOREIGN}, "another home's leftovers stay its own")

    def test_a_helper_of_no_bottle_is_judged_by_its_owner_alone(self) -> None:
        self.fake.helper("demo12345678", dead())  # a killed demo's stand-in internet: nobody's now
        self.fake.helper("demo87654321", other_namespace())
        inv = self.inventory()
        self.assertEqual({(r.kind, r.bottle_id) for r in inv.orphans},
                         {("container", "demo12345678"), ("network", "demo12345678")})
        self.assertEqual({r.bottle_id for r, why in inv.skipped if "cannot be checked" in why}, {"demo87654321"})

    def test_a_helpers_network_another_homes_bottle_still_uses_is_skipped_saying_by_what(self) -> None:
        # A killed test's stand-in internet, joined by a bottle of another home that is left
        # running: removing the network fails while that bottle uses it ("active endpoints").
        self.fake.helper("test12345678", dead())
        self.fake.bottle(FOREIGN, dead(), self.other_root / FOREIGN)
        net = next(o for o in self.fake.objects["network"] if o["Name"] == "bot-bottle-test12345678-internet")
        net["Containers"] = {f"id-bot-bottle-{FOREIGN}-agent": {"Name": f"bot-bottle-{FOREIGN}-agent"},
                             "id-api-test12345678": {"Name": "api-test12345678"}}
        inv = self.inventory()
        self.assertEqual({(r.kind, r.name) for r in inv.orphans}, {("container", "api-test12345678")})
        why = {(r.kind, r.name): why for r, why in inv.skipped}[("network", "bot-bottle-test12345678-internet")]
        self.assertEqual(why, f"still used by bot-bottle-{FOREIGN}-agent, which this cleanup does not remove")

    def test_a_helpers_network_used_only_by_what_goes_too_is_removed(self) -> None:
        self.fake.helper("test12345678", dead())
        net = next(o for o in self.fake.objects["network"] if o["Name"] == "bot-bottle-test12345678-internet")
        net["Containers"] = {"id-api-test12345678": {"Name": "api-test12345678"}}
        inv = self.inventory()
        self.assertEqual({(r.kind, r.name) for r in inv.orphans},
                         {("container", "api-test12345678"), ("network", "bot-bottle-test12345678-internet")})



class MachineInventoryTest(unittest.TestCase):
    def test_only_this_homes_machines_with_a_checkable_owner_are_orphans(self) -> None:
        from bot_bottle.backend.smolmachines import cleanup as smol_cleanup
        from bot_bottle.backend.smolmachines import smolvm

        machines = [{"name": f"bot-bottle-{bid}", "state": "running", "labels": {LABEL_OWNER: owner}}
                    for bid, owner in ((DEAD, dead()), (FOREIGN, dead()), (OWN, other_namespace()))]
        with tempfile.TemporaryDirectory() as tmp, mock.patch.object(smolvm, "is_available", return_value=True), \
                mock.patch.object(smolvm, "machine_ls", return_value=machines):
            (Path(tmp) / DEAD).mkdir()
            (Path(tmp) / OWN).mkdir()
            inv = smol_cleanup.inventory(Path(tmp))
        self.assertEqual([r.bottle_id for r in inv.orphans], [DEAD])
        skipped = {r.bottle_id: why for r, why in inv.skipped}
        self.assertIn("not started from this home", skipped[FOREIGN])
        self.assertIn("cannot be checked from here", skipped[OWN])


class CleanupCliTest(ManifestTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.fake = FakeEngine()
        self.tmp = Path(tempfile.mkdtemp(dir=self.mh.home.parent))

    def cleanup_preview(self, *extra: str) -> Any:
        from bot_bottle.backend.smolmachines import smolvm

        with mock.patch("bot_bottle.backend.docker.engine.run", self.fake.run), \
                mock.patch("bot_bottle.backend.docker.engine.is_available", return_value=True), \
                mock.patch.object(smolvm, "is_available", return_value=False), \
                mock.patch.object(tempfile, "tempdir", str(self.tmp)):
            return self.mh.run_cli("cleanup", "-n", *extra)

    def test_a_preview_lists_only_this_homes_leftovers_and_says_what_it_skips(self) -> None:
        state_root = self.mh.home_dir / "state"
        _state(state_root, DEAD, dead())
        self.fake.bottle(DEAD, dead())
        self.fake.bottle(FOREIGN, other_namespace())
        self.fake.bottle(UNSEEN, dead())
        for extra in ((), ("--all",)):  # --all adds preserved bottles, never another home's
            with self.subTest(extra=extra):
                result = self.cleanup_preview("--format", "json", *extra)
                self.assertEqual(result.code, 0, result.stderr)
                data = json.loads(result.stdout)
                self.assertEqual({r["bottle_id"] for r in data["would_remove"]}, {DEAD})
                self.assertEqual({k["bottle_id"] for k in data["kept"]}, {FOREIGN, UNSEEN})
        text = self.cleanup_preview()
        self.assertEqual(text.code, 0, text.stderr)
        for bottle_id in (FOREIGN, UNSEEN):
            lines = [line for line in text.stdout.splitlines() if bottle_id in line]
            self.assertEqual(len(lines), 1, text.stdout)  # one line per skipped bottle, naming all of it
            for piece in ("skipped", f"bot-bottle-{bottle_id}-agent", f"bot-bottle-{bottle_id}-sidecar",
                          f"bot-bottle-{bottle_id}-net", "not started from this home"):
                self.assertIn(piece, lines[0])


class CommitTest(ManifestTestCase):
    def running(self, *bottle_ids: str) -> list[RunningBottle]:
        return [RunningBottle(id=bid, agent="coder", label=None, status="running", started_at="",
                              owner_alive=True, image="img") for bid in bottle_ids]

    def commit(self, *argv: str, running: list[RunningBottle]) -> tuple[Any, mock.MagicMock]:
        """``bot-bottle commit ARGV`` with ``running`` on the engine; (result, the snapshot mock)."""
        with mock.patch("bot_bottle.lifecycle.snapshot", return_value="bot-bottle/snapshot:x") as snap, \
                mock.patch("bot_bottle.backend.docker.engine.run", _no_engine), \
                mock.patch("bot_bottle.cli.commit.running", create=True, return_value=running), \
                mock.patch("bot_bottle.api.running", return_value=running):
            return self.mh.run_cli("commit", *argv, running=running), snap

    def test_without_an_id_another_homes_only_running_bottle_is_not_committed(self) -> None:
        result, snap = self.commit(running=self.running(FOREIGN))
        self.assertEqual(result.code, 1, result.stdout)
        self.assertIn("no running bottle was started from this home", result.stderr)
        self.assertIn("1 other running bottle was started from another home", result.stderr)
        snap.assert_not_called()

    def test_without_an_id_the_only_bottle_of_this_home_is_committed(self) -> None:
        _state(self.mh.home_dir / "state", OWN, proc.identity())
        result, snap = self.commit(running=self.running(FOREIGN, OWN))
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn(f"committed bottle {OWN}", result.stdout)
        self.assertEqual(snap.call_args.args[0], OWN)

    def test_stop_without_an_id_stops_the_only_bottle_of_this_home(self) -> None:
        _state(self.mh.home_dir / "state", OWN, proc.identity())
        running = self.running(FOREIGN, OWN)
        with mock.patch("bot_bottle.api.stop") as stop, \
                mock.patch("bot_bottle.backend.docker.engine.run", _no_engine):
            result = self.mh.run_cli("stop", running=running)
        self.assertEqual(result.code, 0, result.stderr)
        self.assertIn(f"stopped bottle {OWN}", result.stdout)
        self.assertEqual(stop.call_args.args[0], OWN)

    def test_stop_without_an_id_never_picks_another_homes_bottle(self) -> None:
        with mock.patch("bot_bottle.api.stop") as stop, \
                mock.patch("bot_bottle.backend.docker.engine.run", _no_engine):
            result = self.mh.run_cli("stop", running=self.running(FOREIGN))
        self.assertEqual(result.code, 1, result.stdout)
        self.assertIn("no running bottle was started from this home", result.stderr)
        self.assertIn("stop a bottle with the HOME that started it", result.stderr)
        stop.assert_not_called()

    def test_a_named_bottle_with_no_state_here_is_refused_before_any_snapshot(self) -> None:
        result, snap = self.commit(FOREIGN, running=self.running(FOREIGN))
        self.assertEqual(result.code, 1)
        self.assertIn(f"bottle {FOREIGN} has no state under", result.stderr)
        self.assertIn("not started from this home", result.stderr)
        snap.assert_not_called()

    def test_the_backends_refuse_to_commit_a_bottle_with_no_state(self) -> None:
        from bot_bottle.backend import registry

        for name in ("docker", "smolmachines"):
            with self.subTest(backend=name), tempfile.TemporaryDirectory() as tmp, \
                    mock.patch("bot_bottle.lifecycle.snapshot") as snap, \
                    mock.patch("bot_bottle.backend.docker.engine.run", _no_engine):
                with self.assertRaises(BotBottleError) as ctx:
                    registry.for_name(name).commit(FOREIGN, state_root=Path(tmp))
                self.assertIn(f"bottle {FOREIGN} has no state under {tmp}", str(ctx.exception))
                snap.assert_not_called()
                self.assertEqual(list(Path(tmp).iterdir()), [], "nothing is written for it either")


class StopTest(ManifestTestCase):
    def running(self, bottle_id: str) -> list[RunningBottle]:
        return [RunningBottle(id=bottle_id, agent="dev", label=None, status="running", started_at="",
                              owner_alive=True, image="img", backend="docker")]

    def test_a_bottle_of_another_home_is_not_stopped(self) -> None:
        stops: list[list[str]] = []

        def engine(args: Any, **_kw: Any) -> DockerResult:
            if args[:1] != ["stop"]:
                return _no_engine(args)
            stops.append(list(args))
            return DockerResult(0, "", "")

        with mock.patch("bot_bottle.backend.docker.engine.run", engine), \
                mock.patch("bot_bottle.api.running", side_effect=lambda i: self.running(i)):
            result = self.mh.run_cli("stop", FOREIGN)
            self.assertEqual(result.code, 1)
            self.assertIn(f"bottle {FOREIGN} has no state under", result.stderr)
            self.assertEqual(stops, [])
            _state(self.mh.home_dir / "state", OWN, proc.identity())
            self.assertEqual(self.mh.run_cli("stop", OWN).code, 0)
            self.assertEqual(len(stops), 1)
            self.assertIn(f"bot-bottle-{OWN}-agent", stops[0])

    def test_the_python_api_refuses_a_bottle_of_another_home_too(self) -> None:
        from bot_bottle import api

        with tempfile.TemporaryDirectory() as home, \
                mock.patch("bot_bottle.backend.docker.engine.run", _no_engine), \
                mock.patch("bot_bottle.api.running", side_effect=AssertionError("the engine was asked")):
            with self.assertRaises(BotBottleError) as ctx:
                api.stop(FOREIGN, home=home)
        self.assertIn(f"bottle {FOREIGN} has no state under", str(ctx.exception))


class ListOwnershipTest(ManifestTestCase):
    def bottle(self, bottle_id: str, owner: str) -> RunningBottle:
        # What ``running()`` reads from the engine: the owner label checked here.
        return RunningBottle(id=bottle_id, agent="coder", label=None, status="running", started_at="",
                             owner_alive=proc.is_alive(owner), image="img")

    def test_only_this_homes_bottle_with_a_gone_owner_is_orphaned(self) -> None:
        state_root = self.mh.home_dir / "state"
        _state(state_root, OWN, other_namespace())
        _state(state_root, DEAD, dead())
        live = [self.bottle(FOREIGN, other_namespace()), self.bottle(UNSEEN, dead()),
                self.bottle(OWN, other_namespace()), self.bottle(DEAD, dead())]
        result = self.mh.run_cli("list", "--running", "--format", "json", running=live)
        self.assertEqual(result.code, 0, result.stderr)
        rows = {r["id"]: r for r in json.loads(result.stdout)["running"]}
        self.assertEqual({bid for bid, r in rows.items() if r["orphaned"]}, {DEAD})
        self.assertEqual({bid for bid, r in rows.items() if r["from_this_home"]}, {OWN, DEAD})
        self.assertEqual(rows[OWN]["owner"], "unknown")
        text = self.mh.run_cli("list", "--running", running=live).stdout
        lines = {bid: next(line for line in text.splitlines() if bid in line) for bid in rows}
        for bid in (FOREIGN, UNSEEN, OWN):
            self.assertNotIn("orphaned", lines[bid])
        self.assertIn(f"orphaned: `bot-bottle stop {DEAD}` keeps its work for resume; `bot-bottle cleanup` removes it",
                      re.sub(r"\s+", " ", lines[DEAD]))
        self.assertIn("owner unknown", lines[OWN])
        self.assertIn("not started from this home", lines[FOREIGN])


if __name__ == "__main__":
    unittest.main()
