"""A streamed form body's ``_method`` field: the buffered override check (``core.body_method_problem``)
read chunk by chunk (``stream_method``), and the addon stopping such an upload mid-way."""

from __future__ import annotations

import copy
import json
import random
import unittest
from collections.abc import Iterable, Iterator

from bot_bottle.sidecar.egress import stream_method
from bot_bottle.sidecar.egress.core import Verdict, body_method_problem
from bot_bottle.sidecar.egress.policy import Match, Route
from tests.unit import test_egress_stream as stream_tests
from tests.unit.test_egress_stream import MB, feed_all
from tests.unit.test_sidecar_addon import POLICY, AddonCase, addon_mod

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=B"
POST_ONLY = Verdict(True, "forms.example", 443, "route", "",
                  Route("forms.example", matches=(Match(methods=("POST",)),)), 0, 0)
ANY_METHOD = Verdict(True, "forms.example", 443, "route", "", Route("forms.example"), 0)


def part(name: str, value: bytes, extra: bytes = b"") -> bytes:
    return (b'--B\r\nContent-Disposition: form-data; name="' + name.encode() + b'"' + extra + b"\r\n"
            b"Content-Type: text/plain\r\n\r\n" + value + b"\r\n")


def disposition(params: bytes, value: bytes = b"DELETE", eol: bytes = b"\r\n") -> bytes:
    """A part whose ``Content-Disposition`` parameters are written as given."""
    return b"--B" + eol + b"Content-Disposition: form-data; " + params + eol + eol + value + eol


def splits(body: bytes) -> Iterator[list[bytes]]:
    """The body cut at every position, and byte by byte."""
    for i in range(len(body) + 1):
        yield [body[:i], body[i:]]
    yield [body[i:i + 1] for i in range(len(body))]


def streamed(content_type: str, chunks: Iterable[bytes], verdict: Verdict = POST_ONLY) -> bool:
    state = stream_method.watch(verdict, content_type)
    assert state is not None
    for chunk in chunks:
        if stream_method.feed(state, chunk):
            return True
    return stream_method.feed(state, b"", final=True)


class DetectorTest(unittest.TestCase):
    REFUSED = (
        (FORM, b"_method=DELETE&a=1"),
        (FORM, b"a=1&_method=DELETE"),
        (FORM, b"a=1&_method=DELETE&b=2"),
        (FORM, b"a=1&%5Fmethod=PUT&b=2"),
        (FORM, b"a=1&%5f%6Dethod=put"),
        (FORM, b"a=1&_METHOD=patch&b=2"),
        (FORM, b"a=1&+_method+=DELETE"),
        (FORM, b"a=1&_method&b=2"),  # no value: no allowed method either
        (MULTIPART, part("a", b"1") + part("_method", b"DELETE") + b"--B--\r\n"),
        (MULTIPART, b'--B\nContent-Disposition: form-data; name=_method\n\nDELETE\n--B--\n'),
        (MULTIPART, part("_method", b"DELETE")),  # the value ends with the body
    )
    # Names PHP rewrites to _method (leading spaces dropped, cut at a NUL, " ", "." and "[" as
    # "_"), and fields some parsers split on ";" as well as "&".
    REWRITTEN_NAMES = (
        (FORM, b"a=1&.method=DELETE&b=2"),
        (FORM, b"a=1&%2Emethod=put"),
        (FORM, b"a=1&+method=DELETE"),
        (FORM, b"a=1&%20method=DELETE"),
        (FORM, b"a=1& method=DELETE"),
        (FORM, b"a=1&[method=DELETE"),
        (FORM, b"a=1&%5bmethod=DELETE"),
        (FORM, b"a=1&.METHOD=patch&b=2"),
        (FORM, b"a=1&_method%00x=DELETE"),
        (FORM, b"a=1&++.method=DELETE"),
        (FORM, b"a;_method=DELETE"),
        (FORM, b"a=1;_method=DELETE&b=2"),
        (FORM, b"a=1&b=2;.method=DELETE"),
        (FORM, b"x=1;%20method=DELETE;y=2"),
        (MULTIPART, part("a", b"1") + part(".method", b"DELETE") + b"--B--\r\n"),
        (MULTIPART, part("[method", b"DELETE") + b"--B--\r\n"),
        (MULTIPART, part(" method", b"DELETE") + b"--B--\r\n"),
        (MULTIPART, part("  \t _method", b"PUT") + b"--B--\r\n"),
        (MULTIPART, part(".METHOD", b"DELETE")),
        (MULTIPART, b'--B\nContent-Disposition: form-data; name=   .method\n\nDELETE\n--B--\n'),
    )
    # Spellings of a multipart part's name that some parser decodes to _method: RFC 2231 / RFC 5987
    # extended parameters (any charset, with or without a language, Go and Python join
    # continuations), percent-encoding (parsers that decode names), backslash escapes in a quoted
    # string, blanks around "=" (Go), an unquoted name.
    ENCODED_NAMES = tuple((MULTIPART, body) for body in (
        disposition(b"name*=UTF-8''%5Fmethod"),
        disposition(b"name*=utf-8''_method"),
        disposition(b"NAME*=Utf-8'en'%5fmethod; filename=x"),
        disposition(b"name*=UTF-8'en-US'%5F%6D%65%74%68%6F%64"),
        disposition(b"name*=\"iso-8859-1''%2Emethod\""),
        disposition(b"name*=''_METHOD", b"put"),
        disposition(b"name*=x-Weird+1~'a|b'%5Fmethod"),
        disposition(b"name*=UTF-8''%20method"),
        disposition(b"name*=UTF-8''%20%09%5bmethod"),
        disposition(b'name="x"; name*=UTF-8\'\'%5Fmethod'),
        disposition(b'name*0="_me"; name*1="thod"'),
        disposition(b"name*0*=UTF-8''%5F; name*1*=method"),
        disposition(b'name="%5Fmethod"'),
        disposition(b'name="%5f%4D%45%54%48%4F%44"'),
        disposition(b'name="%2emethod"'),
        disposition(b'name="%20method"'),
        disposition(b'name="\\_method"'),
        disposition(b'name="\\_\\m\\e\\t\\h\\o\\d"'),
        disposition(b'name="\\ method"'),
        disposition(b'name="\\ \\\t%20%09.method"'),
        disposition(b"name=%5Fmethod", eol=b"\n"),
        disposition(b'name = "_method"'),
        disposition(b'name\t=\t_method'),
        disposition(b'name*  = UTF-8\'\'%5Fmethod'),
        disposition(b'filename="a.txt"; name="%5Fmethod"'),
        part("a", b"1") + disposition(b"name*=UTF-8''%5Fmethod") + b"--B--\r\n",
    ))
    ALLOWED = (
        (FORM, b"a=1&_method=POST&b=2"),
        (FORM, b"_method=post"),
        (FORM, b"a=1&x_method=DELETE&b=2"),
        (FORM, b"note=a_method%3DDELETE&b=2"),
        (FORM, b"note=x&_method=POST&_method=+post+"),
        (FORM, b"note=see&_method_x=DELETE"),
        # Names no framework reads as _method, whichever way it rewrites or splits them.
        (FORM, b"payment_method=DELETE&x_method=PUT&method=DELETE&_method_x=PUT&a.b=DELETE"),
        (FORM, b"a=1;payment_method=DELETE;x.method=PUT;method=DELETE;%09method=PUT"),
        (FORM, b"a=1;_method=POST&b=.method"),
        (MULTIPART, part("payment_method", b"DELETE") + part("method", b"DELETE") + part("a.b", b"DELETE")
         + part("x.method", b"DELETE") + part("\tmethod", b"DELETE") + b"--B--\r\n"),
        (MULTIPART, part("a", b"_method=DELETE") + part("x_method", b"DELETE") + b"--B--\r\n"),
        (MULTIPART, part("_method", b"POST") + b"--B--\r\n"),
        (MULTIPART, part("file", b"DELETE", b'; filename="_method"') + b"--B--\r\n"),
        (MULTIPART, disposition(b"name*=UTF-8''payment%5Fmethod") + disposition(b"name*=UTF-8''%6Dethod")
         + disposition(b"name*=UTF-8''x%5Fmethod") + disposition(b'name="%5Fmeth"') + disposition(b'name="\\tmethod"')
         + disposition(b"filename*=UTF-8''%5Fmethod; name=file")
         + disposition(b'name="it\'s"; name*=UTF-8\'\'data') + disposition(b"name*=" + b"x" * 41 + b"''_method")
         + disposition(b"nickname=_method; username*=UTF-8''_method") + b"--B--\r\n"),
        (MULTIPART, disposition(b"name*=UTF-8''%5Fmethod", b"POST") + disposition(b'name="\\_method"', b"post")),
        # A bare CR inside the part's headers: no framework reads that part as _method.
        (MULTIPART, b'--B\r\nContent-Disposition: form-data; name="_method"\r\nX-A: a\rb\r\n\r\nDELETE\r\n'),
    )

    def test_a_field_asking_for_another_method_is_found_wherever_the_chunks_are_cut(self) -> None:
        for content_type, body in self.REFUSED + self.REWRITTEN_NAMES + self.ENCODED_NAMES:
            with self.subTest(body=body):
                self.assertIsNotNone(body_method_problem(POST_ONLY, content_type, body))  # the buffered rule
                for chunks in splits(body):
                    self.assertTrue(streamed(content_type, chunks), chunks)

    def test_allowed_methods_and_lookalike_fields_pass_wherever_the_chunks_are_cut(self) -> None:
        for content_type, body in self.ALLOWED:
            with self.subTest(body=body):
                self.assertIsNone(body_method_problem(POST_ONLY, content_type, body))
                # The same body with a real override after it: the reading did not lose its way.
                tail = b"&_method=DELETE" if content_type == FORM else part("_method", b"DELETE")
                for chunks in splits(body):
                    self.assertFalse(streamed(content_type, chunks), chunks)
                    self.assertTrue(streamed(content_type, [*chunks, tail]), chunks)

    def test_streamed_and_buffered_readings_agree_on_mixed_bodies(self) -> None:
        rng = random.Random(7)
        names = (b"_method", b".method", b"%2Emethod", b"+method", b" method", b"[method", b"%5Bmethod", b"method",
                 b"x_method", b"_method_x", b"a.b", b"_meth%6Fd", b"_method%00z", b"+_method+", b"%09method")
        values = (b"DELETE", b"POST", b"post", b"", b"POST;x=1", b"x;.method=PUT")
        for _ in range(150):
            fields = [rng.choice(names) + rng.choice((b"=", b"=", b"")) + rng.choice(values)
                      for _ in range(rng.randint(1, 3))]
            body = b"".join(f + rng.choice((b"&", b";", b"")) for f in fields)
            want = body_method_problem(POST_ONLY, FORM, body) is not None
            for chunks in splits(body):
                self.assertEqual(streamed(FORM, chunks), want, chunks)
        params = (b"name=", b"name=", b"name*=", b"NAME =", b"name*0=", b"name*1*=", b"name*x=", b"filename*=",
                  b"name*=UTF-8''", b"name*=utf-8'en'", b"name*='", b"name=a.", b"name=\\")
        blanks = (b"", b"", b" ", b"\t ", b"  ", b"%20", b"%09", b"\\ ", b"\\\t", b"%2", b"\\")
        multipart_names = names[:8] + (b"%5Fmethod", b"%5f%6d%65%74%68%6f%64", b"\\_method", b"\\_\\m\\ethod", b"%2Emethod",
                                       b"_method_x", b"_method[]", b"%6Dethod", b"\\tmethod", b"name=_method")
        for _ in range(400):
            body = b""
            for _ in range(rng.randint(1, 2)):
                eol = rng.choice((b"\r\n", b"\n", b"\r"))
                name = (rng.choice(params) + rng.choice((b"", b'"')) + rng.choice(blanks) + rng.choice(blanks)
                        + rng.choice(multipart_names))
                body += (b"--B" + eol + b"Content-Disposition: form-data; " + name + rng.choice((b"", b'"'))
                         + eol + rng.choice((b"", b"X: 1" + eol)) + eol + rng.choice(values[:4]) + eol)
            want = body_method_problem(POST_ONLY, MULTIPART, body) is not None
            for chunks in splits(body):
                self.assertEqual(streamed(MULTIPART, chunks), want, chunks)

    def test_the_field_is_reported_as_soon_as_it_ends_not_at_the_end_of_the_body(self) -> None:
        for content_type, head, rest in ((FORM, b"a=1&_method=DELE", b"TE&b="),
                                         (MULTIPART, part("_method", b"DELE")[:-2], b"TE\r\n--B")):
            with self.subTest(content_type=content_type):
                state = stream_method.watch(POST_ONLY, content_type)
                self.assertFalse(stream_method.feed(state, head))
                self.assertTrue(stream_method.feed(state, rest))

    def test_fields_between_large_chunks(self) -> None:
        filler = b"x" * 300_000
        body = b"a=" + filler + b"&_method=DELETE&b=" + filler
        self.assertTrue(streamed(FORM, [body[i:i + 65536] for i in range(0, len(body), 65536)]))
        body = part("file", filler + b"\r\n" + filler) + part("_method", b"PUT") + b"--B--\r\n"
        self.assertTrue(streamed(MULTIPART, [body[i:i + 65536] for i in range(0, len(body), 65536)]))
        body = part("file", filler) + part("_method", b"POST") + b"--B--\r\n"
        self.assertFalse(streamed(MULTIPART, [body[i:i + 65536] for i in range(0, len(body), 65536)]))

    def test_a_semicolon_field_or_a_rewritten_name_past_the_kept_head_of_a_long_field(self) -> None:
        filler = b"x" * (stream_method.FIELD_CAP + 100)
        for body in (b"a=" + filler + b";_method=DELETE&b=1", b"a=" + filler + b";.method=DELETE"):
            with self.subTest(body=body[-20:]):
                self.assertIsNotNone(body_method_problem(POST_ONLY, FORM, body))
                for size in (1000, 4096, 65536):
                    self.assertTrue(streamed(FORM, [body[i:i + size] for i in range(0, len(body), size)]))
        # A name padded past the cap: still the override once PHP or a strip rewrites it.
        for name in (b".method", b"+method", b"[method", b"++_method"):
            body = b"a=1&" + name + b"+" * (stream_method.FIELD_CAP + 10) + b"=DELETE"
            with self.subTest(name=name):
                self.assertIsNotNone(body_method_problem(POST_ONLY, FORM, body))
                self.assertTrue(streamed(FORM, [body[i:i + 1000] for i in range(0, len(body), 1000)]))
        for name in (b"method", b"x.method", b"payment_method"):
            body = b"a=1&" + name + b"+" * (stream_method.FIELD_CAP + 10) + b"=DELETE"
            with self.subTest(benign=name):
                self.assertIsNone(body_method_problem(POST_ONLY, FORM, body))
                self.assertFalse(streamed(FORM, [body[i:i + 1000] for i in range(0, len(body), 1000)]))
        # Blanks before a multipart name, however many, and cut anywhere.
        body = b'--B\r\nContent-Disposition: form-data; name="' + b" \t" * 100 + b'.method"\r\n\r\nDELETE\r\n'
        self.assertIsNotNone(body_method_problem(POST_ONLY, MULTIPART, body))
        for chunks in splits(body):
            self.assertTrue(streamed(MULTIPART, chunks), chunks)

    def test_a_multipart_name_is_matched_by_its_start_so_arrays_and_longer_names_are_refused(self) -> None:
        # Kept on purpose (see core._MULTIPART_METHOD): PHP registers "_method[]" under _method.
        for name in (b'"_method_x"', b'"_method[]"', b'"_method[0]"', b"_methods", b"*=UTF-8''%5Fmethod%5B%5D"):
            body = disposition(b"name" + (b"=" if not name.startswith(b"*") else b"") + name)
            with self.subTest(name=name):
                self.assertIsNotNone(body_method_problem(POST_ONLY, MULTIPART, body))
                for chunks in splits(body):
                    self.assertTrue(streamed(MULTIPART, chunks), chunks)
            self.assertIsNone(body_method_problem(POST_ONLY, MULTIPART, body.replace(b"DELETE", b"POST")))

    def test_a_multipart_name_s_blanks_and_prefix_are_read_in_bounded_memory(self) -> None:
        # Blanks before the name, however many and however spelt, cut anywhere by large chunks.
        for blank in (b" ", b"%20", b"\\ ", b"%09", b"\t"):
            body = disposition(b'name="' + blank * 100_000 + b'.method"') + part("file", b"x" * 10_000)
            with self.subTest(blank=blank):
                self.assertIsNotNone(body_method_problem(POST_ONLY, MULTIPART, body))
                for size in (1000, 4093, 65536):
                    state = stream_method.watch(POST_ONLY, MULTIPART)
                    refused = False
                    for i in range(0, len(body), size):
                        refused = refused or stream_method.feed(state, body[i:i + size])
                        self.assertLess(len(state.carry), 200)
                    self.assertTrue(refused or stream_method.feed(state, b"", final=True))
        # A prefix longer than any charset name is no RFC 2231 prefix; the longest one still is.
        self.assertTrue(streamed(MULTIPART, [disposition(b"name*=" + b"c" * 40 + b"'" + b"l" * 40 + b"'_method")]))

    def test_a_value_too_long_for_any_method_is_refused(self) -> None:
        long_value = b"POST" + b"+" * (stream_method.FIELD_CAP + 10)
        self.assertTrue(streamed(FORM, [b"a=1&_method=" + long_value]))
        self.assertTrue(streamed(MULTIPART, [part("_method", b"POST" + b" " * (stream_method.VALUE_CAP + 10))]))
        self.assertFalse(streamed(FORM, [b"a=1&data=" + long_value + b"&_method=POST"]))

    def test_nothing_is_watched_without_a_form_or_without_methods_on_the_route(self) -> None:
        self.assertIsNone(stream_method.watch(ANY_METHOD, FORM))
        self.assertIsNone(stream_method.watch(POST_ONLY, "application/octet-stream"))
        self.assertIsNotNone(stream_method.watch(POST_ONLY, "Multipart/Form-Data; boundary=x"))

    def test_forms_as_rack_and_php_read_the_type_and_json_as_laravel_reads_it(self) -> None:
        # A type cut at "," or a blank, a body without a type (Rack: a form), and a JSON body's
        # "_method" key (Laravel), however its key is escaped, wherever the chunks are cut.
        refused = (("", b"_method=DELETE"), (FORM + ", text/plain", b"a=1&_method=DELETE"),
                   (FORM + " x", b"_method=PUT"), ("application/json", b'{"a": 1, "_method": "DELETE"}'),
                   ("application/vnd.api+json", b'{"_method" : "patch"}'),
                   ("text/plain, application/json", b'{"\\u005fmethod": "DELETE"}'),
                   ("application/json", b'{"_method": ["DELETE"]}'), ("application/json", b'{"_m\\u0065thod": "PUT"}'))
        allowed = (("", b"a=1&payment_method=DELETE"), ("application/json", b'{"_method": "POST", "method": "DELETE"}'),
                   ("application/json", b'{"payment_method": "DELETE", "text": "_method: DELETE"}'),
                   ("application/json", b"[1, 2]"))
        for content_type, body in refused:
            with self.subTest(refused=body, content_type=content_type):
                self.assertIsNotNone(body_method_problem(POST_ONLY, content_type, body))
                for chunks in splits(body):
                    self.assertTrue(streamed(content_type, chunks), chunks)
        for content_type, body in allowed:
            with self.subTest(allowed=body, content_type=content_type):
                self.assertIsNone(body_method_problem(POST_ONLY, content_type, body))
                for chunks in splits(body):
                    self.assertFalse(streamed(content_type, chunks), chunks)

    def test_json_that_python_refuses_or_that_hides_the_key_in_blanks_is_still_read(self) -> None:
        # A number longer than Python's parser takes (PHP's reads it), blanks around the colon
        # longer than any chunk, escapes, a key cut by the chunk boundary.
        refused = (b'{"_method": "DELETE", "n": ' + b"1" * 5000 + b"}",
                   b'{"_method": "DELETE", "n": 1, }',
                   b'{"_method"' + b" " * 100_000 + b': "DELETE"}',
                   b'{"_method": ' + b"\n" * 100_000 + b'"DELETE"}',
                   b'{"\\u005f\\u006d\\u0065\\u0074\\u0068\\u006f\\u0064": "PUT"}')
        for body in refused:
            with self.subTest(refused=body[:40]):
                self.assertIsNotNone(body_method_problem(POST_ONLY, "application/json", body))
                for size in (1, 7, 4096, 65536):
                    chunks = [body[i:i + size] for i in range(0, len(body), size)] if size > 1 or len(body) < 5000 else [body]
                    self.assertTrue(streamed("application/json", chunks), size)
        allowed = (b'{"_method": "POST", "n": ' + b"1" * 5000 + b"}", b'{"note": "_method", "x": "method: DELETE"}',
                   b'{"a": "' + b"method " * 20_000 + b'"}')
        for body in allowed:
            with self.subTest(allowed=body[:40]):
                self.assertIsNone(body_method_problem(POST_ONLY, "application/json", body))
                self.assertFalse(streamed("application/json", [body[i:i + 4096] for i in range(0, len(body), 4096)]))

    def test_a_streamed_json_override_far_into_a_large_body_is_found(self) -> None:
        body = b'{"data": "' + b"x" * (3 * MB) + b'", "_method": "DELETE"}'
        self.assertTrue(streamed("application/json", [body[i:i + 65536] for i in range(0, len(body), 65536)]))
        self.assertFalse(streamed("application/json", [body.replace(b"DELETE", b"POST")[i:i + 65536]
                                                       for i in range(0, len(body), 65536)]))


class AddonStreamedFormTest(AddonCase):
    """The real addon, its streamed path fed by hand as mitmproxy feeds it."""

    run_context = stream_tests.AddonStreamTest.run_context

    def setUp(self) -> None:
        super().setUp()
        policy = copy.deepcopy(POLICY)
        policy["routes"].append({"host": "forms.example", "ports": [443], "matches": [{"methods": ["POST"]}]})
        self.write_policy(policy)

    def form_flow(self, content_type: str, *, size: int | None):
        framing = ("Content-Length", str(size)) if size is not None else ("Transfer-Encoding", "chunked")
        return self.request_flow("forms.example", port=443, scheme="https", method="POST", path="/items/1",
                                 headers=[("Host", "forms.example"), framing, ("Content-Type", content_type)])

    def assert_stopped(self, content_type: str, data: bytes, *, size: int | None) -> bytes:
        flow, _ = self.run_hooks(self.form_flow(content_type, size=size), "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        with self.run_context() as out:
            forwarded = feed_all(flow, data)
        self.assertLess(len(forwarded), len(data))  # the upstream never gets the whole request
        self.assertTrue(flow.metadata[addon_mod.STREAM_ABORTED])
        (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
        self.assertEqual((line["decision"], line["rule"]), ("deny", "match"))
        self.assertIn("_method", line["reason"])
        self.assertIn("upstream request aborted", line["reason"])
        flow, lines = self.run_hooks(flow, "request", "error")
        self.assertEqual(lines, [])  # logged once, nothing let through at the end
        return forwarded

    def test_a_large_urlencoded_upload_asking_for_delete_is_stopped_mid_stream(self) -> None:
        data = b"a=" + b"x" * (5 * MB) + b"&_method=DELETE&b=" + b"y" * (4 * MB)
        forwarded = self.assert_stopped(FORM, data, size=len(data))
        self.assertNotIn(b"_method=DELETE", forwarded)

    def test_a_large_multipart_upload_whose_last_part_asks_for_delete_is_stopped(self) -> None:
        data = part("file", b"z" * (9 * MB)) + part("_method", b"DELETE")
        self.assert_stopped(MULTIPART, data, size=len(data))

    def test_a_chunked_form_asking_for_delete_is_not_forwarded_at_all(self) -> None:
        forwarded = self.assert_stopped(FORM, b"a=1&_method=DELETE", size=None)
        self.assertEqual(forwarded, b"")

    def test_a_large_form_keeping_to_the_allowed_method_passes_unchanged(self) -> None:
        data = b"x_method=DELETE&a=" + b"x" * (9 * MB) + b"&_method=POST"
        flow, _ = self.run_hooks(self.form_flow(FORM, size=len(data)), "requestheaders")
        self.assertIsNotNone(flow.metadata.get(addon_mod.STREAM_FORM_METHOD))
        stream_tests.assert_streams_through(self, flow, data)

    def test_bodies_that_are_not_forms_are_not_read_for_it(self) -> None:
        flow, _ = self.run_hooks(self.form_flow("application/octet-stream", size=16 * MB), "requestheaders")
        self.assertTrue(callable(flow.request.stream))
        self.assertIsNone(flow.metadata.get(addon_mod.STREAM_FORM_METHOD))


if __name__ == "__main__":
    unittest.main()
