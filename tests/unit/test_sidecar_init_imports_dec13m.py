"""What the sidecar's init imports before it starts the egress proxy.

The bottle's start waits for PID 1 to spawn the proxy, so every module imported by then is on
the start's critical path: the supervise channel (and asyncio through it), the egress policy and
credentials (read only after the spawn, in ``preflight``) and ``typing`` must wait until after.
"""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar import init
from bot_bottle.sidecar.supervise import channel, spool_layout

REPO = Path(__file__).resolve().parents[2]

LATE = (
    "asyncio",
    "typing",
    "bot_bottle.sidecar.supervise.channel",
    "bot_bottle.sidecar.egress.policy",
    "bot_bottle.sidecar.egress.credentials",
    "mitmproxy",
)

# Runs the init's start up to the proxy's spawn (the CA left out: ``boot`` begins it in a child)
# and prints which of LATE were imported by then. The spool is laid out first, as the image's
# init does (``hand_out_folders``) before the spawn.
PROBE = """
import os, sys
from pathlib import Path
from bot_bottle.sidecar import init

LATE = {late!r}
root = Path(sys.argv[1])

def seen():
    return sorted(m for m in LATE if m in sys.modules)

def spawn(self, name, *args, **kwargs):
    if name == "egress-proxy":
        print("at-spawn", seen(), flush=True)
        os._exit(0)
    raise AssertionError("spawned " + name + " before the proxy")

init.Supervisor.spawn = spawn
init.start_ca = lambda confdir: None
print("imported", seen(), flush=True)
init.hand_out_spool(root / "spool", init.Account(os.geteuid(), os.getegid(), (os.getegid(),), "/"))
sys.exit(init.main(["--policy", str(root / "policy.json"), "--secrets", str(root / "secrets.json"),
                    "--run-dir", str(root / "run"), "--state-dir", str(root / "state"),
                    "--log-dir", str(root / "log")]))
"""


def run_probe(root: Path) -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(late=LATE), str(root)], capture_output=True,
                         text=True, cwd=REPO, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    seen: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        when, _, modules = line.partition(" ")
        seen[when] = ast.literal_eval(modules)
    if "at-spawn" not in seen:
        raise AssertionError(f"the probe never reached the proxy's spawn: {out.stdout!r} {out.stderr!r}")
    return seen


class ImportsBeforeTheProxyTest(unittest.TestCase):
    def test_nothing_late_is_imported_by_the_proxy_spawn(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            seen = run_probe(Path(tmp))
        self.assertEqual(seen["imported"], [])
        self.assertEqual(seen["at-spawn"], [])

    def test_the_channel_alone_leaves_asyncio_out(self) -> None:
        probe = "import sys, bot_bottle.sidecar.supervise.channel; print('asyncio' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        self.assertEqual(out.stdout.strip(), "False", out.stderr)


class NamesStillThereTest(unittest.TestCase):
    def test_the_late_names_read_as_the_inits(self) -> None:
        from bot_bottle.sidecar.egress import credentials, policy
        from bot_bottle.sidecar.init import Policy, Secrets  # the old ``from`` imports still work

        self.assertIs(Secrets, credentials.Secrets)
        self.assertIs(Policy, policy.Policy)
        self.assertIs(init.SecretsError, credentials.SecretsError)
        self.assertIs(init.check_credentials, credentials.check_credentials)
        self.assertIs(init.PolicyError, policy.PolicyError)

    def test_an_unknown_name_is_still_an_attribute_error(self) -> None:
        with self.assertRaises(AttributeError):
            init.no_such_name  # noqa: B018 - the attribute access is the test
        self.assertFalse(hasattr(init, "channel"))

    def test_the_channel_keeps_the_spool_layout_names(self) -> None:
        for name in ("GRANTS_FILE", "GRANTS_LOCK_FILE", "DECIDE_LOCK_FILE", "EXPIRED_DIR", "PUSH_USES_DIR",
                     "PUSH_FINDINGS_DIR", "ARCHIVE_DIR", "PROPOSALS_DIR", "DECISIONS_DIR", "SPOOL_MODE",
                     "SHARED_FOLDERS"):
            self.assertIs(getattr(channel, name), getattr(spool_layout, name), name)
        self.assertEqual(set(channel.SHARED_FOLDERS),
                         {"proposals", "archive", "expired", "decisions", "push-findings", "push-uses"})


class SpoolLaidOutTest(unittest.TestCase):
    def test_hand_out_spool_makes_each_folder_and_file_with_its_mode(self) -> None:
        gid = os.getegid()
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "spool"
            (root / channel.DECISIONS_DIR).mkdir(parents=True)
            (root / channel.DECISIONS_DIR / "p-1.json").write_text("{}")
            (root / channel.GRANTS_FILE).write_text("{}")
            init.hand_out_spool(root, init.Account(os.geteuid(), gid, (gid,), "/"))
            self.assertEqual(stat.S_IMODE(root.stat().st_mode), channel.SPOOL_MODE)
            for name, (mode, _owner) in channel.SHARED_FOLDERS.items():
                self.assertEqual(stat.S_IMODE((root / name).stat().st_mode), mode, name)
            self.assertEqual(stat.S_IMODE((root / channel.DECISIONS_DIR / "p-1.json").stat().st_mode), 0o640)
            self.assertEqual(stat.S_IMODE((root / channel.DECIDE_LOCK_FILE).stat().st_mode), 0o640)
            self.assertEqual(stat.S_IMODE((root / channel.GRANTS_LOCK_FILE).stat().st_mode), 0o600)
            self.assertEqual(stat.S_IMODE((root / channel.GRANTS_FILE).stat().st_mode), 0o640)


if __name__ == "__main__":
    unittest.main()
