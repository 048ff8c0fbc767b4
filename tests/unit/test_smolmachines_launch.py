"""A smolmachines launch on a fake host: every argv it builds, rollback, snapshots, cleanup."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import proc
from bot_bottle.backend.docker.launch import LaunchOptions
from bot_bottle.backend.smolmachines import cleanup as smol_cleanup
from bot_bottle.backend.smolmachines import launch, smolvm
from bot_bottle.backend.smolmachines.bottle import SECRET_ENV_FILE, SmolmachinesBottle
from bot_bottle.backend.smolmachines.launch import SmolmachinesLauncher
from bot_bottle.plan import RepoPlan
from bot_bottle.provision import agent_files
from bot_bottle.state import StateDir
from tests.unit.test_smolmachines_fakehost import (
    HOST_ENVIRON,
    LITERAL,
    SECRET_HOST,
    SECRET_PROMPTED,
    SIDECAR_IP,
    V08,
    V1,
    FakeHost,
    bottle_plan,
    env_pairs,
    parse_env_file,
)

SECRETS = (SECRET_PROMPTED, SECRET_HOST, HOST_ENVIRON["ANTHROPIC_API_KEY"])


class LaunchCase(unittest.TestCase):
    cli = V1

    def setUp(self) -> None:
        self.fake = FakeHost()
        stack = contextlib.ExitStack()
        self.addCleanup(stack.close)
        stack.enter_context(self.fake.installed(self.cli))
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.state_root = Path(tmp.name) / "state"
        self.plan, self.options = bottle_plan(self, "smolmachines")

    def launcher(self, options: LaunchOptions | None = None) -> SmolmachinesLauncher:
        return SmolmachinesLauncher(self.plan, options or self.options, self.state_root)

    def create_argv(self) -> list[str]:
        return next(c for c in self.fake.smolvm_calls() if c[:2] == ["machine", "create"])


class Launch(LaunchCase):
    def test_the_vm_may_reach_only_the_sidecar_and_its_proxy_points_there(self) -> None:
        launcher = self.launcher()
        bottle = launcher.launch()
        self.assertIsInstance(bottle, SmolmachinesBottle)
        argv = self.create_argv()
        self.assertEqual([argv[i + 1] for i, a in enumerate(argv) if a == "--allow-cidr"], [f"{SIDECAR_IP}/32"])
        for flag in ("--net", "--allow-host", "--allow-host-pattern", "--block-private", "--port", "-p", "--volume", "-v"):
            self.assertNotIn(flag, argv[: argv.index("--")])
        env = env_pairs(argv)
        for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            self.assertEqual(env[key], f"http://{SIDECAR_IP}:3128")
        self.assertEqual(env["NODE_EXTRA_CA_CERTS"], "/usr/local/share/ca-certificates/bot-bottle-ca.crt")
        # The proxy listens for the VM on that one address only.
        forward = next(c for c in self.fake.docker_calls() if c[:2] == ["exec", "-d"])
        self.assertIn(f"TCP-LISTEN:3128,bind={SIDECAR_IP},fork,reuseaddr,max-children=128,backlog=4096,forever,interval=1",
                      forward)
        self.assertEqual(bottle.guest_env["HTTPS_PROXY"], f"http://{SIDECAR_IP}:3128")
        launcher.teardown()

    def test_machine_is_made_from_the_pack_with_labels_and_a_keepalive(self) -> None:
        launcher = self.launcher()
        launcher.launch()
        argv = self.create_argv()
        self.assertEqual(argv[argv.index("--name") + 1], f"bot-bottle-{launcher.names.id}")
        self.assertTrue(argv[argv.index("--from") + 1].endswith(".smolmachine.smolmachine"))
        self.assertIn(f"bot-bottle.id={launcher.names.id}", argv)
        self.assertIn("bot-bottle.backend=smolmachines", argv)
        self.assertIn(f"bot-bottle.owner={proc.identity()}", argv)
        self.assertEqual(argv[argv.index("--") + 1:], ["sleep", "infinity"])
        self.assertEqual(argv[argv.index("--mem") + 1], "4096")
        launcher.teardown()

    def test_steps_run_in_order(self) -> None:
        launcher = self.launcher()
        launcher.launch()
        steps = []
        for call in self.fake.calls:
            args = call.argv[1:]
            if args[:1] == ["start"]:
                steps.append("sidecar start")
            elif args[:2] == ["exec", "-d"]:
                steps.append("proxy port")
            elif args[:2] in (["machine", "create"], ["machine", "start"]):
                steps.append(" ".join(args[:2]))
            elif args[:2] == ["machine", "exec"] and args[-1] == "true":
                steps.append("ready")
            elif args[:2] == ["machine", "cp"]:
                steps.append("provision")
        self.assertEqual(steps[:6], ["sidecar start", "proxy port", "machine create", "machine start", "ready", "provision"])
        launcher.teardown()

    def test_secrets_never_reach_an_argv_and_arrive_in_a_private_file(self) -> None:
        launcher = self.launcher()
        bottle = launcher.launch()
        agent = bottle.agent_argv(["-p", "task"], tty=True)
        launcher.teardown()
        for argv in [*self.fake.argvs(), agent]:
            for secret in SECRETS:
                self.assertFalse(any(secret in a for a in argv), f"a secret is on {argv[:4]}")
        in_guest = parse_env_file(self.fake.files[SECRET_ENV_FILE].decode())
        self.assertEqual(in_guest, {"ASKED": SECRET_PROMPTED, "FROM_HOST": SECRET_HOST})
        self.assertEqual(env_pairs(self.create_argv())["LIT"], LITERAL)
        chmods = [c[-1] for c in self.fake.smolvm_calls() if c[:2] == ["machine", "exec"] and "chmod 600" in c[-1]]
        self.assertEqual(chmods, [f"chmod 700 /home/node/.bot-bottle && chmod 600 {SECRET_ENV_FILE}"])

    def test_a_secret_value_under_a_plain_name_stays_off_the_argv(self) -> None:
        options = self.options
        options.env = {**options.env, "ALIAS": SECRET_HOST}
        launcher = self.launcher(options)
        launcher.launch()
        self.assertNotIn("ALIAS", env_pairs(self.create_argv()))
        self.assertEqual(parse_env_file(self.fake.files[SECRET_ENV_FILE].decode())["ALIAS"], SECRET_HOST)
        launcher.teardown()

    def test_bundle_objects_are_labelled_as_a_micro_vm_bottle_and_removed_at_the_end(self) -> None:
        launcher = self.launcher()
        launcher.launch()
        creates = [c for c in self.fake.docker_calls() if c[0] in ("create", "volume", "network") and "--label" in c]
        self.assertTrue(creates)
        for argv in creates:
            self.assertIn("bot-bottle.backend=smolmachines", argv)
        meta = launcher.state.read()
        self.assertEqual((meta.backend, meta.runtime), ("smolmachines", "libkrun"))
        self.assertEqual(meta.extra["machine"], launcher.machine)
        self.assertEqual(meta.extra["sidecar_address"], SIDECAR_IP)
        launcher.teardown()
        launcher.teardown()  # idempotent
        deletes = [c for c in self.fake.smolvm_calls() if c[:2] == ["machine", "delete"]]
        self.assertEqual(deletes, [["machine", "delete", "--name", launcher.machine, "-f"]])
        self.assertIn(["rm", "-f", "-v", launcher.names.sidecar_container], self.fake.docker_calls())
        self.assertFalse(launcher.state.path.exists())
        self.assertEqual(self.fake.machines, {})

    def test_a_failed_start_removes_the_machine_the_bundle_and_the_state(self) -> None:
        self.fake.fail_when(lambda argv: argv[1:3] == ["machine", "start"], 1, "Error: KVM_UNAVAILABLE")
        launcher = self.launcher()
        with self.assertRaises(smolvm.SmolvmError) as ctx:
            launcher.launch()
        self.assertIn("KVM_UNAVAILABLE", str(ctx.exception))
        self.assertIn(["machine", "delete", "--name", launcher.machine, "-f"], self.fake.smolvm_calls())
        self.assertIn(["network", "rm", launcher.names.network], self.fake.docker_calls())
        self.assertFalse(launcher.state.path.exists())

    def test_a_failure_before_the_machine_exists_deletes_no_machine(self) -> None:
        self.fake.fail_when(lambda argv: argv[1:2] == ["start"], 1, "sidecar failed")
        launcher = self.launcher()
        with self.assertRaises(Exception):
            launcher.launch()
        self.assertFalse([c for c in self.fake.smolvm_calls() if c[:2] in (["machine", "create"], ["machine", "delete"])])

    def test_provisioning_writes_prompt_settings_and_the_bottle_ca(self) -> None:
        launcher = self.launcher()
        launcher.launch()
        self.assertIn("/home/node/.claude/CLAUDE.md", self.fake.files)
        self.assertIn("/home/node/.claude/settings.json", self.fake.files)
        self.assertIn(launch.CA_STAGING, self.fake.files)
        trust = [c for c in self.fake.smolvm_calls() if c[:2] == ["machine", "exec"] and "BEGIN CERTIFICATE" in c[-1]]
        self.assertEqual(trust[0][trust[0].index("-u") + 1], "root")
        launcher.teardown()


    def test_git_gets_the_identity_and_the_gate_rewrites_as_in_a_docker_bottle(self) -> None:
        repo = RepoPlan(name="app", url="https://github.com/acme/app.git", auth="none", credential_ref=None,
                        source="dev.md:9")
        self.plan = dataclasses.replace(self.plan, repos=(repo,),
                                        git_user={"name": "Bottle Bot", "email": "bot@example.com"})
        launcher = self.launcher()
        launcher.launch()
        scripts = [c[-1] for c in self.fake.smolvm_calls() if c[:2] == ["machine", "exec"] and "git config" in c[-1]]
        self.assertEqual(len(scripts), 1, "git is configured once, through the handle")
        self.assertIn("user.name 'Bottle Bot'", scripts[0])
        self.assertIn("url.http://git-gate.bottle.internal/app.git.insteadOf", scripts[0])
        self.assertIn("https://github.com/acme/app.git", scripts[0])
        launcher.teardown()


class Preflight(unittest.TestCase):
    def test_a_host_without_micro_vms_is_refused_with_the_doctors_reason_before_anything_runs(self) -> None:
        from bot_bottle import doctor

        plan, options = bottle_plan(self, "smolmachines")
        reason = "PVM nested virtualisation (kvm_pvm loaded): libkrun guests cannot boot"
        with tempfile.TemporaryDirectory() as tmp, \
                mock.patch.object(doctor, "check_microvm", return_value=doctor.Check(doctor.MICROVM, False, reason=reason)), \
                mock.patch.object(smolvm, "is_available", return_value=False), \
                mock.patch("subprocess.run") as run:
            launcher = SmolmachinesLauncher(plan, options, Path(tmp))
            with self.assertRaises(Exception) as ctx:
                launcher.launch()
            self.assertFalse(launcher.state.path.exists())
        run.assert_not_called()
        self.assertIn(reason, str(ctx.exception))
        self.assertIn("smolvm: not installed", str(ctx.exception))


class SnapshotsAndResume(LaunchCase):
    def test_snapshot_removes_the_secret_file_then_packs_the_stopped_machine(self) -> None:
        launcher = self.launcher()
        launcher.launch()
        before = len(self.fake.calls)
        packed = launcher.snapshot()
        launcher.preserve_reason = "agent exited with code 1"
        launcher.teardown()
        after = [c.argv[1:] for c in self.fake.calls[before:] if c.argv[0].endswith("smolvm")]
        self.assertIn(f"rm -f {SECRET_ENV_FILE}", after[0][-1])
        self.assertEqual(after[1], ["machine", "stop", "--name", launcher.machine])
        self.assertEqual(after[2], ["pack", "create", "--from-vm", launcher.machine, "-o", str(launcher.state.path / "snapshot")])
        self.assertEqual(packed, str(launcher.state.path / "snapshot.smolmachine"))
        self.assertTrue(Path(packed).is_file())
        self.assertTrue(launcher.state.preserved)

    def test_a_commit_from_another_process_is_packed_at_teardown(self) -> None:
        launcher = self.launcher()
        launcher.launch()
        launch.request_commit(StateDir(self.state_root, launcher.names.id))
        launcher.teardown()
        meta = launcher.state.read()
        self.assertEqual(meta.snapshot, str(launcher.state.path / "snapshot.smolmachine"))
        self.assertTrue(launcher.state.preserved)
        self.assertIn(["pack", "create", "--from-vm", launcher.machine, "-o", str(launcher.state.path / "snapshot")],
                      self.fake.smolvm_calls())

    def test_resume_boots_the_snapshot_and_provisions_trust_env_and_the_manifests_start_files(self) -> None:
        first = self.launcher()
        first.launch()
        snapshot = first.snapshot()
        meta = first.state.read()
        meta.snapshot = snapshot
        first.state.write(meta)
        first.preserve_reason = "asked to preserve"
        first.teardown()
        self.fake.calls.clear()
        self.fake.files.clear()
        resumed = self.launcher(LaunchOptions(
            env=self.options.env, known_secrets=self.options.known_secrets,
            bottle_id=first.names.id, resume=True, image_override=snapshot,
        ))
        resumed.launch()
        self.assertEqual(self.create_argv()[self.create_argv().index("--from") + 1], snapshot)
        self.assertFalse([c for c in self.fake.docker_calls() if c[0] == "save"])
        self.assertFalse([c for c in self.fake.smolvm_calls() if c[:2] == ["pack", "create"]])
        # No workspace copy; the agent CLI's start files are the manifest's again.
        start_files = agent_files.start_files(resumed.plan.template, "", supervise=resumed.plan.supervise)
        self.assertEqual(sorted(self.fake.files), sorted([SECRET_ENV_FILE, launch.CA_STAGING, *start_files]))
        resumed.teardown()
        # As on Docker: a resumed bottle that ends well without being preserved again is done.
        self.assertFalse(resumed.state.path.exists())


class Legacy08(LaunchCase):
    cli = V08

    def test_08_turns_the_network_on_explicitly_for_the_one_address(self) -> None:
        with mock.patch.object(launch.local_registry, "ephemeral_registry") as registry, \
                mock.patch.object(launch.local_registry, "crane_push_tarball"):
            registry.return_value.__enter__.return_value = launch.local_registry.RegistryHandle("n", "10.1.0.2:5000", "127.0.0.1:5001")
            launcher = self.launcher()
            launcher.launch()
        argv = self.create_argv()
        self.assertEqual(argv[-1], launcher.machine)
        net = argv.index("--net")
        self.assertEqual(argv[net + 1: net + 3], ["--allow-cidr", f"{SIDECAR_IP}/32"])
        launcher.teardown()


class Cleanup(unittest.TestCase):
    def test_orphans_by_name_prefix_and_owner(self) -> None:
        fake = FakeHost()
        dead = "999999:1"
        fake.machines = {
            "bot-bottle-aaaaaaaa": {"name": "bot-bottle-aaaaaaaa", "state": "running", "labels": {"bot-bottle.owner": proc.identity()}},
            "bot-bottle-bbbbbbbb": {"name": "bot-bottle-bbbbbbbb", "state": "stopped", "labels": {"bot-bottle.owner": dead}},
            "bot-bottle-cccccccc": {"name": "bot-bottle-cccccccc", "state": "created", "labels": {}},
            "my-own-vm": {"name": "my-own-vm", "state": "running", "labels": {}},
        }
        with fake.installed(), tempfile.TemporaryDirectory() as tmp:
            for bottle_id in ("aaaaaaaa", "bbbbbbbb", "cccccccc"):  # this home's bottles
                (Path(tmp) / bottle_id).mkdir()
            inv = smol_cleanup.inventory(Path(tmp))
            self.assertEqual(sorted(r.name for r in inv.orphans), ["bot-bottle-bbbbbbbb", "bot-bottle-cccccccc"])
            self.assertEqual([r.name for r in inv.live], ["bot-bottle-aaaaaaaa"])
            self.assertEqual([m.bottle_id for m in smol_cleanup.running()], ["aaaaaaaa"])
            failures = smol_cleanup.remove(inv.orphans)
        self.assertEqual(failures, [])
        self.assertEqual(sorted(fake.machines), ["bot-bottle-aaaaaaaa", "my-own-vm"])
        self.assertFalse([c for c in fake.docker_calls()], "machine cleanup never calls docker")

    def test_the_registry_removes_machines_with_smolvm_and_the_rest_with_docker(self) -> None:
        from bot_bottle.backend import registry
        from bot_bottle.backend.docker.cleanup import Resource

        fake = FakeHost()
        fake.machines = {"bot-bottle-dddddddd": {"name": "bot-bottle-dddddddd", "state": "stopped", "labels": {}}}
        resources = [
            Resource("container", "c0ffee", "bot-bottle-dddddddd-sidecar", "dddddddd"),
            Resource("machine", "bot-bottle-dddddddd", "bot-bottle-dddddddd", "dddddddd"),
        ]
        with fake.installed():
            self.assertEqual(registry.remove(resources), [])
        order = [(Path(c.argv[0]).name, c.argv[1:3]) for c in fake.calls]
        self.assertEqual(order, [("smolvm", ["machine", "delete"]), ("docker", ["rm", "-f"])])

    def test_no_cli_no_machines(self) -> None:
        with mock.patch.object(smolvm, "is_available", return_value=False), tempfile.TemporaryDirectory() as tmp:
            self.assertEqual(smol_cleanup.inventory(Path(tmp)).orphans, [])


class DryRun(unittest.TestCase):
    def test_fields_describe_the_vm_without_running_anything(self) -> None:
        plan, _ = bottle_plan(self, "smolmachines")
        with mock.patch("subprocess.run") as run:
            fields = launch.dry_run_fields(plan, V1)
        run.assert_not_called()
        json.dumps(fields)
        self.assertEqual(fields["runtime"], "libkrun")
        self.assertEqual(fields["egress"]["allow_cidrs"], ["<sidecar address on the bottle network>/32"])
        self.assertIn("archive", fields["image_artifact"]["pipeline"])
        self.assertIn("registry", launch.dry_run_fields(plan, V08)["image_artifact"]["pipeline"])


if __name__ == "__main__":
    unittest.main()
