"""``bot_bottle.cli.output`` leans on Rich's private API only where Rich has no public one: each
private name it uses is listed here with why, so a new one (which a Rich release may drop) is
noticed in review rather than in a user's terminal."""

from __future__ import annotations

import ast
import inspect
import unittest

from rich.table import Table

from bot_bottle.cli import output

# Rich computes a table's column widths only inside its private layout; these are the pieces of
# it ``output._fits`` asks, none of which has a public equivalent in Rich 13-15.
NO_PUBLIC_EQUIVALENT = {
    "_extra_width",  # what the borders take: Table has no public property for it
    "_calculate_column_widths",  # the widths the columns get: not public at all
    "_measure_column",  # a column's measure with its padding, as the layout counts it
    "_get_padding_width",  # a column's padding as the layout counts it (edges, collapse_padding)
}


def private_attributes(source: str) -> set[str]:
    """Every ``x._name`` attribute the module reads (not dunders), and every ``rich._`` import."""
    tree = ast.parse(source)
    found = {node.attr for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")}
    for node in ast.walk(tree):
        modules = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                   else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        found.update(m for m in modules if any(p.startswith("_") and not p.startswith("__") for p in m.split(".")))
    return found


class RichApiTest(unittest.TestCase):
    def test_output_uses_no_private_rich_name_that_has_a_public_one(self) -> None:
        used = private_attributes(inspect.getsource(output))
        self.assertLessEqual(used, NO_PUBLIC_EQUIVALENT, "a private name output.py need not use")

    def test_the_private_names_still_exist_in_this_rich(self) -> None:
        # Without them ``_fits`` falls back to plain lines for every table: say so here first.
        for name in NO_PUBLIC_EQUIVALENT:
            self.assertTrue(hasattr(Table, name), name)


if __name__ == "__main__":
    unittest.main()
