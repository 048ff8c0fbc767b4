"""Skip-or-fail for tests that need a tool: a skip on a laptop, a failure under ``CI=true``.

CI installs everything the suite needs (git, the dev extras with mitmproxy and brotli, a Docker
engine); a missing one there is a broken install that a silent skip would hide.
"""

from __future__ import annotations

import unittest
from collections.abc import Callable
from typing import TypeVar

from tests._docker import in_ci

_T = TypeVar("_T")


def requires(available: bool, what: str) -> Callable[[_T], _T]:
    """Decorate a TestCase class or a test method that needs ``what``."""

    def decorate(obj: _T) -> _T:
        if available:
            return obj
        if in_ci():
            message = f"CI=true but {what} is missing"
            if isinstance(obj, type):
                def setUpClass(klass: type) -> None:
                    raise AssertionError(message)

                obj.setUpClass = classmethod(setUpClass)  # type: ignore[attr-defined]
                return obj

            def failing(*args: object, **kwargs: object) -> None:
                raise AssertionError(message)

            return failing  # type: ignore[return-value]
        return unittest.skip(f"{what} is missing")(obj)

    return decorate
