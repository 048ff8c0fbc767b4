"""The smolmachines image pipeline: order of steps, cache behaviour, committed snapshots."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from bot_bottle import images
from bot_bottle.backend.smolmachines import launch, local_registry, smolvm
from bot_bottle.errors import BotBottleError
from bot_bottle.state import Metadata, StateDir
from tests.unit.test_smolmachines_fakehost import V08, V1, FakeHost, bottle_plan

IMAGE = "bot-bottle/agent-claude:0123456789ab"
DIGEST = hashlib.sha256(IMAGE.encode()).hexdigest()[:16]  # what the fake engine reports as the id


class EventHost(FakeHost):
    """The fake host, also logging each docker/smolvm subcommand into a shared event list."""

    def __init__(self, events: list[tuple[str, ...]]) -> None:
        super().__init__()
        self.events = events

    def __call__(self, argv: list[str], **kwargs: Any) -> Any:
        argv = [str(a) for a in argv]
        if Path(argv[0]).name == "docker":
            self.events.append(("docker", argv[1] if argv[1] != "image" else f"image {argv[2]}"))
        elif argv[0].endswith("smolvm"):
            self.events.append(("smolvm", *argv[1:3], *argv[argv.index("--image") + 1:argv.index("--image") + 2]))
        return super().__call__(argv, **kwargs)


class PipelineCase(unittest.TestCase):
    cli = V1

    def setUp(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.fake = EventHost(self.events)
        stack = contextlib.ExitStack()
        self.addCleanup(stack.close)
        stack.enter_context(self.fake.installed(self.cli))
        self.cache = Path(launch._SMOLMACHINE_CACHE_DIR)
        stack.enter_context(mock.patch.object(launch, "_build_image", side_effect=self._build))
        stack.enter_context(mock.patch.object(local_registry, "ephemeral_registry", self._registry))
        stack.enter_context(mock.patch.object(local_registry, "crane_push_tarball", side_effect=self._push))
        stack.enter_context(mock.patch.dict(os.environ))
        os.environ.pop(launch.VIA_REGISTRY_ENV, None)

    def _build(self, image: str, dockerfile: Path | None, template: str | None) -> str:
        self.events.append(("build", image, str(dockerfile)))
        return image

    @contextlib.contextmanager
    def _registry(self) -> Iterator[local_registry.RegistryHandle]:
        self.events.append(("registry", "up"))
        try:
            yield local_registry.RegistryHandle("bot-bottle-registry-x-net", "172.20.0.2:5000", "127.0.0.1:55001")
        finally:
            self.events.append(("registry", "down"))

    def _push(self, tarball: Path, ref: str, *, network: str) -> None:
        self.assertTrue(Path(tarball).is_file(), "the tarball exists when it is pushed")
        self.events.append(("push", str(tarball), ref, network))


class CacheHit(PipelineCase):
    def test_hit_builds_reads_the_id_and_returns_at_once(self) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        cached = self.cache / f"{DIGEST}.smolmachine.smolmachine"
        cached.write_bytes(b"pack")
        path = launch._ensure_smolmachine(IMAGE)
        self.assertEqual(path, cached)
        self.assertEqual(self.events, [("build", IMAGE, "None"), ("docker", "image inspect")])
        self.assertEqual(self.fake.smolvm_calls(), [])

    def test_the_image_is_rebuilt_on_every_call(self) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        (self.cache / f"{DIGEST}.smolmachine.smolmachine").write_bytes(b"pack")
        for _ in range(3):
            launch._ensure_smolmachine(IMAGE, Path("/src/Dockerfile"))
        self.assertEqual([e for e in self.events if e[0] == "build"], [("build", IMAGE, "/src/Dockerfile")] * 3)


class MissThroughRegistry(PipelineCase):
    cli = V08  # packs only what it pulls from a registry

    def test_order_save_push_pack_and_cleanup(self) -> None:
        path = launch._ensure_smolmachine(IMAGE)
        archive = str(self.cache / f"{DIGEST}.image.tar")
        pull_ref = f"127.0.0.1:55001/bot-bottle:{DIGEST}"
        self.assertEqual(self.events, [
            ("build", IMAGE, "None"),
            ("docker", "image inspect"),
            ("docker", "save"),
            ("registry", "up"),
            ("push", archive, f"172.20.0.2:5000/bot-bottle:{DIGEST}", "bot-bottle-registry-x-net"),
            ("smolvm", "pack", "create", pull_ref),
            ("registry", "down"),
        ])
        save = next(c for c in self.fake.docker_calls() if c[0] == "save")
        self.assertEqual(save, ["save", "-o", archive, IMAGE])
        pack = self.fake.smolvm_calls()[0]
        self.assertEqual(pack, ["pack", "create", "--image", pull_ref, "-o", str(self.cache / f"{DIGEST}.smolmachine")])
        self.assertEqual(path, self.cache / f"{DIGEST}.smolmachine.smolmachine")
        self.assertTrue(path.is_file())
        self.assertFalse(Path(archive).exists(), "the saved archive is not kept")
        self.assertFalse((self.cache / f"{DIGEST}.smolmachine").exists(), "the launcher stub is not kept")

    def test_second_call_is_a_hit(self) -> None:
        launch._ensure_smolmachine(IMAGE)
        self.events.clear()
        launch._ensure_smolmachine(IMAGE)
        self.assertEqual(self.events, [("build", IMAGE, "None"), ("docker", "image inspect")])

    def test_a_failed_pack_caches_nothing_and_removes_the_archive(self) -> None:
        self.fake.fail_when(lambda argv: "pack" in argv, 1, "Error: pull failed")
        with self.assertRaises(smolvm.SmolvmError):
            launch._ensure_smolmachine(IMAGE)
        self.assertIn(("registry", "down"), self.events)
        self.assertEqual([p.name for p in self.cache.iterdir() if not p.name.endswith(".lock")], [])


class MissDirectArchive(PipelineCase):
    cli = V1  # reads docker-save archives itself

    def test_pack_from_the_archive_without_a_registry(self) -> None:
        path = launch._ensure_smolmachine(IMAGE)
        archive = str(self.cache / f"{DIGEST}.image.tar")
        self.assertEqual(self.events, [
            ("build", IMAGE, "None"),
            ("docker", "image inspect"),
            ("docker", "save"),
            ("smolvm", "pack", "create", archive),
        ])
        self.assertEqual(path, self.cache / f"{DIGEST}.smolmachine.smolmachine")

    def test_the_registry_path_can_be_forced(self) -> None:
        os.environ[launch.VIA_REGISTRY_ENV] = "1"
        launch._ensure_smolmachine(IMAGE)
        self.assertIn(("registry", "up"), self.events)
        self.events.clear()
        (self.cache / f"{DIGEST}.smolmachine.smolmachine").unlink()
        launch._ensure_smolmachine(IMAGE, via_registry=False)
        self.assertNotIn(("registry", "up"), self.events)


class CommittedSnapshots(PipelineCase):
    def state(self, snapshot: str | None) -> StateDir:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        state = StateDir(Path(tmp.name), "abcdef12")
        state.create()
        state.write(Metadata(id="abcdef12", agent="coder", bottle="dev", backend="smolmachines", snapshot=snapshot))
        return state

    def test_an_existing_committed_pack_is_preferred(self) -> None:
        plan, _ = bottle_plan(self, "smolmachines")
        state = self.state(None)
        committed = state.path / "snapshot.smolmachine"
        committed.write_bytes(b"pack")
        meta = state.read()
        meta.snapshot = str(committed)
        state.write(meta)
        with mock.patch.object(launch, "_ensure_smolmachine") as ensure:
            self.assertEqual(launch._agent_from_path(plan, state=state), committed)
        ensure.assert_not_called()

    def test_without_one_the_image_pipeline_runs(self) -> None:
        plan, _ = bottle_plan(self, "smolmachines")
        state = self.state("/gone/snapshot.smolmachine")
        with mock.patch.object(launch, "_ensure_smolmachine", return_value=Path("/c/x.smolmachine.smolmachine")) as ensure:
            self.assertEqual(launch._agent_from_path(plan, state=state), Path("/c/x.smolmachine.smolmachine"))
            launch._agent_from_path(plan)
        self.assertEqual(ensure.call_args.args, (plan.agent_image,))
        self.assertEqual(ensure.call_args.kwargs["dockerfile"], plan.agent_dockerfile)

    def test_read_committed_image(self) -> None:
        self.assertEqual(launch.read_committed_image(self.state("/s/snapshot.smolmachine")), Path("/s/snapshot.smolmachine"))
        self.assertIsNone(launch.read_committed_image(self.state("bot-bottle/snapshot:abcdef12")))
        self.assertIsNone(launch.read_committed_image(self.state(None)))
        self.assertIsNone(launch.read_committed_image(StateDir(Path("/nonexistent"), "abcdef12")))


class BuildStep(unittest.TestCase):
    def test_builtin_template_goes_through_the_image_builder(self) -> None:
        with mock.patch("bot_bottle.images.ensure_image", return_value="bot-bottle/agent-claude:x") as ensure:
            self.assertEqual(launch._build_image("ignored:1", None, "claude"), "bot-bottle/agent-claude:x")
        self.assertEqual(ensure.call_args.args[0].template, "claude")

    def test_custom_dockerfile_without_a_template_is_built_with_the_classic_builder(self) -> None:
        fake = FakeHost()
        with fake.installed(), tempfile.TemporaryDirectory() as tmp:
            dockerfile = Path(tmp) / "Dockerfile"
            dockerfile.write_text("FROM scratch\n")
            launch._build_image("mine:1", dockerfile, None)
            launch._build_image("theirs:2", None, None)
        build = fake.docker_calls()[0]
        self.assertEqual(build, ["build", "-t", "mine:1", "-f", str(dockerfile.resolve()), str(dockerfile.resolve().parent)])
        env = fake.calls[0].env
        assert env is not None
        self.assertEqual(env["DOCKER_BUILDKIT"], "0")
        self.assertEqual(fake.docker_calls()[1][:2], ["image", "inspect"])

    def test_a_built_in_image_named_by_its_ref_alone_is_still_built(self) -> None:
        spec = images.agent_image("claude")
        with mock.patch.object(images, "ensure_image", return_value=spec.ref) as ensure:
            self.assertEqual(launch._build_image(spec.ref, None, None), spec.ref)
        self.assertEqual(ensure.call_args.args[0].ref, spec.ref)

    def test_a_bad_image_id_is_an_error(self) -> None:
        fake = FakeHost()
        fake.fail_when(lambda argv: "inspect" in argv, 0, "")
        with fake.installed(), self.assertRaises(BotBottleError):
            launch._image_digest("x:1")


if __name__ == "__main__":
    unittest.main()
