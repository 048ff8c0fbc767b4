"""Every image bot-bottle runs is described and built here.

``agent_image`` and ``sidecar_image`` are pure and fast: they read a few small files and return
an ``ImageSpec`` whose tag is a short hash of every input (Dockerfile, context files, pinned
versions from ``images/versions.toml``, the sidecar's source, the host's extra CA files when they
are used). A dry-run plan can call them freely. ``ensure_image`` is the only function that talks
to Docker or the package registries: it skips the build when the tag exists, otherwise fetches
what the build context needs on the host (``npm pack``, ``pip download``) and builds with the
classic builder, showing progress.

The npm tarballs and wheels are not hashed: the tag hashes their exact pinned versions instead
(published versions are immutable), so the tag is the same before and after they are cached.
The base image's id is not hashed either (reading it needs Docker); the builder records it as
a label on the image instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot_bottle import interrupts
from bot_bottle.proc import die_with_parent
from bot_bottle.errors import BotBottleError

if TYPE_CHECKING:
    from rich.console import Console

# Where things are. Module attributes (not constants baked into functions) so tests can point
# them at temporary folders.
IMAGES_DIR = Path(os.environ.get("BOT_BOTTLE_IMAGES_DIR") or Path(__file__).resolve().parent.parent / "images")
SIDECAR_SOURCE_DIR = Path(__file__).resolve().parent / "sidecar"
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")

LABEL_IMAGE = "bot-bottle.image"
LABEL_TEMPLATE = "bot-bottle.template"
LABEL_INPUTS = "bot-bottle.inputs"
LABEL_BASE = "bot-bottle.base-image"

TAG_LENGTH = 12
_TAG_SCHEMA = 1  # bump when the way images are assembled changes without any input changing
_SKIP_NAMES = {"__pycache__", ".git", ".DS_Store"}
_CUSTOM_CONTEXT_MAX_FILES = 5000
_CUSTOM_CONTEXT_MAX_BYTES = 256 * 1024 * 1024
_LOG_TAIL_LINES = 20
# The Dockerfile goes into the context under a name no user file is likely to have, after the
# context files, so a custom Dockerfile's folder can hold other Dockerfiles without confusion.
_CONTEXT_DOCKERFILE = "Dockerfile.bot-bottle"

# The sidecar image carries only the sidecar package; this stands in for bot_bottle/__init__.py
# so nothing from the host-side package (and its dependencies) is ever imported there.
_SIDECAR_PACKAGE_INIT = b'"""Only the sidecar subpackage is shipped in this image."""\n'


@dataclass(frozen=True)
class NpmPackage:
    """An exactly pinned npm package whose tarball goes into a build context."""

    name: str
    version: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def tarball_name(self) -> str:
        # npm pack's own naming: "@scope/pkg" at "1.2.3" becomes "scope-pkg-1.2.3.tgz".
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}.tgz"


@dataclass(frozen=True)
class PythonWheels:
    """Pinned requirements downloaded as wheels on the host for the image's platform."""

    requirements: tuple[str, ...]
    python_version: str
    platforms: tuple[str, ...]
    source_only: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return _digest_json(
            {"r": self.requirements, "py": self.python_version, "p": self.platforms, "s": self.source_only}
        )[:16]


@dataclass(frozen=True)
class ImageSpec:
    """One image: what it is called, what goes into its build context, and how to build it."""

    name: str
    tag: str
    dockerfile: Path
    kind: str  # "agent" or "sidecar": the value of the bot-bottle.image label
    context_files: tuple[tuple[str, Path], ...] = ()  # (path in the context, source file)
    generated_files: tuple[tuple[str, bytes], ...] = ()  # (path in the context, content)
    build_args: tuple[tuple[str, str], ...] = ()
    npm_package: NpmPackage | None = None  # packed on the host, added to the context as agent.tgz
    # Node-based agents: the package and its dependency closure installed on the host (npm
    # install --omit=dev --ignore-scripts), added as agent.tgz; and Node itself, from the npm
    # platform package that ships its binary, added as node.tgz.
    npm_install: NpmPackage | None = None
    node_package: NpmPackage | None = None
    wheels: PythonWheels | None = None  # downloaded on the host into the context's wheels/
    template: str | None = None
    base_image: str | None = None
    parent: ImageSpec | None = field(default=None, compare=False)  # built first (custom Dockerfiles)
    inputs_digest: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def labels(self) -> dict[str, str]:
        labels = {LABEL_IMAGE: self.kind, LABEL_INPUTS: self.inputs_digest}
        if self.template:
            labels[LABEL_TEMPLATE] = self.template
        return labels


# -- pinned versions ---------------------------------------------------------------------------


def versions_file() -> Path:
    return IMAGES_DIR / "versions.toml"


def load_versions() -> dict[str, Any]:
    path = versions_file()
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise BotBottleError(f"{path} is missing", hint="run bot-bottle from a complete checkout") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BotBottleError(f"{path}: {exc}") from exc


def templates() -> tuple[str, ...]:
    """Provider templates that have a built-in agent image."""
    return tuple(sorted(load_versions().get("agents", {})))


def _base_image(versions: dict[str, Any]) -> str:
    return str(versions.get("base", {}).get("image", "debian:bookworm-slim"))


# -- specs (pure) ------------------------------------------------------------------------------


def agent_image(template: str, dockerfile: Path | None = None, *, base_template: str | None = None) -> ImageSpec:
    """The agent image for ``template``; ``dockerfile`` replaces the default one.

    A custom Dockerfile is built with its own folder as context plus ``agent.tgz`` and ``ca/``,
    and with ``BOT_BOTTLE_AGENT_IMAGE`` naming the default image for the template (built first),
    so it can either start ``FROM`` that image or assemble everything itself.

    ``base_template`` is for plugin providers, which have no pinned agent of their own: the
    default image is that built-in template's, which the plugin's Dockerfile (if any) builds on.
    """
    versions = load_versions()
    agents = versions.get("agents", {})
    if base_template is None and template not in agents:
        from bot_bottle import providers

        plugin = providers.info(template)  # loaded when the plan was resolved
        if plugin is not None and plugin.is_plugin:
            base_template = plugin.base_template
    image_template = base_template or template
    if image_template not in agents:
        known = ", ".join(sorted(agents)) or "none"
        raise BotBottleError(
            f"no agent image for provider template {image_template!r} (built-in images: {known})",
            hint="set agent_provider.dockerfile to build your own image",
        )
    pins = agents[image_template]
    base = _base_image(versions)
    npm = NpmPackage(pins["package"], pins["version"])
    build_args = (
        ("BASE_IMAGE", base),
        ("AGENT_COMMAND", str(pins["command"])),
        ("AGENT_BINARY", str(pins["binary"])),
    )
    ca = _ca_files()
    node = _node_runtime(pins, image_template)
    # Self-contained binaries use images/agent/; agents that run on Node use images/agent-node/.
    default_dockerfile = IMAGES_DIR / ("agent-node" if node else "agent") / "Dockerfile"
    default = _finish(
        name=f"bot-bottle/agent-{image_template}",
        kind="agent",
        dockerfile=default_dockerfile,
        context_files=_folder_files(default_dockerfile.parent) + ca,
        build_args=build_args,
        npm_package=None if node else npm,
        npm_install=npm if node else None,
        node_package=node,
        template=image_template,
        base_image=base,
        pins={"base": base, "agent": pins},
    )
    if dockerfile is None:
        return default
    dockerfile = Path(dockerfile).expanduser().resolve()
    if not dockerfile.is_file():
        raise BotBottleError(f"agent Dockerfile {dockerfile} does not exist")
    context = _folder_files(dockerfile.parent, limit=True)
    return _finish(
        name=f"bot-bottle/agent-{template}-custom",
        kind="agent",
        dockerfile=dockerfile,
        context_files=context + ca,
        build_args=build_args + (("BOT_BOTTLE_AGENT_IMAGE", default.ref),),
        npm_package=default.npm_package,
        npm_install=default.npm_install,
        node_package=default.node_package,
        template=template,
        base_image=base,
        pins={"base": base, "agent": pins, "parent": default.ref},
        parent=default,
    )


def _node_runtime(pins: dict[str, Any], template: str) -> NpmPackage | None:
    """The Node platform package for an agent pinned with ``runtime = "node"``; None otherwise."""
    if pins.get("runtime", "binary") == "binary":
        return None
    if pins.get("runtime") != "node" or not pins.get("node_package") or not pins.get("node_version"):
        raise BotBottleError(
            f"{versions_file()}: [agents.{template}] runtime must be \"binary\" or \"node\" "
            "(with node_package and node_version)"
        )
    return NpmPackage(str(pins["node_package"]), str(pins["node_version"]))


def sidecar_image() -> ImageSpec:
    """The sidecar bundle image: mitmproxy in a venv plus ``bot_bottle/sidecar``."""
    versions = load_versions()
    pins = versions.get("sidecar", {})
    lock = tuple(str(r) for r in pins.get("lock", ()))
    mitm = pins.get("mitmproxy")
    if f"mitmproxy=={mitm}" not in lock:
        raise BotBottleError(
            f"{versions_file()}: [sidecar] lock does not contain mitmproxy=={mitm}",
            hint="regenerate the lock after changing the mitmproxy pin (see the comment above it)",
        )
    base = _base_image(versions)
    wheels = PythonWheels(
        requirements=lock,
        python_version=str(pins.get("python_version", "3.11")),
        platforms=tuple(pins.get("platforms", ())),
        source_only=tuple(pins.get("source_only", ())),
    )
    dockerfile = IMAGES_DIR / "sidecar" / "Dockerfile"
    source = tuple(
        (f"app/bot_bottle/sidecar/{rel}", path) for rel, path in _folder_files(SIDECAR_SOURCE_DIR)
    )
    return _finish(
        name="bot-bottle/sidecar",
        kind="sidecar",
        dockerfile=dockerfile,
        context_files=_folder_files(dockerfile.parent) + source + _ca_files(),
        generated_files=(
            ("app/bot_bottle/__init__.py", _SIDECAR_PACKAGE_INIT),
            ("requirements.txt", ("\n".join(lock) + "\n").encode()),
        ),
        build_args=(("BASE_IMAGE", base),),
        wheels=wheels,
        base_image=base,
        pins={"base": base, "sidecar": pins},
    )


def _finish(
    *,
    name: str,
    kind: str,
    dockerfile: Path,
    context_files: tuple[tuple[str, Path], ...],
    pins: dict[str, Any],
    generated_files: tuple[tuple[str, bytes], ...] = (),
    build_args: tuple[tuple[str, str], ...] = (),
    npm_package: NpmPackage | None = None,
    npm_install: NpmPackage | None = None,
    node_package: NpmPackage | None = None,
    wheels: PythonWheels | None = None,
    template: str | None = None,
    base_image: str | None = None,
    parent: ImageSpec | None = None,
) -> ImageSpec:
    try:
        dockerfile_bytes = dockerfile.read_bytes()
    except OSError as exc:
        raise BotBottleError(f"cannot read {dockerfile}: {exc.strerror or exc}") from exc
    inputs = {
        "schema": _TAG_SCHEMA,
        "name": name,
        "kind": kind,
        "dockerfile": _sha256(dockerfile_bytes),
        "context": {rel: _file_sha256(path) for rel, path in context_files},
        "generated": {rel: _sha256(data) for rel, data in generated_files},
        "build_args": build_args,
        "npm": npm_package.spec if npm_package else None,
        **({"npm_install": npm_install.spec} if npm_install else {}),
        **({"node": node_package.spec} if node_package else {}),
        "pins": pins,
    }
    digest = _digest_json(inputs)
    return ImageSpec(
        name=name,
        tag=digest[:TAG_LENGTH],
        dockerfile=dockerfile,
        kind=kind,
        context_files=context_files,
        generated_files=generated_files,
        build_args=build_args,
        npm_package=npm_package,
        npm_install=npm_install,
        node_package=node_package,
        wheels=wheels,
        template=template,
        base_image=base_image,
        parent=parent,
        inputs_digest=digest,
    )


def _ca_files() -> tuple[tuple[str, Path], ...]:
    """The host's extra CA certificates, as ``ca/<name>.crt`` context entries; usually none.

    Only hosts whose own HTTPS is intercepted have them; copying them in lets the sidecar verify
    upstreams (and derived images fetch over HTTPS) there, and changes nothing anywhere else.
    """
    if not HOST_CA_DIR.is_dir():
        return ()
    found = sorted(p for p in HOST_CA_DIR.rglob("*.crt") if p.is_file())
    return tuple((f"ca/{p.relative_to(HOST_CA_DIR).as_posix().replace('/', '_')}", p) for p in found)


def _folder_files(folder: Path, *, limit: bool = False) -> tuple[tuple[str, Path], ...]:
    """Every regular file under ``folder`` as (relative posix path, path), sorted, no caches."""
    out: list[tuple[str, Path]] = []
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_NAMES)
        for name in sorted(files):
            if name in _SKIP_NAMES or name.endswith(".pyc"):
                continue
            path = Path(root) / name
            if not path.is_file():
                continue
            out.append((path.relative_to(folder).as_posix(), path))
            if limit:
                total += path.stat().st_size
                if len(out) > _CUSTOM_CONTEXT_MAX_FILES or total > _CUSTOM_CONTEXT_MAX_BYTES:
                    raise BotBottleError(
                        f"the folder of the custom Dockerfile ({folder}) is too large to use as build context",
                        hint="put the Dockerfile (and only what it copies) in a folder of its own",
                    )
    return tuple(out)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest_json(value: Any) -> str:
    return _sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode())


# -- building (talks to Docker and the registries) ---------------------------------------------


def cache_dir() -> Path:
    root = os.environ.get("BOT_BOTTLE_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "bot-bottle"


def image_exists(ref: str) -> bool:
    from bot_bottle.backend.docker import engine

    result = engine.run(["image", "inspect", "--format", "{{.Id}}", ref], check=False, timeout=60)
    if result.returncode != 0:
        unreachable = engine.no_engine_error(result.stderr)
        if unreachable is not None:
            raise unreachable  # not "missing": no build can help
    return result.returncode == 0


def ensure_image(spec: ImageSpec, *, console: Console | None = None) -> str:
    """Make sure ``spec.ref`` exists locally, building it when it does not; return the ref."""
    if image_exists(spec.ref):
        return spec.ref
    if spec.parent is not None:
        ensure_image(spec.parent, console=console)
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
    locks = cache_dir() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    # Concurrent starts of the same bottle would otherwise each build the same image. The one
    # that waits says so: a cold build takes minutes, and silence looks like a hang.
    shown = console

    def waiting() -> None:
        shown.print(f"Waiting for another bot-bottle process to build {spec.ref}", highlight=False)

    with file_lock(locks / f"{spec.name.replace('/', '_')}-{spec.tag}.lock", on_wait=waiting):
        if image_exists(spec.ref):
            return spec.ref
        started = time.monotonic()
        if not console.is_terminal:
            # The status line below is drawn only on a terminal: in a script's log the build
            # would be minutes of silence after "checking images", which looks like a hang.
            console.print(f"Building {spec.ref} (a first build can take minutes)", highlight=False)
        with console.status(f"Preparing {spec.ref}") as status:
            with tempfile.TemporaryDirectory(prefix="build-", dir=_mkdir(cache_dir() / "build")) as tmp:
                context = Path(tmp)
                _prepare_context(spec, context, lambda text: status.update(text))
                _docker_build(spec, context, lambda text: status.update(text))
        console.print(f"Built {spec.ref} in {time.monotonic() - started:.0f} s", highlight=False)
    return spec.ref


def _prepare_context(spec: ImageSpec, context: Path, progress) -> None:
    for rel, source in spec.context_files:
        _place(source, context / rel)
    (context / "ca").mkdir(exist_ok=True)
    (context / "ca" / ".keep").write_bytes(b"")  # COPY ca/ needs the folder even when empty
    shutil.copyfile(spec.dockerfile, context / _CONTEXT_DOCKERFILE)
    for rel, data in spec.generated_files:
        target = context / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if spec.npm_package is not None:
        progress(f"Fetching {spec.npm_package.spec} (npm pack)")
        _place(npm_tarball(spec.npm_package), context / "agent.tgz")
    if spec.npm_install is not None:
        progress(f"Installing {spec.npm_install.spec} and its dependencies (npm install)")
        _place(npm_install_tarball(spec.npm_install), context / "agent.tgz")
    if spec.node_package is not None:
        progress(f"Fetching {spec.node_package.spec} (npm pack)")
        _place(npm_tarball(spec.node_package), context / "node.tgz")
    if spec.wheels is not None:
        progress(f"Fetching {len(spec.wheels.requirements)} Python wheels (pip download)")
        wheel_dir = wheelhouse(spec.wheels)
        target = context / "wheels"
        target.mkdir()
        for wheel in sorted(wheel_dir.glob("*.whl")):
            _place(wheel, target / wheel.name)


def _place(source: Path, target: Path) -> None:
    """Put ``source`` at ``target``: a hard link when possible (agent tarballs are ~170 MB). A
    symbolic link is followed (linking the link itself would leave it dangling in the context)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(os.path.realpath(source), target)
    except OSError:
        shutil.copyfile(source, target)


def _npm_cached(final: Path) -> bool:
    """A cached npm result is whole: it is renamed into place only once made (never empty)."""
    return final.is_file() and final.stat().st_size > 0


def _npm_for(fetching: str, hint: str) -> str:
    """The host's npm, needed once to make a cache entry; its absence is the clear error."""
    npm = shutil.which("npm")
    if npm is None:
        raise BotBottleError(f"npm is needed once to fetch {fetching}", hint=hint)
    return npm


def npm_tarball(package: NpmPackage) -> Path:
    """The cached ``npm pack`` tarball of ``package``, fetching it on first use."""
    folder = _mkdir(cache_dir() / "npm")
    final = folder / package.tarball_name
    if _npm_cached(final):
        return final
    npm = _npm_for(package.spec,
                   "install Node.js with npm (the image itself needs no Node), then run the command again")
    # Pack into a scratch folder and rename, so an interrupted download never looks cached.
    with tempfile.TemporaryDirectory(prefix="pack-", dir=folder) as tmp:
        proc = subprocess.run(
            die_with_parent([npm, "pack", "--json", "--pack-destination", tmp, package.spec]),
            capture_output=True, text=True, cwd=tmp, timeout=900,
        )
        if proc.returncode != 0:
            raise BotBottleError(
                f"npm pack {package.spec} failed:\n{_tail(proc.stderr or proc.stdout)}",
                hint="check that the npm registry is reachable (`npm ping`) and the pinned version exists",
            )
        packed = _npm_pack_filename(proc.stdout) or package.tarball_name
        os.replace(Path(tmp) / packed, final)
    return final


def npm_install_tarball(package: NpmPackage) -> Path:
    """A cached tarball of ``node_modules/`` holding ``package`` and its dependency closure.

    Installed with ``--ignore-scripts`` (no install script of any dependency runs on the host)
    and ``--omit=dev``; the image runs it with the Node from its own platform package.
    """
    folder = _mkdir(cache_dir() / "npm-install")
    final = folder / package.tarball_name
    if _npm_cached(final):
        return final
    npm = _npm_for(f"{package.spec} and its dependencies", "install Node.js with npm, then run the command again")
    with tempfile.TemporaryDirectory(prefix="install-", dir=folder) as tmp:
        prefix = Path(tmp) / "prefix"
        prefix.mkdir()
        (prefix / "package.json").write_text('{"name": "bot-bottle-agent", "private": true}\n')
        proc = subprocess.run(
            die_with_parent([npm, "install", "--prefix", str(prefix), "--omit=dev", "--ignore-scripts", "--no-audit",
                             "--no-fund", "--no-save", "--os=linux", "--cpu=x64", package.spec]),
            capture_output=True, text=True, cwd=tmp, timeout=900,
        )
        if proc.returncode != 0:
            raise BotBottleError(
                f"npm install {package.spec} failed:\n{_tail(proc.stderr or proc.stdout)}",
                hint="check that the npm registry is reachable (`npm ping`) and the pinned version exists",
            )
        scratch = Path(tmp) / "agent.tgz"
        subprocess.run(["tar", "-czf", str(scratch), "-C", str(prefix), "node_modules"], check=True, timeout=600)
        os.replace(scratch, final)
    return final


def _npm_pack_filename(stdout: str) -> str | None:
    try:
        data = json.loads(stdout)
        return Path(str(data[0]["filename"])).name if data else None
    except (ValueError, LookupError, TypeError):
        return None


def wheelhouse(wheels: PythonWheels) -> Path:
    """A folder with one wheel per pinned requirement for the image's platform, fetched once."""
    folder = cache_dir() / "wheels" / wheels.digest
    marker = folder / ".complete"
    if marker.is_file():
        return folder
    _mkdir(folder.parent)
    scratch = Path(tempfile.mkdtemp(prefix=f"{wheels.digest}-", dir=folder.parent))
    try:
        req_file = scratch / "requirements.txt"
        req_file.write_text("\n".join(wheels.requirements) + "\n")
        platform_args: list[str] = []
        for plat in wheels.platforms:
            platform_args += ["--platform", plat]
        abi = "cp" + wheels.python_version.replace(".", "")
        # --no-deps: the lock is already the full closure; it also lets the few source-only
        # packages through, which are turned into (pure Python) wheels right after.
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
            "--only-binary=:all:", *[f"--no-binary={name}" for name in wheels.source_only],
            "--python-version", wheels.python_version, "--implementation", "cp", "--abi", abi,
            *platform_args, "-d", str(scratch / "dl"), "-r", str(req_file),
        ]
        _run_pip(cmd, "pip download", scratch)
        for sdist in sorted((scratch / "dl").iterdir()):
            if sdist.suffix == ".whl":
                continue
            _run_pip(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                 "-w", str(scratch / "dl"), str(sdist)],
                f"pip wheel {sdist.name}", scratch,
            )
            sdist.unlink()
        got = len(list((scratch / "dl").glob("*.whl")))
        if got != len(wheels.requirements):
            raise BotBottleError(
                f"expected {len(wheels.requirements)} wheels for the sidecar, got {got}",
                hint=f"inspect {scratch / 'dl'} and the [sidecar] lock in {versions_file()}",
            )
        (scratch / "dl" / ".complete").write_text("\n".join(wheels.requirements) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(scratch / "dl", folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _run_pip(cmd: list[str], what: str, scratch: Path) -> None:
    """``cmd`` (a pip run) ended with this process even when it is killed, its temporary build
    folders in ``scratch`` (removed with it) rather than in the user's temporary folder."""
    tmp = scratch / "tmp"
    tmp.mkdir(exist_ok=True)
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.run(die_with_parent(cmd), capture_output=True, text=True, timeout=900, env=env)
    if proc.returncode != 0:
        if "No module named pip" in proc.stderr:
            raise BotBottleError(
                f"{what}: this Python ({sys.executable}) has no pip",
                hint="install bot-bottle into an environment that has pip (python -m ensurepip)",
            )
        raise BotBottleError(
            f"{what} failed:\n{_tail(proc.stderr or proc.stdout)}",
            hint="check that PyPI is reachable from this machine (`pip download` must work)",
        )


_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # RUN steps may print colour codes


def _docker_build(spec: ImageSpec, context: Path, progress) -> None:
    from bot_bottle.backend.docker import engine

    binary = engine.docker_binary()
    if binary is None:
        raise BotBottleError("the docker CLI is not installed", hint="run scripts/setup, or install Docker")
    cmd = [binary, "build", "--force-rm", "-t", spec.ref, "-f", str(context / _CONTEXT_DOCKERFILE)]
    labels = dict(spec.labels)
    if spec.base_image:
        labels[LABEL_BASE] = spec.base_image
    for key, value in labels.items():
        cmd += ["--label", f"{key}={value}"]
    for key, value in spec.build_args:
        cmd += ["--build-arg", f"{key}={value}"]
    cmd.append(str(context))
    # The classic builder: BuildKit is not available everywhere, and its output differs.
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    log_dir = _mkdir(cache_dir() / "logs")
    log_path = log_dir / f"{spec.name.replace('/', '_')}-{spec.tag}.log"
    tail: deque[str] = deque(maxlen=_LOG_TAIL_LINES)
    progress(f"Building {spec.ref}")
    with log_path.open("w", encoding="utf-8") as log:
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=env
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                line = _ANSI.sub("", line).rstrip()
                if line:
                    tail.append(line)
                step = _STEP.match(line)
                if step:
                    what = step.group(3)
                    what = what if len(what) <= 60 else what[:57] + "..."
                    progress(f"Building {spec.ref}: step {step.group(1)}/{step.group(2)} {what}")
            code = proc.wait()
    if code != 0:
        _raise_if_interrupted(code, tail)
        raise BotBottleError(
            f"building {spec.ref} failed (docker build exited {code}); last lines:\n" + "\n".join(tail),
            hint=_build_hint("\n".join(tail), spec, log_path),
        )


# The signals that end a build because someone asked it to stop, not because it failed.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How the classic builder reports a RUN step's own non-zero status; docker build then exits with
# that status, so a step that itself ends 130 must stay a build failure.
_STEP_FAILED = re.compile(r"^The command .* returned a non-zero code: \d+$")


def _raise_if_interrupted(code: int, tail: deque[str]) -> None:
    """Raise what the CLI handles as an interruption when docker build was stopped by a signal.

    The docker CLI catches SIGINT and SIGTERM and exits 128 + the signal; it can also die of one.
    Either way the user (or their shell, or a supervisor) stopped it, so it is reported as an
    interrupted command, not as a build failure with a build log to dig through.
    """
    for signum in _STOP_SIGNALS:
        if code == -signum or (code == 128 + signum and not any(_STEP_FAILED.match(line) for line in tail)):
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise interrupts.Terminated(signum)


def _build_hint(tail: str, spec: ImageSpec, log_path: Path) -> str:
    low = tail.lower()
    if "cannot connect to the docker daemon" in low:
        from bot_bottle.backend.docker import engine

        return engine.NO_ENGINE_HINT
    base = spec.base_image or "the base image"
    if any(s in low for s in ("pull access denied", "manifest unknown", "failed to resolve", "not found: manifest",
                              "repository does not exist", "no such host")):
        return f"the base image {base} is not on this machine and cannot be pulled; create it with scripts/setup or `docker pull {base}`"
    if "no space left" in low:
        return "the disk is full: free space (e.g. `docker image prune`) and run the command again"
    return f"full log: {log_path}; fix the cause and run the command again (finished steps are cached)"


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block: one builder at a time.

    ``on_wait`` is called once, before blocking, when another process holds it.
    """
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
