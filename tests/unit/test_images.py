"""Image specs: tags are a pure, stable hash of every input; builds go through one path.

The spec tests run against a copy of ``images/`` and of the sidecar source in a temporary folder,
so each input can be changed and the effect on every tag observed. The build tests use a fake
``docker`` executable; nothing here needs Docker or the network.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

from bot_bottle import images, interrupts
from bot_bottle.errors import BotBottleError

REPO = Path(__file__).resolve().parents[2]


class _Sandbox(unittest.TestCase):
    """Point bot_bottle.images at private copies of its inputs."""

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.root = Path(tmp.name)
        self.images_dir = self.root / "images"
        shutil.copytree(REPO / "images", self.images_dir)
        self.sidecar_dir = self.root / "sidecar"
        shutil.copytree(REPO / "bot_bottle" / "sidecar", self.sidecar_dir, ignore=shutil.ignore_patterns("__pycache__"))
        self.ca_dir = self.root / "ca"  # absent until a test creates it
        for name, value in (("IMAGES_DIR", self.images_dir), ("SIDECAR_SOURCE_DIR", self.sidecar_dir),
                            ("HOST_CA_DIR", self.ca_dir)):
            patcher = mock.patch.object(images, name, value)
            patcher.start()
            self.addCleanup(patcher.stop)

    def tags(self) -> dict[str, str]:
        return {
            "claude": images.agent_image("claude").tag,
            "codex": images.agent_image("codex").tag,
            "sidecar": images.sidecar_image().tag,
        }

    def edit_versions(self, old: str, new: str) -> None:
        path = self.images_dir / "versions.toml"
        text = path.read_text()
        self.assertIn(old, text)
        path.write_text(text.replace(old, new, 1))

    def assertChanged(self, before: dict[str, str], *which: str) -> None:
        after = self.tags()
        for key in before:
            if key in which:
                self.assertNotEqual(before[key], after[key], f"{key} tag should change")
            else:
                self.assertEqual(before[key], after[key], f"{key} tag should not change")


class SpecShapeTest(_Sandbox):
    def test_names_tags_refs_and_labels(self) -> None:
        claude = images.agent_image("claude")
        self.assertEqual(claude.name, "bot-bottle/agent-claude")
        self.assertRegex(claude.tag, r"^[0-9a-f]{12}$")
        self.assertEqual(claude.ref, f"bot-bottle/agent-claude:{claude.tag}")
        self.assertEqual(claude.dockerfile, self.images_dir / "agent" / "Dockerfile")
        self.assertEqual(claude.labels[images.LABEL_IMAGE], "agent")
        self.assertEqual(claude.labels[images.LABEL_TEMPLATE], "claude")
        self.assertTrue(claude.inputs_digest.startswith(claude.tag))
        self.assertEqual(claude.npm_package, images.NpmPackage("@anthropic-ai/claude-code-linux-x64", "2.1.330"))
        self.assertIn(("AGENT_BINARY", "package/claude"), claude.build_args)
        self.assertIn(("AGENT_COMMAND", "claude"), claude.build_args)

        codex = images.agent_image("codex")
        self.assertEqual(codex.name, "bot-bottle/agent-codex")
        self.assertEqual(codex.npm_package, images.NpmPackage("@openai/codex", "0.169.0-linux-x64"))
        self.assertIn(("AGENT_BINARY", "package/vendor/x86_64-unknown-linux-musl/bin/codex"), codex.build_args)

        sidecar = images.sidecar_image()
        self.assertEqual(sidecar.name, "bot-bottle/sidecar")
        self.assertEqual(sidecar.labels[images.LABEL_IMAGE], "sidecar")
        self.assertNotIn(images.LABEL_TEMPLATE, sidecar.labels)
        self.assertIn("mitmproxy==11.0.2", sidecar.wheels.requirements)
        rels = [rel for rel, _ in sidecar.context_files]
        self.assertIn("app/bot_bottle/sidecar/init.py", rels)
        self.assertIn("app/bot_bottle/sidecar/egress/core.py", rels)
        generated = dict(sidecar.generated_files)
        self.assertIn("app/bot_bottle/__init__.py", generated)
        self.assertIn(b"mitmproxy==11.0.2", generated["requirements.txt"])

    def test_templates(self) -> None:
        self.assertEqual(images.templates(), ("claude", "codex", "pi"))

    def test_npm_tarball_names_follow_npm_pack(self) -> None:
        self.assertEqual(
            images.NpmPackage("@anthropic-ai/claude-code-linux-x64", "2.1.330").tarball_name,
            "anthropic-ai-claude-code-linux-x64-2.1.330.tgz",
        )
        self.assertEqual(images.NpmPackage("@openai/codex", "0.169.0-linux-x64").tarball_name,
                         "openai-codex-0.169.0-linux-x64.tgz")
        self.assertEqual(images.NpmPackage("plain", "1.0.0").spec, "plain@1.0.0")

    def test_unknown_template(self) -> None:
        with self.assertRaisesRegex(BotBottleError, "no agent image for provider template 'nope'") as caught:
            images.agent_image("nope")
        self.assertIn("claude", str(caught.exception))
        self.assertIsNotNone(caught.exception.hint)

    def test_missing_versions_file(self) -> None:
        (self.images_dir / "versions.toml").unlink()
        with self.assertRaisesRegex(BotBottleError, "versions.toml is missing"):
            images.sidecar_image()

    def test_broken_versions_file(self) -> None:
        (self.images_dir / "versions.toml").write_text("[agents\n")
        with self.assertRaisesRegex(BotBottleError, "versions.toml"):
            images.agent_image("claude")

    def test_lock_must_contain_the_mitmproxy_pin(self) -> None:
        self.edit_versions('mitmproxy = "11.0.2"', 'mitmproxy = "11.0.3"')
        with self.assertRaisesRegex(BotBottleError, "lock does not contain mitmproxy==11.0.3"):
            images.sidecar_image()


class TagStabilityTest(_Sandbox):
    def test_stable_across_calls(self) -> None:
        self.assertEqual(self.tags(), self.tags())
        self.assertEqual(images.agent_image("claude"), images.agent_image("claude"))

    def test_tags_differ_between_images(self) -> None:
        self.assertEqual(len(set(self.tags().values())), 3)

    def test_copy_elsewhere_gives_same_tags(self) -> None:
        # Tags hash contents, not locations: the same checkout in another folder agrees.
        before = self.tags()
        moved = self.root / "moved"
        shutil.move(str(self.images_dir), moved)
        with mock.patch.object(images, "IMAGES_DIR", moved):
            self.assertEqual(before, self.tags())

    def test_caches_and_bytecode_do_not_count(self) -> None:
        before = self.tags()
        cache = self.sidecar_dir / "egress" / "__pycache__"
        cache.mkdir()
        (cache / "core.cpython-311.pyc").write_bytes(b"junk")
        (self.sidecar_dir / "stray.pyc").write_bytes(b"junk")
        self.assertChanged(before)

    def test_mtime_alone_does_not_count(self) -> None:
        before = self.tags()
        later = time.time() + 100
        os.utime(self.images_dir / "agent" / "Dockerfile", (later, later))
        os.utime(self.sidecar_dir / "init.py", (later, later))
        self.assertChanged(before)


class TagChangesTest(_Sandbox):
    def test_agent_dockerfile(self) -> None:
        before = self.tags()
        with (self.images_dir / "agent" / "Dockerfile").open("a") as fh:
            fh.write("# edit\n")
        self.assertChanged(before, "claude", "codex")

    def test_agent_context_file(self) -> None:
        before = self.tags()
        (self.images_dir / "agent" / "entry.sh").write_text("#!/bin/sh\n")
        self.assertChanged(before, "claude", "codex")

    def test_sidecar_dockerfile(self) -> None:
        before = self.tags()
        with (self.images_dir / "sidecar" / "Dockerfile").open("a") as fh:
            fh.write("# edit\n")
        self.assertChanged(before, "sidecar")

    def test_sidecar_source(self) -> None:
        before = self.tags()
        with (self.sidecar_dir / "egress" / "core.py").open("a") as fh:
            fh.write("# edit\n")
        self.assertChanged(before, "sidecar")

    def test_new_sidecar_module(self) -> None:
        before = self.tags()
        (self.sidecar_dir / "brand_new_module").mkdir()
        (self.sidecar_dir / "brand_new_module" / "__init__.py").write_text("")
        self.assertChanged(before, "sidecar")

    def test_claude_pin(self) -> None:
        before = self.tags()
        self.edit_versions('version = "2.1.330"', 'version = "2.1.331"')
        self.assertChanged(before, "claude")

    def test_codex_pin(self) -> None:
        before = self.tags()
        self.edit_versions('version = "0.169.0-linux-x64"', 'version = "0.170.0-linux-x64"')
        self.assertChanged(before, "codex")

    def test_agent_binary_path(self) -> None:
        before = self.tags()
        self.edit_versions('binary = "package/claude"', 'binary = "package/bin/claude"')
        self.assertChanged(before, "claude")

    def test_sidecar_lock(self) -> None:
        before = self.tags()
        self.edit_versions('"h11==0.14.0"', '"h11==0.14.1"')
        self.assertChanged(before, "sidecar")

    def test_sidecar_platforms(self) -> None:
        before = self.tags()
        self.edit_versions('"manylinux1_x86_64",', '')
        self.assertChanged(before, "sidecar")

    def test_base_image(self) -> None:
        before = self.tags()
        self.edit_versions('image = "debian:bookworm-slim"', 'image = "debian:bookworm"')
        self.assertChanged(before, "claude", "codex", "sidecar")
        self.assertIn(("BASE_IMAGE", "debian:bookworm"), images.agent_image("claude").build_args)

    def test_comment_in_versions_file_changes_nothing(self) -> None:
        before = self.tags()
        with (self.images_dir / "versions.toml").open("a") as fh:
            fh.write("\n# a comment\n")
        self.assertChanged(before)

    def test_host_ca_files_when_present(self) -> None:
        before = self.tags()
        self.ca_dir.mkdir()
        self.assertChanged(before)  # an empty folder is no input
        (self.ca_dir / "corp.crt").write_text("-----BEGIN CERTIFICATE-----\nA\n")
        with_ca = self.tags()
        self.assertChanged(before, "claude", "codex", "sidecar")
        (self.ca_dir / "corp.crt").write_text("-----BEGIN CERTIFICATE-----\nB\n")
        self.assertChanged(with_ca, "claude", "codex", "sidecar")
        changed = self.tags()
        (self.ca_dir / "notes.txt").write_text("not a certificate")
        self.assertChanged(changed)  # only *.crt files are CA inputs
        rels = [rel for rel, _ in images.sidecar_image().context_files]
        self.assertIn("ca/corp.crt", rels)
        self.assertNotIn("ca/notes.txt", rels)


class CustomDockerfileTest(_Sandbox):
    def setUp(self) -> None:
        super().setUp()
        self.custom_dir = self.root / "custom"
        self.custom_dir.mkdir()
        self.custom = self.custom_dir / "Dockerfile"
        self.custom.write_text("ARG BOT_BOTTLE_AGENT_IMAGE\nFROM ${BOT_BOTTLE_AGENT_IMAGE}\nRUN true\n")

    def test_custom_spec_builds_on_the_default(self) -> None:
        default = images.agent_image("claude")
        spec = images.agent_image("claude", self.custom)
        self.assertEqual(spec.name, "bot-bottle/agent-claude-custom")
        self.assertNotEqual(spec.tag, default.tag)
        self.assertEqual(spec.dockerfile, self.custom.resolve())
        self.assertEqual(spec.parent, default)
        self.assertIn(("BOT_BOTTLE_AGENT_IMAGE", default.ref), spec.build_args)
        self.assertEqual(spec.template, "claude")

    def test_custom_tag_follows_its_folder_and_the_default(self) -> None:
        first = images.agent_image("claude", self.custom).tag
        self.assertEqual(first, images.agent_image("claude", self.custom).tag)
        (self.custom_dir / "setup.sh").write_text("echo hi\n")
        second = images.agent_image("claude", self.custom).tag
        self.assertNotEqual(first, second)
        with (self.images_dir / "agent" / "Dockerfile").open("a") as fh:
            fh.write("# edit\n")
        self.assertNotEqual(second, images.agent_image("claude", self.custom).tag)

    def test_a_symlinked_file_reaches_the_context_as_its_content(self) -> None:
        # The built-in Node image shares statx_shim.c with images/agent/ by a symbolic link, and a
        # custom Dockerfile's folder may hold links too: a hard link of the link itself was left
        # dangling in the build context ("COPY failed: file not found").
        (self.root / "shared.sh").write_text("echo shared\n")
        (self.custom_dir / "setup.sh").symlink_to("../shared.sh")
        spec = images.agent_image("claude", self.custom)
        self.assertIn("setup.sh", dict(spec.context_files))
        context = self.root / "context"
        for rel, source in spec.context_files:
            images._place(source, context / rel)
        self.assertFalse((context / "setup.sh").is_symlink())
        self.assertEqual((context / "setup.sh").read_text(), "echo shared\n")

    def test_missing_custom_dockerfile(self) -> None:
        with self.assertRaisesRegex(BotBottleError, "does not exist"):
            images.agent_image("claude", self.root / "nope" / "Dockerfile")

    def test_oversized_context_is_refused(self) -> None:
        with mock.patch.object(images, "_CUSTOM_CONTEXT_MAX_FILES", 3):
            for i in range(5):
                (self.custom_dir / f"f{i}").write_text("x")
            with self.assertRaisesRegex(BotBottleError, "too large"):
                images.agent_image("claude", self.custom)


class PurityTest(_Sandbox):
    def test_specs_run_no_process_and_are_fast(self) -> None:
        boom = mock.Mock(side_effect=AssertionError("a spec must not run a process"))
        with mock.patch.object(subprocess, "run", boom), mock.patch.object(subprocess, "Popen", boom), \
                mock.patch.object(os, "system", boom), mock.patch("socket.socket", boom):
            started = time.perf_counter()
            for _ in range(5):
                self.tags()
                images.agent_image("codex")
            elapsed = time.perf_counter() - started
        self.assertLess(elapsed, 2.0)
        boom.assert_not_called()

    def test_tags_do_not_depend_on_cached_downloads(self) -> None:
        before = self.tags()
        with tempfile.TemporaryDirectory() as cache, mock.patch.dict(os.environ, {"BOT_BOTTLE_CACHE_DIR": cache}):
            npm = Path(cache) / "npm"
            npm.mkdir()
            (npm / "anthropic-ai-claude-code-linux-x64-2.1.330.tgz").write_bytes(b"tarball")
            self.assertEqual(before, self.tags())


_FAKE_DOCKER = """\
#!/bin/sh
# Records how it was called; "image inspect" says "no such image"; "build" prints steps.
printf '%s\\n' "$@" > "$FAKE_DOCKER_DIR/argv.$1"
echo "BUILDKIT=${DOCKER_BUILDKIT-unset}" > "$FAKE_DOCKER_DIR/env.$1"
case "$1" in
  image) exit 1 ;;
  build)
    ls -R "$(eval echo \\${$#})" > "$FAKE_DOCKER_DIR/context.txt"
    i=1; while [ $i -le 30 ]; do echo "Step $i/30 : RUN something $i"; i=$((i+1)); done
    if [ -n "$FAKE_DOCKER_KILL" ]; then exec "$FAKE_PYTHON" -c "$DIE_OF_SIGNAL" "$FAKE_DOCKER_KILL"; fi
    if [ -n "$FAKE_DOCKER_FAIL" ]; then echo "$FAKE_DOCKER_FAIL"; exit "${FAKE_DOCKER_CODE:-1}"; fi
    echo "Successfully tagged x" ;;
esac
"""


# Die of the signal named in argv[1], whatever this test run left ignored (a shell cannot undo that).
_DIE_OF_SIGNAL = """\
import os, signal, sys
signum = getattr(signal, "SIG" + sys.argv[1])
signal.signal(signum, signal.SIG_DFL)
os.kill(os.getpid(), signum)
"""


class BuildPathTest(_Sandbox):
    def setUp(self) -> None:
        super().setUp()
        self.fake_dir = self.root / "fake"
        self.fake_dir.mkdir()
        docker = self.fake_dir / "docker"
        docker.write_text(_FAKE_DOCKER)
        docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
        cache = self.root / "cache"
        env = mock.patch.dict(os.environ, {"FAKE_DOCKER_DIR": str(self.fake_dir), "BOT_BOTTLE_CACHE_DIR": str(cache),
                                           "FAKE_PYTHON": sys.executable, "DIE_OF_SIGNAL": _DIE_OF_SIGNAL})
        env.start()
        self.addCleanup(env.stop)
        which = mock.patch("bot_bottle.backend.docker.engine.docker_binary", return_value=str(docker))
        which.start()
        self.addCleanup(which.stop)
        tarball = self.root / "agent.tgz"
        tarball.write_bytes(b"not really a tarball")
        npm = mock.patch.object(images, "npm_tarball", return_value=tarball)
        npm.start()
        self.addCleanup(npm.stop)
        wheels = self.root / "wheels"
        wheels.mkdir()
        (wheels / "mitmproxy-11.0.2-py3-none-any.whl").write_bytes(b"wheel")
        wh = mock.patch.object(images, "wheelhouse", return_value=wheels)
        wh.start()
        self.addCleanup(wh.stop)

    def console(self):
        import io

        from rich.console import Console

        return Console(file=io.StringIO(), force_terminal=False)

    def test_existing_image_is_not_rebuilt(self) -> None:
        spec = images.agent_image("claude")
        with mock.patch.object(images, "image_exists", return_value=True), \
                mock.patch.object(images, "_docker_build") as build:
            self.assertEqual(images.ensure_image(spec, console=self.console()), spec.ref)
        build.assert_not_called()

    def test_build_uses_classic_builder_labels_and_a_full_context(self) -> None:
        spec = images.agent_image("claude")
        self.assertEqual(images.ensure_image(spec, console=self.console()), spec.ref)
        argv = (self.fake_dir / "argv.build").read_text().splitlines()
        self.assertEqual(argv[0], "build")
        self.assertIn(spec.ref, argv)
        self.assertIn(f"{images.LABEL_IMAGE}=agent", argv)
        self.assertIn(f"{images.LABEL_TEMPLATE}=claude", argv)
        self.assertIn("AGENT_BINARY=package/claude", argv)
        self.assertEqual((self.fake_dir / "env.build").read_text().strip(), "BUILDKIT=0")
        context = (self.fake_dir / "context.txt").read_text()
        for name in ("agent.tgz", "Dockerfile.bot-bottle", "ca"):
            self.assertIn(name, context)

    def test_a_build_says_so_where_no_status_line_is_drawn(self) -> None:
        spec = images.agent_image("claude")
        console = self.console()
        images.ensure_image(spec, console=console)
        shown = console.file.getvalue()
        self.assertIn(f"Building {spec.ref} (a first build can take minutes)", shown)
        self.assertLess(shown.index("Building"), shown.index("Built"))

    def test_sidecar_context_has_wheels_and_source(self) -> None:
        spec = images.sidecar_image()
        images.ensure_image(spec, console=self.console())
        context = (self.fake_dir / "context.txt").read_text()
        for name in ("mitmproxy-11.0.2-py3-none-any.whl", "requirements.txt", "init.py", "core.py", "addon.py"):
            self.assertIn(name, context)
        self.assertIn(f"{images.LABEL_IMAGE}=sidecar", (self.fake_dir / "argv.build").read_text())

    def test_failure_shows_last_lines_and_a_hint(self) -> None:
        spec = images.agent_image("codex")
        with mock.patch.dict(os.environ, {"FAKE_DOCKER_FAIL": "E: Unable to locate package nonsense"}):
            with self.assertRaises(BotBottleError) as caught:
                images.ensure_image(spec, console=self.console())
        message = str(caught.exception)
        self.assertIn(f"building {spec.ref} failed", message)
        self.assertIn("Unable to locate package nonsense", message)
        self.assertIn("Step 30/30", message)
        self.assertNotIn("Step 5/30", message)  # only the tail
        self.assertIn("full log:", caught.exception.hint)
        log = re.search(r"full log: (\S+);", caught.exception.hint).group(1)
        self.assertIn("Step 1/30", Path(log).read_text())

    def test_an_interrupted_build_is_an_interruption_not_a_failure(self) -> None:
        # What the docker CLI does on SIGINT or SIGTERM: it exits 128 + the signal, or dies of it.
        spec = images.agent_image("claude")
        cases = [({"FAKE_DOCKER_FAIL": " ---> Running in 91922cacd39d", "FAKE_DOCKER_CODE": "130"}, signal.SIGINT),
                 ({"FAKE_DOCKER_FAIL": " ---> Running in 91922cacd39d", "FAKE_DOCKER_CODE": "143"}, signal.SIGTERM),
                 ({"FAKE_DOCKER_KILL": "INT"}, signal.SIGINT),
                 ({"FAKE_DOCKER_KILL": "TERM"}, signal.SIGTERM)]
        for env, signum in cases:
            with self.subTest(env=env), mock.patch.dict(os.environ, env):
                with self.assertRaises(KeyboardInterrupt) as caught:
                    images.ensure_image(spec, console=self.console())
                if signum == signal.SIGTERM:
                    self.assertIsInstance(caught.exception, interrupts.Terminated)
                    self.assertEqual(caught.exception.exit_code, 143)
                else:
                    self.assertNotIsInstance(caught.exception, interrupts.Terminated)

    def test_a_build_step_that_itself_exits_130_is_a_failure(self) -> None:
        # The classic builder exits with a failed RUN step's own status.
        spec = images.agent_image("claude")
        env = {"FAKE_DOCKER_FAIL": "The command '/bin/sh -c exit 130' returned a non-zero code: 130",
               "FAKE_DOCKER_CODE": "130"}
        with mock.patch.dict(os.environ, env), self.assertRaises(BotBottleError) as caught:
            images.ensure_image(spec, console=self.console())
        self.assertIn("docker build exited 130", str(caught.exception))

    def test_missing_base_image_hint(self) -> None:
        spec = images.agent_image("claude")
        failure = "pull access denied for debian, repository does not exist or may require 'docker login'"
        with mock.patch.dict(os.environ, {"FAKE_DOCKER_FAIL": failure}):
            with self.assertRaises(BotBottleError) as caught:
                images.ensure_image(spec, console=self.console())
        self.assertIn("debian:bookworm-slim", caught.exception.hint)
        self.assertIn("scripts/setup", caught.exception.hint)

    def test_custom_dockerfile_builds_parent_first(self) -> None:
        custom_dir = self.root / "custom"
        custom_dir.mkdir()
        (custom_dir / "Dockerfile").write_text("FROM scratch\n")
        (custom_dir / "Dockerfile.bot-bottle").write_text("user file with our reserved name\n")
        spec = images.agent_image("claude", custom_dir / "Dockerfile")
        built: list[str] = []
        real = images._docker_build

        def record(s, context, progress):
            built.append(s.ref)
            self.assertEqual((context / "Dockerfile.bot-bottle").read_text(), s.dockerfile.read_text())
            real(s, context, progress)

        with mock.patch.object(images, "_docker_build", side_effect=record):
            images.ensure_image(spec, console=self.console())
        self.assertEqual(built, [spec.parent.ref, spec.ref])


class NpmPackParsingTest(unittest.TestCase):
    def test_filename_from_npm_json(self) -> None:
        out = json.dumps([{"filename": "openai-codex-0.169.0-linux-x64.tgz", "integrity": "sha512-x"}])
        self.assertEqual(images._npm_pack_filename(out), "openai-codex-0.169.0-linux-x64.tgz")
        self.assertIsNone(images._npm_pack_filename("npm notice garbage"))
        self.assertIsNone(images._npm_pack_filename("[]"))


if __name__ == "__main__":
    unittest.main()
