"""A spool file the host cannot read as JSON (a daemon's torn or hostile write) is skipped like
any malformed one: it never hides the bottle's other proposals from the operator."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from bot_bottle.sidecar.supervise.channel import ChannelError, Proposal, Spool, read_grants

UNREADABLE = {
    "not UTF-8": b'{"id": "\xff"}',
    "an integer too long to convert": b'{"id": ' + b"1" * 5000 + b"}",
    "nesting too deep": b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


class UnreadableSpoolFileTest(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.spool = Spool(Path(tmp.name) / "spool")
        self.spool.ensure()
        self.good = self.spool.submit(Proposal.new("egress", {"host": "docs.example"}, "to read the docs", 60))

    def test_the_other_proposals_are_still_listed(self) -> None:
        for what, data in UNREADABLE.items():
            with self.subTest(what):
                bad = self.spool.proposals_dir / "egress-bad.json"
                bad.write_bytes(data)
                self.addCleanup(bad.unlink, missing_ok=True)
                self.assertEqual([p.id for p in self.spool.pending()], [self.good.id])
                self.assertEqual([p.id for p in self.spool.proposals()], [self.good.id])
                bad.unlink()

    def test_an_unreadable_grants_file_is_a_channel_error(self) -> None:
        # The gate and the proxy treat a ChannelError as "no grant" (fail closed), never a crash.
        for what, data in UNREADABLE.items():
            with self.subTest(what):
                (self.spool.root / "grants.json").write_bytes(data)
                with self.assertRaises(ChannelError):
                    read_grants(self.spool.root)


if __name__ == "__main__":
    unittest.main()
