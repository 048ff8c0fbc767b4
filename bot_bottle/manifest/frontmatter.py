"""Split a Markdown manifest into YAML frontmatter and body, and parse the YAML keeping lines.

PyYAML's safe constructor loses positions, so we compose the node graph ourselves and build
plain Python values alongside a map from key path to line number. Errors later in validation
look their line up in that map.

YAML 1.1 also types plain words: ``1.10`` becomes 1.1, ``yes`` true, ``0x10`` 16, ``010`` 8 and
``12:30`` 750. Where the schema wants a string (an env literal, a header value) that would hand
the agent something the user never wrote, so the text of every such scalar is kept beside its
typed value and the schema takes the text wherever it expects a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot_bottle.manifest.conceal import HIDDEN, conceal_quoted, conceal_tokens, shown_key
from bot_bottle.manifest.errors import ManifestError

KeyPath = tuple[Any, ...]


@dataclass(frozen=True)
class Document:
    """One manifest file: its parsed frontmatter, its Markdown body and where each key sits."""

    path: Path
    data: dict[str, Any]
    body: str
    lines: dict[KeyPath, int] = field(default_factory=dict)
    frontmatter_line: int = 1
    # Key path -> the text as written, for plain untagged scalars YAML 1.1 typed (see above).
    written: dict[KeyPath, str] = field(default_factory=dict)
    # The file's line the body starts on, the one after the closing ``---``.
    body_line: int = 1
    # The frontmatter's YAML text and where each scalar value is written in it (start and end
    # offsets): a piece of a value (a token inside a long description) is placed at its own line.
    source: str = field(default="", repr=False)
    spans: dict[KeyPath, tuple[int, int]] = field(default_factory=dict, repr=False)
    # Key path -> the column (1-based) its key, or its list item, starts at on its line.
    columns: dict[KeyPath, int] = field(default_factory=dict, repr=False)

    def line_of(self, *keypath: Any) -> int:
        """The line of the deepest known prefix of ``keypath`` (the frontmatter start if none)."""
        return self.place_of(keypath)[0]

    def place_of(self, keypath: KeyPath) -> tuple[int, int | None]:
        """The line and column of the deepest known prefix of ``keypath``: where its key (or list
        item) is written; the frontmatter's start, no column, if none is."""
        path = tuple(keypath)
        while path:
            if path in self.lines:
                return self.lines[path], self.columns.get(path)
            path = path[:-1]
        return self.frontmatter_line, None

    def as_written(self, keypath: KeyPath, value: Any) -> Any:
        """``value`` as the file spelled it when it is a plain scalar YAML 1.1 typed; else ``value``.

        Nulls, strings, lists and mappings come back unchanged, so the caller's type checks
        still reject them.
        """
        if value is None or isinstance(value, (str, list, dict)):
            return value
        return self.written.get(tuple(keypath), value)

    def error(self, keypath: KeyPath, message: str, *, hint: str | None = None) -> ManifestError:
        line, column = self.place_of(keypath)
        return ManifestError(message, path=self.path, line=line, column=column, key=format_key(keypath), hint=hint)

    def place_value(self, keypath: KeyPath, value: str) -> tuple[int, int | None]:
        """Where the string at ``keypath`` is written: its first character that is not blank, on its
        own line (a block scalar's text starts below its key); see ``place_in_value``."""
        start = len(value) - len(value.lstrip())
        return self.place_in_value(keypath, value, start, len(value))

    def place_in_value(self, keypath: KeyPath, value: str, start: int, end: int) -> tuple[int, int | None]:
        """The file's line and column (1-based) where ``value[start:end]``, a piece of the string at
        ``keypath``, is written: searched in that scalar's own text, so a block scalar ('|', '>'),
        or a plain or quoted one over several lines, places it on its line. Where the text spells
        it otherwise (an escape, a line folded inside it): the key's line, no column."""
        span = self.spans.get(tuple(keypath))
        piece = value[start:end].split("\n", 1)[0]  # a private key block's first line is written as it is
        if span is None or not piece:
            return self.line_of(*keypath), None
        written = self.source[span[0]:span[1]]
        at = -1
        for _ in range(value.count(piece, 0, start) + 1):  # its n-th time in the value: written n-th
            at = written.find(piece, at + 1)
            if at < 0:
                return self.line_of(*keypath), None
        return _place(self.source, span[0] + at, self.frontmatter_line)

    def place_in_body(self, offset: int) -> tuple[int, int]:
        """The file's line and column (1-based) of ``self.body[offset]``."""
        return _place(self.body, offset, self.body_line)


def _place(text: str, offset: int, first_line: int) -> tuple[int, int]:
    """Line and column of ``text[offset]``, ``text`` starting at the file's ``first_line``; lines
    end at '\\n' only, as an editor's and grep's do (the text's line ends are '\\n' by then)."""
    return first_line + text.count("\n", 0, offset), offset - text.rfind("\n", 0, offset)


def format_key(keypath: KeyPath) -> str | None:
    """``("egress", "routes", 0, "host")`` -> ``egress.routes[0].host``."""
    out = ""
    for part in keypath:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or None


_DELIM = "---"


def split(text: str, path: Path) -> tuple[str, int, str]:
    """Return (yaml_text, first_yaml_line, body). The file must open with a ``---`` line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n").rstrip() != _DELIM:
        raise _no_opening(lines, path)
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n").rstrip() in (_DELIM, "..."):
            yaml_text = "".join(lines[1:index])
            body = "".join(lines[index + 1 :])
            return yaml_text, 2, body
    raise ManifestError(
        "the YAML frontmatter opened on line 1 is never closed with a '---' line",
        path=path,
        line=1,
    )


def _no_opening(lines: list[str], path: Path) -> ManifestError:
    """The error for a file whose first line is not ``---``: where the ``---`` is when only
    blank or indented lines stand before it (an editor's stray first line), else what to write."""
    hint = "write the settings between two '---' lines at the top, the Markdown body after them"
    if not "".join(lines).strip():
        return ManifestError("the file is empty; a manifest must start with a '---' line opening the YAML frontmatter",
                             path=path, line=1, hint=hint)
    for index, line in enumerate(lines):  # up to the first line that is not blank
        if line.strip() == _DELIM:
            where = "is indented" if index == 0 else f"comes after {index} blank line{'s' if index > 1 else ''}"
            return ManifestError(f"the '---' opening the YAML frontmatter must be the very first line of the file, "
                                 f"unindented; here it {where}", path=path, line=index + 1,
                                 hint="remove the blank lines or spaces before it")
        if line.strip():
            break
    if lines[0].startswith(_DELIM) and lines[0].strip("-\n") and not lines[0].startswith("----"):
        # Not echoed: whatever follows may be anything, a token pasted on the wrong line too.
        return ManifestError("the '---' opening the YAML frontmatter must be alone on the first line; here text "
                             "follows it", path=path, line=1, column=4,
                             hint="move what follows the '---' to the next line, or remove it")
    return ManifestError("the file must start with a '---' line opening the YAML frontmatter",
                         path=path, line=1, hint=hint)


# The tags YAML 1.1 gives plain words that have a typed meaning. Its other implicit tags ('='
# for "value", '<<' for "merge") have no safe constructor: as a value they are just the word.
_TYPED_TAGS = frozenset(
    "tag:yaml.org,2002:" + name for name in ("bool", "int", "float", "null", "timestamp")
)


# No manifest value sits more than eight levels deep (egress.routes[0].matches[0].headers.NAME). The
# pure-Python scanner pays for every open flow bracket on every token, and composing recurses per
# level: thousands of '[' took seconds to end in a RecursionError. Refused at this depth instead.
MAX_DEPTH = 32


class TooDeep(Exception):
    """The YAML nests deeper than ``MAX_DEPTH``; ``line`` and ``column`` are 0-based, where the
    too deep node starts."""

    def __init__(self, line: int, column: int = 0) -> None:
        super().__init__(line, column)
        self.line = line
        self.column = column


class _Marks:
    """Composing that also remembers which scalars carried no tag and were typed implicitly.

    A composed node keeps its text but not whether its tag was written (``!!int 010``) or
    guessed from the text (``010``); only a guessed type may be undone by ``as_written``.
    Mixed into both loaders below, ahead of PyYAML's ``Composer``.
    """

    def _start_marks(self) -> None:
        self.implicit_ids: set[int] = set()
        # (id of a sequence, index) -> line and column (0-based) of an alias found there. An alias
        # composes to the anchored node itself, whose mark is the anchor's: this is where the
        # alias was written.
        self.alias_lines: dict[tuple[int, int], tuple[int, int]] = {}
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if isinstance(parent, yaml.SequenceNode) and self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            self.alias_lines[(id(parent), index)] = (mark.line, mark.column)
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise TooDeep(mark.line, mark.column)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
        event = self.peek_event()
        node: yaml.ScalarNode = super().compose_scalar_node(anchor)
        # implicit[0]: a plain scalar (or the non-specific '!' tag), typed by the resolver.
        if event.tag in (None, "!") and event.implicit[0]:
            self.implicit_ids.add(id(node))
        return node


class _Loader(_Marks, yaml.SafeLoader):
    """The pure-Python loader: the reference, and the one whose words every error quotes."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._start_marks()


def _c_loader() -> type | None:
    """libyaml's scanner and parser under PyYAML's own composer, or None without libyaml.

    Scanning and parsing were most of the time a frontmatter took: a whole read is 4 to 7 times
    faster so. Composing stays the Python code above, so the implicit scalars, the lines of
    aliases, the depth limit and the nodes the builder checks are the same. libyaml words its
    errors otherwise, and reads a few texts otherwise: ``_compose`` leaves both to ``_Loader``.
    """
    if not getattr(yaml, "__with_libyaml__", False):
        return None
    from yaml.composer import Composer
    from yaml.cyaml import CParser
    from yaml.resolver import Resolver

    class CLoader(_Marks, Composer, CParser, Resolver):  # Composer ahead of CParser's own composing
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            Resolver.__init__(self)
            self._start_marks()

    return CLoader


C_LOADER = _c_loader()


@dataclass
class _Composed:
    """The documents of a YAML text as node graphs, with what composing them learnt."""

    nodes: list[yaml.Node]
    implicit_ids: set[int]  # ids of the implicitly typed scalars
    alias_lines: dict[tuple[int, int], tuple[int, int]]  # see ``_Marks._start_marks``


# Where libyaml and the pure-Python scanner read the same text differently, libyaml accepting
# what the other refuses: a tab (inside a plain scalar, before a flow item), '?' inside a flow
# scalar, a tag in a flow list (``[!a, b]``: the comma is part of the tag, or not), a block
# scalar header followed by '#', a byte order mark after the start (libyaml skips it). A text
# with a tab or a mark anywhere, or '?', '!', '|' or '>' outside comment lines, is read by the
# pure-Python loader alone, so a manifest means the same with libyaml or without.
_LIBYAML_DIFFERS_ON = re.compile(r"[?!|>]")


def _libyaml_may_differ(yaml_text: str) -> bool:
    """Whether ``yaml_text`` holds what libyaml may read otherwise (see above); a cheap scan."""
    if "\t" in yaml_text or "\ufeff" in yaml_text:
        return True
    for found in _LIBYAML_DIFFERS_ON.finditer(yaml_text):  # few, if any: most texts have none
        line_start = yaml_text.rfind("\n", 0, found.start()) + 1
        if not yaml_text[line_start:found.start()].lstrip(" ").startswith("#"):
            return True
    return False


def _compose(yaml_text: str) -> _Composed:
    """Compose with libyaml when there is one and the text holds nothing it reads otherwise; on
    any error, read again with the pure-Python loader, whose error (or, where libyaml alone
    refuses the text, whose reading) is the one given: a mistake is worded the same either way."""
    if C_LOADER is not None and not _libyaml_may_differ(yaml_text):
        try:
            return _compose_with(C_LOADER, yaml_text)
        except Exception:  # noqa: BLE001 - whatever libyaml refuses, the reference loader decides
            pass
    return _compose_with(_Loader, yaml_text)


def _compose_with(loader_class: type, yaml_text: str) -> _Composed:
    loader = loader_class(yaml_text)
    try:
        nodes = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return _Composed(nodes, loader.implicit_ids, loader.alias_lines)
    finally:
        loader.dispose()


class _Builder:
    """Turn a composed YAML node graph into plain values, recording the line of every key."""

    def __init__(self, path: Path, line_offset: int, composed: _Composed) -> None:
        self.path = path
        self.offset = line_offset
        self.lines: dict[KeyPath, int] = {}
        self.columns: dict[KeyPath, int] = {}
        self.written: dict[KeyPath, str] = {}
        self.spans: dict[KeyPath, tuple[int, int]] = {}
        self._implicit = composed.implicit_ids
        self._alias_lines = composed.alias_lines
        self._scalars = yaml.constructor.SafeConstructor()
        self._seen: set[int] = set()

    def line(self, node: yaml.Node) -> int:
        return node.start_mark.line + self.offset

    def error(self, message: str, node: yaml.Node, keypath: KeyPath, *, key: str | None = None) -> ManifestError:
        """An error at ``node``'s line and column, naming ``key`` (else ``keypath``)."""
        return ManifestError(message, path=self.path, line=self.line(node), column=node.start_mark.column + 1,
                             key=key or format_key(keypath))

    def build(self, node: yaml.Node, keypath: KeyPath) -> Any:
        # An alias reuses a node; refusing them keeps provenance exact and stops alias bombs.
        # The reused node's own mark is the anchor's, so point at the key holding the alias.
        if id(node) in self._seen:
            message = "YAML anchors and aliases are not supported; use 'extends' to share settings"
            if keypath in self.lines:
                raise ManifestError(message, path=self.path, line=self.lines[keypath],
                                    column=self.columns.get(keypath), key=format_key(keypath))
            raise self.error(message, node, keypath)
        self._seen.add(id(node))
        plain_tag = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}
        if type(node) in plain_tag and node.tag != plain_tag[type(node)]:
            # Safe loading refuses these tags; ignoring them would silently change the meaning.
            raise self.error(conceal_quoted(f"cannot read this value: the tag {node.tag!r} is not supported"), node,
                             keypath)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, keypath)
        if isinstance(node, yaml.SequenceNode):
            out = []
            for index, item in enumerate(node.value):
                # An alias's own place: the anchored node's mark is the anchor's.
                alias_at = self._alias_lines.get((id(node), index))
                line, column = alias_at if alias_at is not None else (item.start_mark.line, item.start_mark.column)
                self.lines[keypath + (index,)] = line + self.offset
                self.columns[keypath + (index,)] = column + 1
                out.append(self.build(item, keypath + (index,)))
            return out
        if isinstance(node, yaml.ScalarNode):
            self.spans[keypath] = (node.start_mark.index, node.end_mark.index)
            implicit = id(node) in self._implicit
            if implicit and node.tag not in _TYPED_TAGS:
                return node.value
            value = self._construct(node, keypath)
            if implicit and value is not None and not isinstance(value, str):
                self.written[keypath] = node.value
            return value
        raise self.error("unsupported YAML node", node, keypath)

    def _construct(self, node: yaml.ScalarNode, keypath: KeyPath) -> Any:
        try:
            return self._scalars.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", exc)
        except ValueError:  # PyYAML's own slip: ``0x_`` passes its check for an int, then int() fails
            kind = node.tag.rsplit(':', 1)[-1]
            # Python reads no int of more than 4300 digits; echoing thousands would bury the line.
            problem = (f"{node.value!r} is not a valid {kind}" if len(node.value) <= 40
                       else f"it is {len(node.value)} characters long, too long to read as {kind}")
        raise self.error(conceal_quoted(f"cannot read this value: {problem}"), node, keypath)

    def _mapping(self, node: yaml.MappingNode, keypath: KeyPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.error("YAML merge keys ('<<') are not supported; use 'extends' to share settings",
                                 key_node, keypath, key=format_key(keypath) or "<<")
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error("a key must be a plain word, not a list or a mapping", key_node, keypath)
            # Keys are names: `NO:` or `on:` is the word as written, not a YAML 1.1 boolean.
            key = key_node.value if id(key_node) in self._implicit else self._construct(key_node, keypath)
            if not isinstance(key, str):
                key = str(key_node.value)
            sub = keypath + (key,)
            if key in out:
                raise self.error(f"the key '{shown_key(key)}' appears twice (first on line {self.lines[sub]})",
                                 key_node, sub)
            self.lines[sub] = self.line(key_node)
            self.columns[sub] = key_node.start_mark.column + 1
            out[key] = self.build(value_node, sub)
        return out


def yaml_problem(exc: yaml.MarkedYAMLError, offset: int) -> str:
    """The parser's problem, with where the construct it was reading began when that is on
    another line: an unclosed quote or bracket is reported where the file ends, far from it."""
    problem = exc.problem or exc.context or "invalid YAML"
    start, end = exc.context_mark, exc.problem_mark
    if exc.problem and exc.context and start is not None and end is not None and start.line != end.line:
        construct = exc.context.removeprefix("while ").removeprefix("scanning ").removeprefix("parsing ")
        problem += f" (in {construct} that begins on line {start.line + offset})"
    return problem


def parse(text: str, path: Path) -> Document:
    """Parse a manifest file's text into a ``Document``; every problem is a ``ManifestError``."""
    try:
        return _parse(unix_line_ends(text), path)
    except RecursionError:
        # PyYAML and the builder recurse per level: hundreds of nested brackets exhaust the stack.
        raise ManifestError("the frontmatter is nested too deeply to read (no manifest key needs more than "
                            "a few levels)", path=path, line=1) from None


def _parse(text: str, path: Path) -> Document:
    yaml_text, first_line, body = split(text, path)
    if len(yaml_text) > MAX_FRONTMATTER_CHARS:
        raise ManifestError(
            f"the YAML frontmatter is longer than {MAX_FRONTMATTER_CHARS // 1024} KiB; the settings of a bottle or "
            "an agent take a few KiB", path=path, line=first_line,
            hint="the Markdown body after the closing '---' may be long; settings this long belong in several "
                 "bottles joined with 'extends', or in a file in the working tree")
    # Marks are 0-based and count from the first frontmatter line.
    offset = first_line
    # Counted in '\n' as every other line a body's error names: ``splitlines`` also ends a line at
    # a form feed, U+2028 and the like, which a YAML string may hold.
    body_line = 1 + text.count("\n", 0, len(text) - len(body))
    try:
        composed = _compose(yaml_text)
    except TooDeep as exc:
        raise ManifestError(f"the frontmatter is nested too deeply to read: more than {MAX_DEPTH} levels here (no "
                            "manifest key needs more than a few levels)", path=path, line=exc.line + offset,
                            column=exc.column + 1) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + offset if mark is not None else first_line
        # YAML indents with spaces only: a tab is the one mistake its words do not explain.
        hint = "indent with spaces; YAML does not allow tabs there" if "'\\t'" in (exc.problem or "") else None
        column = mark.column + 1 if mark is not None else None
        # Where the construct being read began (an unclosed quote or bracket), else the mistake:
        # a block mapping or list begins at its first key, far above a misindented line.
        block = "block" in (exc.context or "")
        read_at = exc.problem_mark if block else exc.context_mark or exc.problem_mark
        within = _within(yaml_text, read_at.line, read_at.column, offset, line) if read_at is not None else ""
        raise ManifestError(f"invalid YAML{within}: {conceal_quoted(yaml_problem(exc, offset))}", path=path,
                            line=line, column=column, hint=hint) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, most controls)
        line, column = _place(yaml_text, exc.position, first_line)
        within = _within(yaml_text, line - first_line, column - 1, offset, line)
        raise ManifestError(f"invalid YAML{within}: the character #x{exc.character:04x} is not allowed in YAML "
                            "text", path=path, line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"invalid YAML: {exc}", path=path, line=first_line) from None
    except ValueError:  # the scanner's chr() of an escape past the last character, "\U00110000"
        line, column = _escape_past_unicode(yaml_text, first_line)
        raise ManifestError("invalid YAML: an escape in a double-quoted string names no character (the last one "
                            "is \\U0010FFFF)", path=path, line=line, column=column) from None
    nodes = composed.nodes
    if len(nodes) > 1:
        raise ManifestError("the frontmatter holds more than one YAML document", path=path, line=first_line)
    node = nodes[0] if nodes else None
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
        return Document(path=path, data={}, body=body, lines={}, frontmatter_line=first_line, body_line=body_line,
                        source=yaml_text)
    if not isinstance(node, yaml.MappingNode):
        raise ManifestError(
            "the frontmatter must be a mapping of keys to values",
            path=path,
            line=node.start_mark.line + offset,
            column=node.start_mark.column + 1,
        )
    builder = _Builder(path, offset, composed)
    data = builder.build(node, ())
    return Document(
        path=path, data=data, body=body, lines=builder.lines, frontmatter_line=first_line, written=builder.written,
        body_line=body_line, source=yaml_text, spans=builder.spans, columns=builder.columns,
    )


# A line that writes a key: its indent, the list dashes before the key, the key (plain, or quoted;
# a word or a few, no flow brackets) and its ':'. A text reading only, once the parser has refused
# the frontmatter: it names the key a mistake sits under, as a user looks for it.
_KEY_LINE = re.compile(
    r"""(?P<indent>[ \t]*)(?P<dashes>(?:-[ \t]+)*)"""
    r"""(?P<key>"(?:[^"\\\n]|\\.){0,200}"|'(?:[^'\n]|''){0,200}'"""
    r"""|[^\s#'"\[\]{},&*!|>%@`?-][^\n#\[\]{},]{0,200}?|-[^\s#\[\]{},][^\n#\[\]{},]{0,200}?)"""
    r"""[ \t]*:(?=[ \t]|$)""",
)


def _indent(text: str) -> int:
    """Columns of blank before ``text``, a tab to the next multiple of 8, as an editor shows it."""
    return len(text.expandtabs(8)) if text else 0


_DASHES = re.compile(r"[ \t]*-(?=[ \t]|$)")


def _key_line(line: str) -> tuple[str, int, int | None, int] | None:
    """A line's key, the column its key starts at (tabs expanded), its first list dash's column
    (None without one) and where its ':' is (in characters); None when the line writes no key."""
    found = _KEY_LINE.match(line)
    if found is None:
        return None
    key = found.group("key")
    if key[0] in "'\"":
        key = key[1:-1].replace("''", "'") if key[0] == "'" else key[1:-1]
    dash = _indent(found.group("indent")) if found.group("dashes") else None
    return key, _indent(line[:found.start("key")]), dash, found.end() - 1


def _key_path(lines: list[str], at: int, column: int) -> tuple[list[Any], int] | None:
    """The key path a user would look under for line ``at``, column ``column`` (both 0-based):
    the key written on that line before the column, else the nearest key above at a lower
    indent, then its parents, each the nearest key above at a lower indent again (a list item
    counted among the dashes at its indent). With the line of the innermost key; None if none."""
    path: list[Any] = []
    found_line: int | None = None
    item: int | None = None  # the dash column of the list item being walked out of
    index = 0
    own = _key_line(lines[at])
    if own is not None and own[3] < column:
        path.append(own[0])
        found_line, limit, item = at, own[1], own[2]
    else:
        dashes = _DASHES.match(lines[at])
        blank = lines[at][: len(lines[at]) - len(lines[at].lstrip(" \t"))]
        limit = _indent(blank)
        # In the item when its dash was read before the mistake (not a tab before the dash).
        item = limit if dashes is not None and dashes.end() <= column else None
        found_line = at if item is not None else None
    for number in range(at - 1, -1, -1):
        if limit == 0 and item is None:
            break
        parsed = _key_line(lines[number])
        if parsed is None:
            dashes = _DASHES.match(lines[number]) if item is not None else None
            if dashes is not None and _indent(lines[number][: dashes.end() - 1]) == item:
                index += 1  # an earlier item of the same list, a scalar or a collection below
            continue
        key, key_column, dash, _colon = parsed
        if item is not None:
            if dash == item:
                index += 1  # an earlier item of the same list
                continue
            if key_column >= item and (dash is None or dash > item):
                continue  # inside an earlier item
            path.append(index)
            limit, item, index = item, None, 0
        if dash is not None and dash < limit <= key_column:
            item = dash  # a sibling key of the item's first line: the item, not a parent
            found_line = number if found_line is None else found_line
            continue
        if key_column < limit:
            path.append(key)
            found_line = number if found_line is None else found_line
            limit, item = key_column, dash
    if item is not None:
        path.append(index)
    if found_line is None:
        return None
    return path[::-1], found_line


# A key as a syntax error may name it: a name of the sort manifests use. What the text reading
# took for a key may be any text on a broken line, a token pasted there too.
_NAMEABLE = re.compile(r"[\w. -]{1,64}")


def _named(part: str) -> str:
    """``part`` as the error names it: itself when a plain name that is no credential, else ``HIDDEN``."""
    return part if _NAMEABLE.fullmatch(part) and shown_key(part) == part else HIDDEN


def _within(yaml_text: str, at: int, column: int, offset: int, error_line: int) -> str:
    """`` in the value of 'KEY'`` (and its line, when not the error's) for a YAML error read at
    line ``at``, ``column`` (0-based in ``yaml_text``); "" when no key is written above it. A
    mark past the last line (the text ended inside a bracket) is read at the last line's end."""
    lines = yaml_text.split("\n")
    if at >= len(lines) or not lines[at].strip():
        at = next((n for n in range(min(at, len(lines) - 1), -1, -1) if lines[n].strip()), -1)
        if at < 0:
            return ""
        column = len(lines[at])
    found = _key_path(lines, at, column)
    if found is None:
        return ""
    path, line = found
    named = conceal_tokens(format_key(tuple(_named(p) if isinstance(p, str) else p for p in path)) or "")
    where = "" if line + offset == error_line else f" (line {line + offset})"
    return f" in the value of '{named}'{where}"


_LONG_ESCAPE = re.compile(r"\\U([0-9A-Fa-f]{8})")


def _escape_past_unicode(yaml_text: str, first_line: int) -> tuple[int, int | None]:
    """Where the first ``\\U`` escape (eight hex digits) past the last character is written; the
    frontmatter's first line, no column, if none is found (the scanner refused something else)."""
    for found in _LONG_ESCAPE.finditer(yaml_text):
        if int(found.group(1), 16) > 0x10FFFF:
            return _place(yaml_text, found.start(), first_line)
    return first_line, None


def not_utf8(path: Path, line: int = 1, column: int | None = None) -> ManifestError:
    return ManifestError("the file is not UTF-8 text", path=path, line=line, column=column,
                         hint="save it as UTF-8 text")


def _first_bad_byte(data: bytes, bad: int) -> tuple[int, int]:
    """The line and column (1-based) of ``data[bad]``, the first byte that is not UTF-8: lines
    counted in '\\n' as grep counts them, the column in the characters of the valid text before
    it on its line (a BOM opening the file is not a column, as an editor does not show one)."""
    prefix = data[:bad].decode("utf-8")
    if prefix.startswith("\ufeff"):
        prefix = prefix[1:]
    return prefix.count("\n") + 1, len(prefix) - prefix.rfind("\n")


# A manifest holds keys and a prompt: 2 MiB is far beyond any real one (a model's whole context
# is less), and bounds what validate, the plan and edit spend on a file that is not one (a log
# or a dump saved by mistake took 35 s to validate at 42 MB).
MAX_MANIFEST_BYTES = 2 * 1024 * 1024


# The YAML parser reads about 100 KiB a second of dense settings (every route a few tokens): a
# frontmatter near the whole file's limit kept validate, the plan and list busy for a minute and
# more. 256 KiB holds two literals of the longest a variable may be, and thousands of routes.
MAX_FRONTMATTER_CHARS = 256 * 1024


def too_large(path: Path) -> ManifestError:
    return ManifestError(
        f"the file is larger than {MAX_MANIFEST_BYTES // (1024 * 1024)} MiB; a manifest holds keys and a prompt",
        path=path, hint="keep large material in the workspace and point the prompt at it",
    )


def decode(data: bytes, path: Path) -> str:
    """A manifest's bytes as text, line ends made ``\\n`` (as text mode reads them); not UTF-8 is
    a ``ManifestError`` naming ``path`` and the line of the first byte that is not, and so is a
    file over ``MAX_MANIFEST_BYTES``."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise too_large(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, *_first_bad_byte(data, exc.start)) from None
    return unix_line_ends(text)


def unix_line_ends(text: str) -> str:
    """``text`` with CRLF and lone CR line ends made ``\\n``, as text mode reads a file. Text that
    reaches ``parse`` without ``decode`` (an override, the API) must split into the same body
    paragraphs and the same prompt: a CRLF body's blank line is ``\\r\\n\\r\\n``."""
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path) -> str:
    """A manifest file's text; not UTF-8 or unreadable is a ``ManifestError`` naming it."""
    try:
        with path.open("rb") as handle:  # bounded, as /dev/zero never ends
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"cannot read the file: {exc.strerror or exc}", path=path) from None
    return decode(data, path)


def read(path: Path, text: str | None = None) -> Document:
    """Read and parse a manifest file (``text`` overrides the file's content, for `edit`)."""
    return parse(read_text(path) if text is None else text, path)
