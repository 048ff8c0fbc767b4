"""Hyperlinks (OSC 8) in what an agent prints: a link passes to the operator's terminal only to a
web address spelled in printable ASCII with nothing before its host; any other (a local file,
an editor's or a shell's handler, ``javascript:``) is held back and its text shown unlinked. A
link the agent leaves open is closed at its end, and none of it depends on where the stream is
split."""

from __future__ import annotations

import random
import re
import unittest

from bot_bottle.screen_filter import ScreenFilter, is_named, osc_kind
from tests.unit.test_screen_filter import check_safe, run

ST = b"\x1b\\"
END = b"\x1b]8;;" + ST


def link(uri: bytes, text: bytes = b"click", params: bytes = b"", terminator: bytes = ST) -> bytes:
    return b"\x1b]8;" + params + b";" + uri + terminator + text + b"\x1b]8;;" + terminator


WEB_LINKS = [
    b"https://example.com", b"https://example.com/a?b=c#d", b"http://127.0.0.1:8080/x", b"HTTPS://EXAMPLE.COM/",
    b"https://[2001:db8::1]:443/p", b"https://docs.example/%D7%90%D7%91?q=a%40b", b"https://a.example/#x@y",
    b"https://user-content.example/path;v=1", b"https://example.com/?q=a:b@c",
]

HELD_LINKS = [
    (b"file:///etc/passwd", "local file link (OSC 8)"),
    (b"FILE://localhost/Applications/Calculator.app", "local file link (OSC 8)"),
    (b"vscode://file/home/op/.bashrc", "hyperlink to vscode: (OSC 8)"),
    (b"ssh://root@10.0.0.1", "hyperlink to ssh: (OSC 8)"),
    (b"x-man-page://ls", "hyperlink to x-man-page: (OSC 8)"),
    (b"javascript:alert(1)", "hyperlink to javascript: (OSC 8)"),
    (b"mailto:a@example.com?attach=/home/op/.ssh/id_rsa", "hyperlink to mailto: (OSC 8)"),
    (b"my-handler+x.y:payload", "hyperlink to my-handler+x.y: (OSC 8)"),
    (b"https://github.com@evil.example/login", "disguised web link (OSC 8)"),
    (b"https://evil.example\\@github.com/", "disguised web link (OSC 8)"),
    (b"https://evil.example\\github.com/", "disguised web link (OSC 8)"),
    (b"https://github.com evil.example/", "disguised web link (OSC 8)"),
    ("https://gіthub.com/".encode(), "disguised web link (OSC 8)"),  # Cyrillic i
    ("https://example.com/\u202eexe.txt".encode(), "disguised web link (OSC 8)"),
    (b"https:///evil.example", "disguised web link (OSC 8)"),
    (b"https:evil.example", "disguised web link (OSC 8)"),
    (b"//evil.example/", "malformed OSC 8"),
    (b"evil.example", "malformed OSC 8"),
]


class WebLinksPass(unittest.TestCase):
    def test_a_link_to_a_web_address_passes_byte_for_byte(self) -> None:
        for uri in WEB_LINKS:
            for terminator in (ST, b"\x07"):
                seq = link(uri, terminator=terminator)
                with self.subTest(uri=uri, terminator=terminator):
                    out, screen = run(seq)
                    self.assertEqual(out, seq)
                    self.assertEqual(screen.held, {})

    def test_the_id_parameter_passes(self) -> None:
        for params in (b"id=1", b"id=claude-42", b"id=a.b_c-d", b"id=", b"id=x:foo=bar"):
            seq = link(b"https://example.com/", params=params)
            with self.subTest(params=params):
                self.assertEqual(run(seq)[0], seq)

    def test_a_link_end_with_an_id_passes(self) -> None:
        seq = b"\x1b]8;id=1;https://example.com/" + ST + b"x\x1b]8;id=1;" + ST
        self.assertEqual(run(seq)[0], seq)


class OtherLinksAreHeldAndTheirTextShown(unittest.TestCase):
    def test_each_other_link_is_held_and_its_text_kept(self) -> None:
        for uri, kind in HELD_LINKS:
            with self.subTest(uri=uri):
                out, screen = run(b"see " + link(uri, b"README.md") + b" now")
                # The link's end passes: with no link open it ends none.
                self.assertEqual(out, b"see README.md" + END + b" now")
                self.assertEqual(screen.held, {kind: 1})

    def test_parameters_beyond_key_value_pairs_hold_the_link(self) -> None:
        # A ';' in the parameters would end them early in the terminal and start the URI there.
        for params in (b"id=1;file:///x", b"foo", b"id=a b", b"=1", b"id=1::", "id=é".encode()):
            with self.subTest(params=params):
                out, screen = run(link(b"https://example.com/", b"t", params=params))
                self.assertNotIn(b"example.com", out)
                self.assertNotIn(b"file:", out)
                self.assertTrue(out.endswith(b"t" + END) or out == b"t" + END, out)

    def test_a_link_with_no_uri_field_is_held(self) -> None:
        for payload in (b"8", b"8;https://example.com/"):
            with self.subTest(payload=payload):
                self.assertEqual(osc_kind(payload), "malformed OSC 8")

    def test_the_number_spelled_with_leading_zeros_is_still_a_link(self) -> None:
        self.assertEqual(osc_kind(b"008;;file:///etc/passwd"), "local file link (OSC 8)")
        self.assertIsNone(osc_kind(b"008;;https://example.com/"))

    def test_local_file_links_are_held_quietly_other_schemes_are_named(self) -> None:
        # Claude Code links every file path it prints to a file:// URI: a line about them at the
        # end of every session would teach the operator to skip the line that matters.
        out, screen = run(link(b"file:///workspace/a.py", b"a.py") + link(b"file:///workspace/b.py", b"b.py"))
        self.assertEqual(out, b"a.py" + END + b"b.py" + END)
        self.assertIsNone(screen.summary())
        self.assertFalse(is_named("local file link (OSC 8)"))
        _, both = run(link(b"file:///x") + link(b"vscode://file/x"))
        self.assertEqual(both.summary(),
                         "held back 1 terminal sequence the agent printed: hyperlink to vscode: (OSC 8) x1")

    def test_a_held_link_inside_an_open_web_link_ends_it(self) -> None:
        # Its text must not read as part of the web link before it.
        stream = b"\x1b]8;;https://example.com/" + ST + b"a\x1b]8;;file:///etc/passwd" + ST + b"b" + END + b"c"
        out, _ = run(stream)
        self.assertEqual(out, b"\x1b]8;;https://example.com/" + ST + b"a" + END + b"b" + END + b"c")

    def test_a_held_link_with_no_open_link_adds_nothing(self) -> None:
        self.assertEqual(run(b"a\x1b]8;;vscode://x" + ST + b"b")[0], b"ab")


class LinkLeftOpen(unittest.TestCase):
    def test_a_link_left_open_is_ended_at_finish(self) -> None:
        out, _ = run(b"\x1b]8;;https://example.com/" + ST + b"text")
        self.assertEqual(out, b"\x1b]8;;https://example.com/" + ST + b"text" + END)

    def test_a_link_that_was_ended_needs_nothing(self) -> None:
        for stream in (link(b"https://example.com/"), link(b"https://example.com/", terminator=b"\x07"),
                       b"\x1b]8;id=1;https://x.example/" + ST + b"t\x1b]8;id=1;" + ST):
            with self.subTest(stream=stream):
                self.assertEqual(run(stream)[0], stream)

    def test_a_full_reset_forgets_the_link(self) -> None:
        stream = b"\x1b]8;;https://example.com/" + ST + b"t\x1bc"
        self.assertEqual(run(stream)[0], stream)


STREAM = b"".join([
    b"ab", link(b"https://example.com/x?y=1", b"ok", b"id=7"), link(b"file:///etc/passwd", b"f"),
    b"\x1b]8;;https://example.com/" + ST + b"o", link(b"javascript:alert(1)", b"j", terminator=b"\x07"),
    link(b"https://github.com@evil.example/", b"g"), "é→".encode(), link("https://gіthub.com".encode(), b"c"),
    b"\x1b]8;id=1;file:///x;y" + ST + b"z", b"\x1b]8;;https://left.example/open" + ST + b"tail",
])


class ChunkBoundaries(unittest.TestCase):
    def test_a_cut_at_every_byte_gives_the_same_output(self) -> None:
        whole, screen = run(STREAM)
        self.assertNotIn(b"file:", whole)
        self.assertNotIn(b"javascript:", whole)
        self.assertNotIn(b"evil.example", whole)
        for cut in range(1, len(STREAM)):
            with self.subTest(cut=cut):
                out, split = run(STREAM, [cut])
                self.assertEqual(out, whole)
                self.assertEqual(split.held, screen.held)

    def test_one_byte_at_a_time_gives_the_same_output(self) -> None:
        whole, screen = run(STREAM)
        out, split = run(STREAM, list(range(1, len(STREAM))))
        self.assertEqual(out, whole)
        self.assertEqual(split.held, screen.held)

    def test_random_link_streams_pass_only_web_links(self) -> None:
        pieces = [b"\x1b]8;", b";", b"id=1", b"https://", b"http://", b"file://", b"vscode://", b"javascript:",
                  b"example.com", b"/p", b"@", b"\\", b" ", b"\x1b\\", b"\x07", b"\x1b", b"\xd1\x96", b"x", b":",
                  b"\x1b]8;;", b"\x1b]8;;https://a.example/", b"\x1b]0;t", b"\x18"]
        rng = random.Random(14)
        for _ in range(1500):
            stream = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
            cuts = sorted(rng.sample(range(1, len(stream)), min(3, len(stream) - 1))) if len(stream) > 1 else []
            out, screen = run(stream, cuts)
            with self.subTest(stream=stream):
                check_safe(self, out)
                self.assertEqual(out, run(stream)[0])
                for start in _link_starts(out):
                    uri = out[start:].split(b";", 2)[2]
                    end = min(i for i in (uri.find(b"\x07"), uri.find(b"\x1b")) if i >= 0)
                    target = uri[:end]
                    if not target:
                        continue  # the end of a link
                    self.assertTrue(target.lower().startswith((b"https://", b"http://")), out)
                    self.assertTrue(re.fullmatch(rb"[\x21-\x7e]+", target), out)
                    host = re.split(rb"[/?#]", target.split(b"://", 1)[1], maxsplit=1)[0]
                    self.assertTrue(host and b"@" not in host and b"\\" not in host, out)
                again = ScreenFilter()
                self.assertEqual(again.feed(out), out, "what passed passes a second filter unchanged")


class RepeatedSpaceIntermediate(unittest.TestCase):
    def test_an_escape_with_more_than_one_space_is_held(self) -> None:
        # Found by the random link streams: the reference reader passes ESC SP only before F.
        for seq in (b"\x1b  G", b"\x1b  \\", b"\x1b  F", b"\x1b! G"):
            with self.subTest(seq=seq):
                out, screen = run(b"a" + seq + b"b")
                self.assertEqual(out, b"ab")
                self.assertEqual(screen.held, {"conformance level change (ESC SP)": 1})

    def test_s7c1t_and_other_intermediates_still_pass(self) -> None:
        for seq in (b"\x1b F", b"\x1b(B", b"\x1b#8", b"\x1b)0"):
            with self.subTest(seq=seq):
                self.assertEqual(run(seq)[0], seq)


def _link_starts(out: bytes) -> list[int]:
    starts, at = [], out.find(b"\x1b]8;")
    while at >= 0:
        starts.append(at)
        at = out.find(b"\x1b]8;", at + 1)
    return starts


if __name__ == "__main__":
    unittest.main()
