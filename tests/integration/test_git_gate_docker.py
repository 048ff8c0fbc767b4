"""The git-gate in containers: SSH and HTTP upstreams, the gate in the sidecar image, git in the agent image.

Everything runs on one ``--internal`` network this test creates (no route anywhere else):
- the upstream (``git_upstream/``: sshd with a host key made at its first start and one authorized
  key, and smart HTTP behind a token, both logging every git command) answers as
  ``git.upstream.test`` and, for the pinning test, ``git2.upstream.test``;
- the gate runs ``python -m bot_bottle.sidecar.git_gate`` in the sidecar image with the files
  ``bot_bottle.provision.git.gate_files`` compiles (credentials mode 600, only there);
- the "agent" is a container of the agent image, configured by ``configure_git`` through a
  ``DockerBottle``, talking to the gate over that network (the proxy route comes later).
The ``app`` repo goes upstream over SSH, ``lib`` over HTTPS with a token: the upstream's
certificate comes from a throwaway CA the gate's container trusts (added to its system store, as
the launcher does with ``LaunchOptions.upstream_ca_pem``). ``rogue`` is the same server on a port
whose certificate comes from a CA nobody trusts, ``wrongname`` a name its certificate does not
cover: both must fail closed. Every container,
network and derived image is removed by id afterwards; only the upstream image stays cached,
tagged by a hash of its build context.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from bot_bottle import images
from bot_bottle.backend.docker import engine
from bot_bottle.backend.docker.bottle import DockerBottle
from bot_bottle.demo import tls
from bot_bottle.provision.git import GateRepo, configure_git, gate_files
from tests import _docker
from tests.integration import test_git_gate_scenarios as scenarios

UPSTREAM_DIR = Path(__file__).resolve().parent / "git_upstream"
UPSTREAM_HOST = "git.upstream.test"
PINNED_HOST = "git2.upstream.test"  # same server; the gate is given a wrong pinned key for it
GATE_HOST = "git-gate.test"
GATE_PORT = 9420
FAST_DNS = ["--dns-opt", "timeout:1", "--dns-opt", "attempts:1"]
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
ROGUE_URL = f"https://{UPSTREAM_HOST}:8443/lib.git"  # a certificate from a CA nobody trusts
WRONG_NAME_URL = f"https://{PINNED_HOST}/lib.git"  # the trusted certificate, issued for another name


def docker(*args: str, timeout: float = 120, check: bool = True, input: str | None = None) -> engine.DockerResult:
    return engine.run(list(args), timeout=timeout, check=check, input=input)


def _wait_for(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)


def _build(ref: str, context: Path, build_args: dict[str, str]) -> None:
    binary = engine.docker_binary()
    assert binary is not None
    argv = [binary, "build", "-q", "--force-rm", "-t", ref]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    # The classic builder: BuildKit is not available on every machine that runs these tests.
    result = subprocess.run([*argv, str(context)], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "DOCKER_BUILDKIT": "0"})
    if result.returncode != 0:
        raise AssertionError(f"building {ref} failed:\n{(result.stdout + result.stderr)[-3000:]}")


def upstream_image() -> str:
    """The test upstream's image, tagged by a hash of its context; built once, then cached."""
    base = images.load_versions().get("base", {}).get("image", "debian:bookworm-slim")
    digest = hashlib.sha256(base.encode())
    for path in sorted(p for p in UPSTREAM_DIR.iterdir() if p.is_file()):
        digest.update(b"\0" + path.name.encode() + b"\0" + path.read_bytes())
    ref = f"bot-bottle-test/git-upstream:{digest.hexdigest()[:12]}"
    if not images.image_exists(ref):
        _build(ref, UPSTREAM_DIR, {"BASE_IMAGE": base})
    return ref


def install_upstream_tls(container: str, tmp: Path) -> tls.ThrowawayCA:
    """Give a created (not started) upstream its HTTPS certificates; return the CA to trust.

    Port 443 gets a certificate for ``UPSTREAM_HOST`` from the returned CA, port 8443 one for the
    same name from a second CA that nobody is told about.
    """
    certs = tmp / "tls"
    certs.mkdir()
    for ca_dir in ("ca", "rogue-ca"):
        (tmp / ca_dir).mkdir()
    ca = tls.make_ca(tmp / "ca")
    ca.issue(certs, "server", [UPSTREAM_HOST])
    tls.make_ca(tmp / "rogue-ca").issue(certs, "rogue", [UPSTREAM_HOST])
    for leftover in [*certs.glob("*.csr"), *certs.glob("*.ext")]:
        leftover.unlink()
    docker("cp", str(certs), f"{container}:/srv/tls")
    return ca


@_docker.skip_unless_docker()
class DockerGateTest(scenarios.GateScenarios):
    __test__ = True

    @classmethod
    def setUpClass(cls) -> None:
        cls.label = f"bot-bottle.test=git-gate-{secrets.token_hex(6)}"
        cls.before = _docker.resource_snapshot(label=cls.label)
        cls._tmp = tempfile.TemporaryDirectory(prefix="bb-gate-docker-it-")
        cls.addClassCleanup(cls._tmp.cleanup)
        cls.tmp = Path(cls._tmp.name)
        upstream_ref = upstream_image()
        gate_ref = cls._gate_image()
        agent_ref = images.ensure_image(images.agent_image("claude"))
        cls.network = cls._make(["network", "create", "--internal", "--label", cls.label, f"bb-it-gate-{secrets.token_hex(6)}"],
                                lambda ref: docker("network", "rm", ref, check=False))
        cls.token = "tok_" + secrets.token_hex(20)
        cls.upstream = cls._start_upstream(upstream_ref)
        cls.gate = cls._start_gate(gate_ref)
        cls.client = cls._container("run", "-d", "--network", cls.network, *FAST_DNS, "--cap-drop", "ALL",
                                    "--security-opt", "no-new-privileges", "--user", "node",
                                    "--entrypoint", "sleep", agent_ref, "infinity")
        cls.bottle = DockerBottle(container=cls.client)
        cls.repo_urls = {"app": f"git@{UPSTREAM_HOST}:app.git", "lib": f"https://{UPSTREAM_HOST}/lib.git"}
        repos = [GateRepo(name, url) for name, url in cls.repo_urls.items()]
        repos.append(GateRepo("pinned", f"git@{PINNED_HOST}:app.git"))
        repos += [GateRepo("rogue", ROGUE_URL), GateRepo("wrongname", WRONG_NAME_URL)]
        configure_git(cls.bottle, repos, scenarios.USER, f"http://{GATE_HOST}:{GATE_PORT}")

    # -- setup pieces ---------------------------------------------------------------------------
    @classmethod
    def _make(cls, args: list[str], remove) -> str:
        ref = docker(*args).stdout.strip()
        cls.addClassCleanup(remove, ref)
        return ref

    @classmethod
    def _container(cls, verb: str, *args: str) -> str:
        return cls._make([verb, "--label", cls.label, *args], lambda ref: docker("rm", "-f", "-v", ref, check=False))

    @classmethod
    def _gate_image(cls) -> str:
        """The sidecar image; with ssh added in a throwaway image when the sidecar has none yet."""
        sidecar = images.ensure_image(images.sidecar_image())
        probe = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", sidecar, "-c", "command -v ssh", check=False)
        if probe.returncode == 0:
            return sidecar
        context = cls.tmp / "gate-image"
        context.mkdir()
        (context / "Dockerfile").write_text(
            f"FROM {sidecar}\nRUN apt-get update && apt-get install -y --no-install-recommends openssh-client"
            " && rm -rf /var/lib/apt/lists/*\n"
        )
        ref = f"bot-bottle-test/gate-ssh:{secrets.token_hex(6)}"
        _build(ref, context, {})
        image_id = docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
        cls.addClassCleanup(lambda: docker("rmi", "-f", image_id, check=False))
        return ref

    @classmethod
    def _start_upstream(cls, image: str) -> str:
        cid = cls._container("create", "--network", cls.network, "--network-alias", UPSTREAM_HOST,
                             "--network-alias", PINNED_HOST, *FAST_DNS, image)
        token_file = cls.tmp / "token"
        token_file.write_text(cls.token + "\n")
        token_file.chmod(0o600)
        docker("cp", str(token_file), f"{cid}:/srv/token")
        cls.ca = install_upstream_tls(cid, cls.tmp)
        docker("start", cid)
        cls._wait_upstream(cid)
        return cid

    @classmethod
    def _wait_upstream(cls, cid: str) -> None:
        _wait_for(lambda: docker("exec", cid, "test", "-e", "/srv/log/ready", check=False).returncode == 0, "the upstream")

    @classmethod
    def _start_gate(cls, image: str) -> str:
        host_key = docker("exec", cls.upstream, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        client_key = docker("exec", cls.upstream, "cat", "/srv/client/id_ed25519").stdout
        cls.key_line = client_key.splitlines()[1]  # a line of the private key: searched for in the agent
        key_path = cls.tmp / "app_key"
        key_path.write_text(client_key)
        key_path.chmod(0o600)
        # A well-formed key that is not the server's: pinning must refuse it.
        wrong_key = docker("exec", cls.upstream, "cat", "/srv/client/id_ed25519.pub").stdout.split()
        files = gate_files(
            [
                GateRepo("app", f"git@{UPSTREAM_HOST}:app.git", ssh_key=str(key_path), known_hosts=" ".join(host_key[:2])),
                GateRepo("lib", f"https://{UPSTREAM_HOST}/lib.git", token_ref="BB_TEST_LIB_TOKEN"),
                GateRepo("rogue", ROGUE_URL, token_ref="BB_TEST_LIB_TOKEN"),
                GateRepo("wrongname", WRONG_NAME_URL, token_ref="BB_TEST_LIB_TOKEN"),
                GateRepo("pinned", f"git@{PINNED_HOST}:app.git", ssh_key=str(key_path), known_hosts=" ".join(wrong_key[:2])),
            ],
            scenarios.USER,
            environ={"BB_TEST_LIB_TOKEN": cls.token},
            secrets_file=None,
        )
        config_dir = cls.tmp / "sidecar-etc"
        (config_dir / "git-gate").mkdir(parents=True, mode=0o700)
        (config_dir / "git-gate.json").write_text(files.config_json())
        for name, content in files.credentials.items():
            path = config_dir / "git-gate" / name
            path.write_text(content)
            path.chmod(0o600)
        cid = cls._container(
            "create", "--network", cls.network, "--network-alias", GATE_HOST, *FAST_DNS,
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--memory", "512m",
            "--entrypoint", "/opt/mitmproxy/bin/python", image,
            "-m", "bot_bottle.sidecar.git_gate", "--config", files.config_path, "--port", str(GATE_PORT),
            "--listen", "0.0.0.0", "--state-dir", "/var/lib/bottle/git-gate",
        )
        docker("cp", f"{config_dir}/.", f"{cid}:/etc/bot-bottle")
        # Trust the test CA the way the launcher does: appended to the system store before start.
        bundle = cls.tmp / "gate-bundle.crt"
        docker("cp", f"{cid}:{SYSTEM_BUNDLE}", str(bundle))
        bundle.write_text(bundle.read_text() + "\n" + cls.ca.cert.read_text())
        docker("cp", str(bundle), f"{cid}:{SYSTEM_BUNDLE}")
        docker("start", cid)
        _wait_for(lambda: '"ready"' in cls._logs(cid) or cls._state(cid) != "running", "the gate")
        if cls._state(cid) != "running":
            raise AssertionError("the gate exited during start:\n" + cls._logs(cid))
        return cid

    @staticmethod
    def _logs(cid: str) -> str:
        result = docker("logs", cid, check=False)
        return result.stdout + result.stderr

    @staticmethod
    def _state(cid: str) -> str:
        return docker("inspect", "-f", "{{.State.Status}}", cid, check=False).stdout.strip()

    # -- the environment ------------------------------------------------------------------------
    def agent(self, script: str, *, timeout: float = 120) -> scenarios.Run:
        start = time.monotonic()
        result = self.bottle.exec(f"cd ~ && {script}")
        return scenarios.Run(result.returncode, result.stdout, result.stderr, time.monotonic() - start)

    def upstream_refs(self, repo: str) -> dict[str, str]:
        out = docker("exec", "-u", "git", self.upstream, "git", "--git-dir", f"/srv/git/{repo}.git", "for-each-ref",
                     "--format=%(refname) %(objectname)").stdout
        return dict(line.split(" ", 1) for line in out.splitlines())  # type: ignore[misc]

    def access_log(self) -> list[dict]:
        return scenarios.parse_access_log(docker("exec", self.upstream, "cat", "/srv/log/access.log").stdout)

    def gate_log(self) -> str:
        return self._logs(self.gate)

    def stop_upstream(self) -> None:
        docker("stop", "-t", "2", self.upstream)

    def start_upstream(self) -> None:
        docker("start", self.upstream)
        self._wait_upstream(self.upstream)

    def hang_upstream(self, hung: bool) -> None:
        # Frozen processes, live network stack: connections open, nothing answers.
        docker("pause" if hung else "unpause", self.upstream)

    def credential_values(self) -> list[str]:
        return [self.token, self.key_line]

    # -- only here ------------------------------------------------------------------------------
    def test_both_protocols_reached_the_upstream_with_the_gates_credentials(self) -> None:
        self.clone("app", "proto-app")
        self.clone("lib", "proto-lib")
        log = self.access_log()
        self.assertTrue(any(e["proto"] == "ssh" and "app.git" in e["command"] for e in log), log)
        self.assertTrue(any(e["proto"] == "http" and e["path"].startswith("/lib.git") and e["token"] == "ok"
                            and e["tls"] for e in log), log)
        self.assertFalse(any(e["proto"] == "http" and e["token"] != "ok" for e in log), log)
        self.assertFalse(any(e["proto"] == "http" and not e["tls"] for e in log), "the gate used plain HTTP")

    def test_an_untrusted_or_misnamed_certificate_is_refused(self) -> None:
        for repo, url in (("rogue", ROGUE_URL), ("wrongname", WRONG_NAME_URL)):
            with self.subTest(repo=repo):
                before = len(self.access_log())
                run = self.agent(f"rm -rf {repo} && git clone {url} {repo}")
                self.assertNotEqual(run.returncode, 0, run.output)
                self.assertIn(f"fatal: remote error: upstream {repo} unreachable", run.stderr)
                self.assertIn("TLS certificate is not trusted", run.stderr)
                self.assertLess(run.seconds, scenarios.FAIL_FAST_SECONDS, run.output)
                # The handshake failed, so no request (and no token) ever reached the server.
                self.assertEqual(len(self.access_log()), before)
                run = self.agent(f"cd ~ && rm -rf {repo}-push && git init -q {repo}-push && cd {repo}-push && "
                                 f"git commit -q --allow-empty -m x && git push {url} HEAD:refs/heads/x")
                self.assertNotEqual(run.returncode, 0, run.output)
                self.assertEqual(len(self.access_log()), before)

    def test_an_unknown_host_key_is_refused(self) -> None:
        before = len(self.access_log())
        run = self.agent(f"rm -rf pinned && git clone git@{PINNED_HOST}:app.git pinned")
        self.assertNotEqual(run.returncode, 0, run.output)
        self.assertIn("fatal: remote error: upstream pinned unreachable", run.stderr)
        self.assertIn("Host key verification failed", run.stderr)
        self.assertEqual(len(self.access_log()), before)  # ssh stopped before any command ran

    def test_the_agent_cannot_find_the_upstream_credentials(self) -> None:
        self.clone("app", "cred-app")
        self.clone("lib", "cred-lib")
        found_in_agent = self._search(self.client, "root") + self._search(self.client, "node")
        self.assertEqual(found_in_agent, [])
        # The same search finds them where they belong, so it is not blind.
        found_in_gate = self._search(self.gate, "root")
        self.assertIn("/etc/bot-bottle/git-gate/lib.token", found_in_gate)
        self.assertIn("/etc/bot-bottle/git-gate/app.key", found_in_gate)
        modes = docker("exec", self.gate, "stat", "-c", "%a %n", "/etc/bot-bottle/git-gate/app.key",
                       "/etc/bot-bottle/git-gate/lib.token").stdout.splitlines()
        self.assertEqual([line.split()[0] for line in modes], ["600", "600"], modes)

    # Every file this user can read, every process environment it can read, and its git config.
    # The values come in on stdin and stay in a shell variable: never an argv, never a file.
    _SEARCH = r"""
pats=$(cat)
printf '%s\n' "$pats" | grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -f - /
for p in /proc/[0-9]*; do tr '\0' '\n' < "$p/environ" 2>/dev/null; done > "$HOME/.env-dump" 2>/dev/null || true
printf '%s\n' "$pats" | grep -qF -f - "$HOME/.env-dump" 2>/dev/null && echo "(a process environment)"
rm -f "$HOME/.env-dump"
git config --global --list 2>/dev/null > "$HOME/.cfg-dump" || true
printf '%s\n' "$pats" | grep -qF -f - "$HOME/.cfg-dump" 2>/dev/null && echo "(git config)"
rm -f "$HOME/.cfg-dump"
true
"""

    def _search(self, container: str, user: str) -> list[str]:
        patterns = "\n".join(self.credential_values()) + "\n"
        out = docker("exec", "-i", "-u", user, container, "sh", "-c", self._SEARCH, input=patterns, timeout=300).stdout
        return [line for line in out.splitlines() if line.strip()]

    def test_zzz_nothing_is_left_behind(self) -> None:
        # Runs after the others; the class cleanups remove what the label names (checked in
        # tearDownClass below, where the cleanups have run).
        self.assertFalse(_docker.resource_snapshot(label=self.label).new_since(self.before).is_empty())

    @classmethod
    def tearDownClass(cls) -> None:
        cls.doClassCleanups()
        leaked = _docker.resource_snapshot(label=cls.label).new_since(cls.before)
        if not leaked.is_empty():
            raise AssertionError(f"left behind: {leaked}")


if __name__ == "__main__":
    unittest.main()
