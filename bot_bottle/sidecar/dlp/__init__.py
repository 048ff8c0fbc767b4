"""DLP engine shared by the egress proxy and git-gate: finds credentials in what leaves a bottle
and prompt injection in what comes back. Standard library only (``brotli`` is used when present);
no mitmproxy, no network.

API::

    scanner = Scanner(secrets={"GITHUB_TOKEN": "...", "DB_PASSWORD": "..."},
                      options=ScanOptions(tokens=True, known_secrets=True, entropy=False))
    scanner.skipped_secrets                      # names too short to scan (< 8 chars): warn
    scanner.scan_request(method, url, headers, body, skip_headers=("authorization",))
                                                 # -> list[Finding]
    scanner.redact_request(method, url, headers, body, skip_headers=...)
                                                 # -> RedactedRequest(url, headers, body, findings,
                                                 #    unredacted, drop_content_encoding, changed)
    scanner.scan_host("6768705f....evil.example")  # -> list[Finding]
    scanner.scan_message(text_or_bytes)          # WebSocket message -> list[Finding]
    scanner.scan_text(text_or_bytes, location="path/in/repo", deep=False)  # files -> list[Finding]
    scanner.redact_text(text_or_bytes)           # -> Redaction(content, findings, unredacted, changed)
    scanner.redact_echoed_secrets(response_body) # the bottle's own secrets only -> Redaction
    scan_response_for_injection(text)            # -> list[Finding], confidence medium | high
    short_secrets(mapping)                       # -> names of values too short to scan

``Finding(detector, name, location, start, end, confidence, secret_name, encoding)`` never holds
the matched value: ``repr``, ``str`` and ``to_dict()`` (for JSON logs) are safe to print.
``detector`` is a stable id (``DETECTOR_IDS``, ``known-secret``, ``high-entropy``,
``scan-limit``, ``injection-*``); ``secret_name`` names which bottle secret matched;
``encoding`` says how it was disguised (``base64``, ``hex``, ``url``, ``reversed``, ``split``,
``base32``, ``base32hex``, ``utf-16``, ``base85``, ``ascii85``, ``uuencode``, ``charcodes`` (a list of
character codes), ``rot13``, ``rot47``, ``caesar`` (another letter shift), ``atbash``,
``reversed+base64`` (base64 read backwards), ``every-other`` (every other character),
``spread`` (separators between the characters), ``hexdump`` (``xxd``, ``hexdump -C``, ``od -x``,
``od -c``, ``od -b``, ``xxd -b``),
``nfkc`` (fullwidth and other Unicode compatibility forms, tag characters), ``case`` (another
letter case),
``escape`` (``\\uHHHH``, ``\\xNN``, ``&#NN;``), combinations such as ``url+base64``).
``start``/``end`` index the text named by
``location`` (``url.host``, ``url.path``, ``url.query.q``, ``header:x-api-key``, ``body``,
``body.json:$.messages[0].content``, ``body.form.password``, ``body.multipart[1].content``,
``message``, ``host``, ``method``); a split names every piece (``url.query.a+url.query.b``) with ``start`` in
the first and ``end`` in the last. Names chosen by the agent (keys, parameters, headers) appear in
locations only when they are short, plain words, not flagged themselves and hold no 5 characters
in a row of a bottle secret (otherwise ``[?]`` or an index stands in for them).

What is scanned, and how:

- token formats (``tokens``): AWS access key ids and secret keys, Google API keys, OAuth tokens
  and client secrets, GCP service-account keys, Azure storage keys and SAS signatures, GitHub,
  GitLab, Slack (tokens and webhooks), Stripe, Anthropic, OpenAI, npm and PyPI tokens, private
  key blocks, JWTs (GitHub tokens also lower-cased, Anthropic keys upper-cased), and
  ``password = "..."``-style assignments with a strong literal value;
- the bottle's own secrets (``known_secrets``): raw, in any letter case (values of 16+
  characters), reversed, hex (also with blanks), percent-encoded (fully or partially), UTF-16
  (and its base64), base32, base64 and URL-safe base64 at every byte offset (so inside larger
  blobs, with or without padding), base85 and ascii85 at every byte offset, also wrapped into
  lines and in the unescaped layer, uuencode, base32hex, base64 read backwards, ROT47, every
  other character, letter shifts and atbash,
  spelled out with separators (its characters, hex, bits, octal codes, and base64 wrapped at any
  width; deep scans only), base32 in host names, and split across
  fields (adjacent pieces, or pieces in any order that together cover the value, cookies and
  the names of keys, parameters and headers among them);
- optional entropy (``entropy``): long random-looking tokens, skipping hashes, UUIDs, integrity
  strings and image data;
- requests: the host of an absolute URL (a path-only URL needs ``scan_host`` for the target),
  and, judged as hosts too, the names a request asks a resolver for (DNS over HTTPS: a query
  message in a ``?dns=`` parameter or an ``application/dns-message`` body; a ``?name=`` of
  three labels or more; location ``... (DNS name)``, never redacted),
  the URL path and every query parameter (decoded), all header names and values but the skipped
  ones, and the body after undoing gzip/deflate/br (at most ``max_body_bytes`` decompressed:
  beyond that a ``scan-limit`` finding asks the caller to block; so does a Content-Encoding that
  does not decode), then compression nobody declared (gzip, zlib, bzip2, xz by magic number, a
  few layers deep) and tar and zip archives, in the body and in multipart files (``archives``;
  what cannot be read whole within the limits is a ``scan-limit`` too), taking JSON, form and
  multipart bodies apart; values are also base64-, hex- (also wrapped into lines, and hex dumps
  with offsets: ``xxd``, ``hexdump -C``, ``od -t x1``, ``od -x``, and the character, octal and bit
  dumps ``od -c``, ``od -b``, ``xxd -b``) and percent-decoded, lists of 8+ character codes (decimal
  or ``0x`` hex, quoted or not, code points up to U+10FFFF) and 8+ character-code calls joined
  (``chr(75)+chr(113)``, SQL ``CHAR(75)+CHAR(113)``, ``CHR(75)||...``, ``CONCAT(CHAR(75), ...)``) decoded,
  fullwidth and other compatibility characters folded (NFKC, only in texts that are not
  ASCII), unescaped (``\\uHHHH`` and ``\\u{..}``, ``\\xNN``, octal ``\\NNN`` and ``\\0NNN``, JSON's ``\\"``, ``\\\\``, ``\\/``,
  ``\\n`` and the like, HTML ``&#NN;``/``&#xHH;``: what a JSON parse undoes only in a body it
  parsed) and base64 of gzip inflated (a tarball included), two levels deep, to find formats
  hidden under an encoding.
  Files (``scan_text`` without ``deep``) are scanned as written.

Redaction replaces each value, in the form it was found, with ``[REDACTED:<secret name or
detector id>]``: JSON stays JSON, forms stay forms, and a compressed body comes back
decompressed with ``drop_content_encoding`` set. ``unredacted`` lists whatever is still present
after the rewrite (a host name, a body past the scan limit): the caller must block those.

Limits, by design or not yet covered: values shorter than ``min_secret_length`` are not searched;
token formats are found under at most two encoding layers and not inside base64 of mostly binary
data (the bottle's own secrets are, at any offset); of the ciphers, only letter shifts and atbash
of the bottle's secrets are undone (``dlp.shifts``), not XOR or keyed ones; pieces of a known secret are matched in any order when each is 4+ characters,
pieces of a token format only when adjacent; token formats in host names need the host's
original case; bodies over ``structured_limit`` and bodies or queries with more than 10,000
fields are scanned as text, without taking them apart (a JSON body's parsed keys and values,
with its duplicate keys' and its character codes, are then scanned joined, decoded layers
included, at ``body.json (values)``, and its raw text as sent).
"""

from __future__ import annotations

from bot_bottle.sidecar.dlp.bodies import brotli_available
from bot_bottle.sidecar.dlp.findings import (
    CONFIDENCES,
    ENTROPY,
    HIGH,
    KNOWN_SECRET,
    LOW,
    MEDIUM,
    SCAN_LIMIT,
    Finding,
    confidence_at_least,
    max_confidence,
)
from bot_bottle.sidecar.dlp.inbound import scan_response_for_injection
from bot_bottle.sidecar.dlp.known import MIN_SECRET_LENGTH, short_secrets
from bot_bottle.sidecar.dlp.scanner import RedactedRequest, Redaction, Scanner, ScanOptions, detector_name
from bot_bottle.sidecar.dlp.tokens import DETECTOR_IDS, DETECTOR_NAMES

__all__ = [
    "CONFIDENCES",
    "DETECTOR_IDS",
    "DETECTOR_NAMES",
    "ENTROPY",
    "HIGH",
    "KNOWN_SECRET",
    "LOW",
    "MEDIUM",
    "MIN_SECRET_LENGTH",
    "SCAN_LIMIT",
    "Finding",
    "RedactedRequest",
    "Redaction",
    "ScanOptions",
    "Scanner",
    "brotli_available",
    "confidence_at_least",
    "detector_name",
    "max_confidence",
    "scan_response_for_injection",
    "short_secrets",
]
