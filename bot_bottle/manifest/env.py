"""Resolve a bottle's env at launch: literals as written, ``?prompt`` asked, ``${VAR}`` from the host.

Only this module turns env entries into values. Secret values are returned to the caller, who
must deliver them through a mode-600 file and never put them on an argv or in a log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from bot_bottle.manifest.errors import ManifestError
from bot_bottle.manifest.model import EnvEntry

PromptFn = Callable[[EnvEntry], str]


@dataclass(frozen=True)
class ResolvedEnv:
    values: dict[str, str]
    secret_names: frozenset[str]

    @property
    def secret_values(self) -> tuple[str, ...]:
        return tuple(self.values[name] for name in sorted(self.secret_names) if self.values.get(name))

    def __repr__(self) -> str:  # never print values, not even by accident in a traceback
        return f"ResolvedEnv(names={sorted(self.values)}, secret_names={sorted(self.secret_names)})"


def resolve(entries: Iterable[EnvEntry], environ: Mapping[str, str], prompt: PromptFn | None) -> ResolvedEnv:
    values: dict[str, str] = {}
    secrets: set[str] = set()
    for entry in entries:
        if entry.kind == "literal":
            values[entry.name] = entry.value
            continue
        secrets.add(entry.name)
        if entry.kind == "host":
            if entry.value not in environ:
                raise ManifestError(
                    f"the host variable {entry.value} is not set",
                    path=entry.origin.path,
                    line=entry.origin.line,
                    column=entry.origin.column,
                    key=f"env.{entry.name}",
                    hint=f"export {entry.value}=... before starting, or change the manifest",
                )
            values[entry.name] = environ[entry.value]
        else:
            if prompt is None:
                raise ManifestError(
                    f"needs an answer on the terminal ({entry.value!r}) but no terminal is attached",
                    path=entry.origin.path,
                    line=entry.origin.line,
                    column=entry.origin.column,
                    key=f"env.{entry.name}",
                    hint="run interactively, or use \"${HOST_VAR}\" for headless runs",
                )
            values[entry.name] = prompt(entry)
    return ResolvedEnv(values=values, secret_names=frozenset(secrets))
