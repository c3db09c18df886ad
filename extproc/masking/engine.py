"""The masking engine: a JSON-RPC response (or any JSON, or one SSE event's data) in,
the same document with its PHI masked out, and a report of what was masked: entity
types, counts and JSON paths, never the values.

Every string is scanned; a string that is itself JSON (MCP tools often return their
result as JSON text in `content[].text`) is walked as JSON and written back as JSON.
Field rules mask a key's value whatever it looks like, numbers and objects included. The
values they mark are also looked for in the document's free text (a clinical note that
repeats the patient's name, or just the first name), which no pattern could know."""

from __future__ import annotations

import re
import time
from collections import ChainMap, Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cel_expr_python import cel

from custos.errors import CustosError, LimitExceeded
from custos.policy import PolicyInput
from custos.policy.document import compile_condition
from custos.policy.environment import activations
from extproc.masking import dicom, hl7, json_codec, markup, tables, vcard, x12
from extproc.masking.actions import apply
from extproc.masking.config import MaskingConfig
from extproc.masking.detectors import BUILTIN_ENTITIES, PatternSpec, Scanner, ScannerSpec
from extproc.masking.fields import FieldRules, Path, render
from extproc.masking.findings import Finding, joined, trimmed
from extproc.masking.grids import column_names, grid_findings
from extproc.masking.lexicon import BuiltinKeys
from extproc.masking.literals import LiteralFinder, literal_finder
from extproc.masking.names import NameFinder, dictionaries
from extproc.masking.schemas import widened

# JSON-RPC's own members: never PHI, and masking them would break the protocol.
_ENVELOPE = frozenset({"jsonrpc", "id", "method"})
# The protocol members of the results of initialize and server/discover, left as they are
# in those answers only: a protocol version looks like a date.
_HANDSHAKE = frozenset(
    {"protocolVersion", "supportedVersions", "capabilities", "serverInfo", "instructions"}
)
# What a client calls and shows a listed tool by: never masked (a field rule for `name`
# would rename it, and "Patient Lookup" reads as a title and a name).
_TOOL_PROTOCOL = frozenset({"name", "title", "inputSchema", "outputSchema", "annotations", "icons"})
# Keys MCP itself defines: never PHI, and renamed they would break the client's parsing.
_PROTOCOL_KEYS = frozenset(
    {
        *("content", "contents", "structuredContent", "isError", "type", "text", "data"),
        *("uri", "uriTemplate", "mimeType", "blob", "resource", "name", "title"),
        *("description", "annotations", "audience", "priority", "lastModified", "_meta"),
        *("tools", "resources", "resourceTemplates", "prompts", "messages", "role"),
        *("nextCursor", "progressToken", "progress", "total", "message", "level", "logger"),
        *("code", "size", "icons", "src", "sizes", "arguments"),
    }
)
_DROPPED = object()
_LAID_OUT = re.compile(r"[\r\n:=|]|[A-Z] [A-Z0-9]")  # lines, pairs, or a line in capitals
_SHARED_DOCUMENTS = 4
_MIN_WHOLE = 3  # as the literal finder's shortest term
_CLEAN_KEYS, _CLEAN_KEY_CHARS = 4096, 64
_CARRIED, _CARRIED_CHARS = 500, 32_768  # marked values carried along one stream
# A list's rows read as a table's: at least this many, at most that many, short strings.
_MIN_ROWS, _MAX_ROWS, _MAX_CELL = 3, 1000, 80
_GRID_PROBE = 4096  # a text is read for grids when its first characters hold lines enough


class MaskingError(CustosError):
    """A body that must be masked cannot be: the client gets an error, never the bytes."""

    code = "masking_failed"


class BodyTooLarge(MaskingError, LimitExceeded):
    code = "body_too_large"


@dataclass
class MaskReport:
    counts: Counter[str] = field(default_factory=Counter)
    # Paths are kept as the walk built them and rendered once, for the report's reader.
    _paths: defaultdict[str, set[Path]] = field(default_factory=lambda: defaultdict(set))

    def add(self, entity: str, path: Path, count: int = 1) -> None:
        self.counts[entity] += count
        self._paths[entity].add(path)

    def add_under(self, root: Path, other: MaskReport) -> None:
        """`other`, whose paths are relative to `root`, as found under `root`."""
        self.counts.update(other.counts)
        for entity, paths in other._paths.items():
            self._paths[entity].update((*root, *path) for path in paths)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {
            entity: {"count": count, "paths": sorted({render(p) for p in self._paths[entity]})}
            for entity, count in sorted(self.counts.items())
        }


class Masker:
    def __init__(self, config: MaskingConfig) -> None:
        self.config = config
        self._scanner = Scanner(
            ScannerSpec(
                custom=tuple(PatternSpec(p.entity, p.regex) for p in config.patterns),
                words=dict(config.words),
                builtin=config.detectors,
                ssn_test_areas=config.ssn_test_areas,
            )
        )
        # Keys: everything but names after a title, which "Patient Name" would be.
        builtin = BUILTIN_ENTITIES if config.detectors is None else config.detectors
        self._key_scanner = Scanner(
            ScannerSpec(
                custom=tuple(PatternSpec(p.entity, p.regex) for p in config.patterns),
                words=dict(config.words),
                builtin=frozenset(builtin) - {"name"},
                ssn_test_areas=config.ssn_test_areas,
            )
        )
        # Numbers: only the operators' own formats (an MRN of digits). A bare number has no
        # shape of its own, and Luhn alone passes one timestamp in ten as a card or an NPI.
        self._number_scanner = (
            Scanner(
                ScannerSpec(
                    custom=tuple(PatternSpec(p.entity, p.regex) for p in config.patterns),
                    builtin=frozenset(),
                )
            )
            if config.patterns
            else None
        )
        self._clean_keys: set[str] = set()
        self._fields = FieldRules((rule.path, rule.entity) for rule in config.fields)
        self._builtin = BuiltinKeys(config.builtin_keys_off) if config.builtin_keys else None
        names = config.detectors is None or "name" in config.detectors
        self._names = NameFinder(dictionaries()) if names else None
        self._key = config.pseudonym_key.read() if config.pseudonym_key else b""
        self._exceptions = [(e, compile_condition(e.when)) for e in config.exceptions]
        self._dropping = "drop" in (config.default_action, *config.actions.values())

    def unmasked_for(self, inp: PolicyInput | None) -> frozenset[str]:
        """The entities this caller may see unmasked, by the configured exceptions. An
        exception that fails to evaluate grants nothing."""
        if inp is None:
            return frozenset()
        # A batch's answers are masked as one: what every call of it is granted, no more.
        granted: frozenset[str] | None = None
        for activation in activations(inp):
            this: set[str] = set()
            for exception, condition in self._exceptions:
                value = condition.eval(activation)
                if value.type() == cel.Type.BOOL and value.value() is True:
                    this.update(exception.entities)
            granted = frozenset(this) if granted is None else granted & this
        return granted or frozenset()

    def mask_body(
        self, body: bytes, report: MaskReport, keep: frozenset[str] = frozenset()
    ) -> bytes:
        """A whole JSON body (a response or a batch of them)."""
        return self.mask_json_text(self.decoded(body), report, keep).encode()

    def decoded(self, body: bytes) -> str:
        if len(body) > self.config.max_body_bytes:
            limit = self.config.max_body_bytes
            raise BodyTooLarge(f"the answer exceeds max_body_bytes ({limit})")
        if b"\x00" in body:  # UTF-16 reads as ASCII and NULs: the masker would see nothing
            raise MaskingError("body holds NUL bytes")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MaskingError("body is not UTF-8") from exc

    def mask_text(
        self,
        text: str,
        report: MaskReport,
        deadline: float | None = None,
        carried: Carried | None = None,
    ) -> str:
        """Free text outside any JSON document (a plain-text body, an SSE comment), with
        the marked values `carried` from the stream so far."""
        found = Counter[str]()
        _check(deadline)
        findings = self._detect(text)
        known = _values(text, findings)
        earlier = carried.finder() if carried is not None else None
        if carried is not None:
            carried.add(known)
        walk = _Walk(report, _both(literal_finder(known), earlier), deadline=deadline)
        walk.scanned[text] = findings
        masked = self._free_text(text, found, walk)
        for entity, count in found.items():
            report.add(entity, (), count)
        return masked

    def mask_json_text(
        self,
        text: str,
        report: MaskReport,
        keep: frozenset[str] = frozenset(),
        handshake: bool = False,
        deadline: float | None = None,
        carried: Carried | None = None,
    ) -> str:
        """`handshake`: the answer to a protocol method, whose results' protocol members
        pass as they are (everything else in it is masked, notifications included).
        `deadline` (`time.monotonic()`): past it, masking stops with a MaskingError.
        `carried`: the marked values of a stream's earlier events, looked for here too;
        this document's are added to them."""
        document = _parsed(text)
        messages = document if isinstance(document, list) else [document]
        try:
            walk = self._walk_of([(document, ())], report, keep, handshake, deadline, carried)
            masked = [self._message(m, walk) for m in messages]
        except RecursionError as exc:
            raise MaskingError("body is nested too deeply to mask") from exc
        return json_codec.dumps(masked if isinstance(document, list) else masked[0])

    def mask_tool_listing(
        self,
        text: str,
        report: MaskReport,
        keep: frozenset[str] = frozenset(),
        deadline: float | None = None,
        carried: Carried | None = None,
    ) -> str:
        """A `tools/list` answer as the tool filter left it (its shape checked there): what
        the server writes about each tool (its description, `_meta`, members MCP does not
        define) and the result's `_meta` are masked; what the client calls and shows a
        tool by (name, title, input schema, annotations, icons) and the cursor it pages
        with pass as they are; the output schema is widened to what masking may make of
        the tool's answers (`schemas.widened`)."""
        document = _parsed(text)
        results = [m["result"] for m in (document if isinstance(document, list) else [document])]
        # Marked values are looked for again in what is masked, as in any other answer.
        masked: list[tuple[Any, Path]] = [
            (value, ("result", "tools", i, key))
            for result in results
            for i, tool in enumerate(result["tools"])
            for key, value in tool.items()
            if key not in _TOOL_PROTOCOL
        ]
        masked += [(r["_meta"], ("result", "_meta")) for r in results if "_meta" in r]
        try:
            walk = self._walk_of(masked, report, keep, deadline=deadline, carried=carried)
            for message in document if isinstance(document, list) else [document]:
                result = message["result"]
                result["tools"] = [
                    self._tool(tool, ("result", "tools", i), walk)
                    for i, tool in enumerate(result["tools"])
                ]
                if "_meta" in result:
                    meta = self._value(result["_meta"], ("result", "_meta"), walk, result)
                    result["_meta"] = None if meta is _DROPPED else meta
        except RecursionError as exc:
            raise MaskingError("body is nested too deeply to mask") from exc
        return json_codec.dumps(document)

    def _tool(self, tool: dict[str, Any], path: Path, walk: _Walk) -> dict[str, Any]:
        rebuilt = _Rebuilt(tool)
        for key, value in tool.items():
            if key == "outputSchema":  # what the client holds the masked answers to
                rebuilt.out[key] = widened(value, self._dropping)
            elif key in _TOOL_PROTOCOL:
                rebuilt.out[key] = value
            else:
                rebuilt.put(key, self._member(key, value, path, walk, tool))
        return rebuilt.out

    def mask_request_body(
        self, body: bytes, report: MaskReport, deadline: float | None = None
    ) -> bytes:
        """A JSON-RPC request (or a batch): the `arguments` of each call masked, for an
        MCP server that must not see PHI. Nothing else: the method, the tool's name and
        the ids are what the server acts on."""
        document = _parsed(self.decoded(body))
        messages = document if isinstance(document, list) else [document]
        calls = [
            params
            for message in messages
            if isinstance(message, dict)
            and isinstance(params := message.get("params"), dict)
            and "arguments" in params
        ]
        where: Path = ("params", "arguments")
        try:
            roots = [(c["arguments"], where) for c in calls]
            walk = self._walk_of(roots, report, frozenset(), deadline=deadline)
            for params in calls:
                masked = self._value(params["arguments"], where, walk)
                params["arguments"] = None if masked is _DROPPED else masked
        except RecursionError as exc:
            raise MaskingError("body is nested too deeply to mask") from exc
        return json_codec.dumps(document).encode()

    def _walk_of(
        self,
        roots: list[tuple[Any, Path]],
        report: MaskReport,
        keep: frozenset[str],
        handshake: bool = False,
        deadline: float | None = None,
        carried: Carried | None = None,
    ) -> _Walk:
        """A pass over what is to be masked (values and their paths), knowing the values
        its field rules mark (to find them again in free text) and its embedded JSON
        (parsed once)."""
        known: dict[str, set[str]] = defaultdict(set)
        parsed: dict[str, Any] = {}
        texts: dict[str, None] = {}  # the free text, each distinct string once
        columns: list[list[str]] = []  # the strings under one key of the rows of a list
        for value, path in roots:
            self._collect(value, path, known, parsed, texts, columns=columns)
        # What the detectors find anywhere (a name after "Patient:") is looked for again
        # everywhere in the answer, as what field rules mark is: the note that names the
        # patient once by title names her again without.
        scanned: dict[str, list[Finding]] = {}
        for text in texts:
            _check(deadline)
            findings = scanned[text] = self._detect(text)
            for entity, values in _values(text, findings).items():
                known[entity].update(values)
        if columns:
            known["name"].update(self._name_columns(columns, scanned))
        for entity in keep:  # what the caller may see, no finder looks for
            known.pop(entity, None)
        # The earlier events' values are looked for by their own finder, built once for
        # them all, not merged in here: that would rebuild it for every event.
        earlier, earlier_whole = (carried.finder(), carried.whole) if carried else (None, {})
        whole = _whole(known)
        # Without earlier values (one buffered document, a stream's first), a ChainMap would
        # only slow every key's and number's lookup: what `add` puts below into the carried
        # dict, which the ChainMap sees, is this document's, already in `whole`.
        both_whole = ChainMap(whole, earlier_whole) if earlier_whole else whole
        if carried is not None:
            carried.add(known)
        literals = _both(literal_finder(known), earlier)
        return _Walk(
            report,
            literals,
            keep,
            handshake,
            deadline,
            parsed=parsed,
            whole=both_whole,
            scanned=scanned,
        )

    def _message(self, message: Any, walk: _Walk) -> Any:
        if not isinstance(message, dict):
            return self._value(message, (), walk)
        rebuilt = _Rebuilt(message)
        for key, value in message.items():
            if key in _ENVELOPE and _scalar(value):  # an object there is no protocol's
                rebuilt.out[key] = value
            elif key == "result" and isinstance(value, dict):
                rebuilt.out[key] = self._result(value, walk)
            else:
                rebuilt.put(key, self._member(key, value, (), walk, message))
        return rebuilt.out

    def _result(self, result: dict[str, Any], walk: _Walk) -> dict[str, Any]:
        rebuilt = _Rebuilt(result)
        for key, value in result.items():
            if walk.handshake and key in _HANDSHAKE:
                rebuilt.out[key] = value
            elif key == "structuredContent" and self._fields.entity_at(("result", key)) is None:
                rebuilt.out[key] = self._document(value, ("result", key), walk)
            else:
                rebuilt.put(key, self._member(key, value, ("result",), walk, result))
        return rebuilt.out

    def _value(
        self,
        value: Any,
        path: Path,
        walk: _Walk,
        parent: dict[str, Any] | None = None,
        rule_path: Path | None = None,
    ) -> Any:
        """`value`, at `path` (as the output shows it) in `parent`; rules read `rule_path`,
        the path as the server wrote it (a key masked for what it says keeps its rules)."""
        rule = self._rule_at(path if rule_path is None else rule_path, parent, value)
        if rule is not None and rule.entity not in walk.keep:
            if rule.leaves:
                return self._leaves(rule.entity, value, path, walk)
            if not rule.whole and rule.entity == "name" and isinstance(value, str):
                return self._name_marked(value, path, walk)
            if rule.whole or not isinstance(value, list):
                return self._marked(rule.entity, value, path, walk)
            items = (self._marked(rule.entity, v, (*path, i), walk) for i, v in enumerate(value))
            return [masked for masked in items if masked is not _DROPPED]
        if isinstance(value, str):
            return self._string(value, path, walk)
        if isinstance(value, dict):
            rebuilt = _Rebuilt(value)
            for key, item in value.items():
                rebuilt.put(key, self._member(key, item, path, walk, value))
            return rebuilt.out
        if isinstance(value, list):
            items = (self._value(item, (*path, i), walk) for i, item in enumerate(value))
            return [masked for masked in items if masked is not _DROPPED]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._number(value, path, walk)
        return value

    def _rule_at(self, path: Path, parent: dict[str, Any] | None, value: Any) -> _Rule | None:
        """The rule naming the value at `path` in `parent`: an operator's field rule (the
        value masked whole, whatever it is), else a built-in key (a scalar, or each scalar
        of a list; an object under it is walked, and its own keys decide)."""
        if not path or value is None:
            return None
        if (entity := self._fields.entity_at(path)) is not None:
            return _Rule(entity, whole=True)
        if self._builtin is None or parent is None:
            return None
        if not _leafy(value):
            if not isinstance(value, dict | list):
                return None
            entity = self._builtin.entity_at(path, parent)
            wrapped = entity in _ONE_VALUE and self._builtin.named(path[-1]) and _wrapper(value)
            return _Rule(entity, whole=False, leaves=True) if wrapped else None
        entity = self._builtin.entity_at(path, parent)
        if entity is None or not self._builtin.applies(entity, value):
            return None
        return _Rule(entity, whole=False)

    def _marked(self, entity: str, value: Any, path: Path, walk: _Walk) -> Any:
        """A value a field rule names: masked whole, whatever it looks like."""
        walk.report.add(entity, path)
        action = self.config.action_for(entity)
        if action == "drop":
            return _DROPPED
        raw = value if isinstance(value, str) else json_codec.dumps(value)
        return self._replacement(entity, raw, walk)

    def _leaves(self, entity: str, value: Any, path: Path, walk: _Walk) -> Any:
        """Each scalar under a key of one value masked as that value, the shape kept."""
        if isinstance(value, dict):
            leaves = (
                (key, self._leaves(entity, item, (*path, key), walk)) for key, item in value.items()
            )
            return {key: item for key, item in leaves if item is not _DROPPED}
        if isinstance(value, list):
            items = (self._leaves(entity, item, (*path, i), walk) for i, item in enumerate(value))
            return [item for item in items if item is not _DROPPED]
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return self._marked(entity, value, path, walk)
        return value

    def _name_marked(self, value: str, path: Path, walk: _Walk) -> Any:
        """A name under a key of the lexicon, its title and credentials left readable
        ("Dr. [NAME], MD")."""
        span = tables.name_span(value)
        if span is None or span == (0, len(value)) or self.config.action_for("name") == "drop":
            return self._marked("name", value, path, walk)
        start, end = span
        return value[:start] + self._marked("name", value[start:end], path, walk) + value[end:]

    def _member(
        self, key: str, value: Any, path: Path, walk: _Walk, parent: dict[str, Any] | None
    ) -> tuple[str, Any]:
        """One member of `parent`: its key masked (as the output and the report show it),
        its value masked by the rules that name the key as the server wrote it."""
        name = self._masked_key(key, path, walk)
        return name, self._value(value, (*path, name), walk, parent, rule_path=(*path, key))

    def _masked_key(self, key: str, path: Path, walk: _Walk) -> str:
        """An object's key: a server may key records by SSN, e-mail, date or the patient's
        name ("Okafor, Ada"). Read by the detectors, but for names after a title
        ("Patient Name" is a column), and for the answer's marked values: the whole key in
        any case, a name within it only where it does not start lowercase (the key "page"
        is not Max Page; "van Dijk" or "山田" has no capital to show). Each key is read
        once per answer."""
        if key in _PROTOCOL_KEYS:
            return key
        cached = walk.keys.get(key)
        if cached is None:
            _check(walk.deadline)
            if entity := walk.whole.get(_normal(key)):  # a marked value, however written
                findings = [Finding(entity, 0, len(key))]
            else:
                findings = self._key_findings(key)
            if walk.literals is not None:
                marked = [
                    f
                    for f in walk.literals(key)
                    if f.entity != "name" or not key[f.start].islower()
                ]
                findings = _merge(findings, marked)
            found = Counter[str]()
            cached = walk.keys[key] = (self._replaced(key, findings, found, walk), found)
        for entity, count in cached[1].items():
            walk.report.add(entity, path, count)
        return cached[0]

    def _key_findings(self, key: str) -> list[Finding]:
        """What the detectors find in a key, names of several words included. The same few
        field names recur in every answer of a server: those in which nothing is found are
        remembered, if short (never one holding PHI, and never more than a bounded number
        of bytes)."""
        if key in self._clean_keys:
            return []
        findings = self._key_scanner.scan(key)
        if self._names is not None and (" " in key.strip() or "," in key):
            # A record keyed by its patient ("Okafor, Ada"): names the dictionaries know or
            # that stand as names do; "Patient Name" is a column, and no name.
            findings = _merge(findings, self._names.find(key))
        if not findings and len(key) <= _CLEAN_KEY_CHARS:
            if len(self._clean_keys) >= _CLEAN_KEYS:
                self._clean_keys.clear()
            self._clean_keys.add(key)
        return findings

    def _number(self, value: float, path: Path, walk: _Walk) -> Any:
        """A number is PHI only when a rule says so: a field rule, an operator's pattern,
        or a value the answer marks elsewhere. Masked, it becomes a string."""
        text = json_codec.dumps(value)
        if entity := walk.whole.get(text):
            findings = [Finding(entity, 0, len(text))]
        elif self._number_scanner is not None:
            findings = self._number_scanner.scan(text)
        else:
            return value
        found = Counter[str]()
        masked = self._replaced(text, findings, found, walk)
        for entity, count in found.items():
            walk.report.add(entity, path, count)
        return value if masked == text else masked

    def _string(self, text: str, path: Path, walk: _Walk) -> str:
        embedded = walk.parsed[text] if text in walk.parsed else embedded_json(text)
        if isinstance(embedded, JsonLines):  # one document a line, each line written back
            return "\n".join(json_codec.dumps(self._document(d, path, walk)) for d in embedded)
        if embedded is not None:
            return json_codec.dumps(self._document(embedded, path, walk), indent="\n" in text)
        # MCP results carry each record twice (JSON text and structuredContent): a string
        # met again in the same answer is masked once and only counted again.
        cached = walk.seen.get(text)
        if cached is None:
            found = Counter[str]()
            cached = walk.seen[text] = (self._free_text(text, found, walk), found)
        for entity, count in cached[1].items():
            walk.report.add(entity, path, count)
        return cached[0]

    def _document(self, value: Any, path: Path, walk: _Walk) -> Any:
        """JSON text, or a `structuredContent`, masked once per answer however often it
        recurs: an MCP tool with structured output returns it twice, as that object and
        as JSON text in `content`. Not shared when field rules anchored at the message
        could treat the two places differently."""
        if self._fields.anchored:
            return self._value(value, path, walk)
        # Compared as JSON text, not with ==, for which true == 1 == 1.0 and key order
        # does not count: the client must get back each document's own types and order.
        text = json_codec.dumps(value)
        shared = next((d for d in walk.documents if d[0] == text), None)
        if shared is None:
            found = MaskReport()
            shared = (text, self._value(value, (), replace(walk, report=found)), found)
            if len(walk.documents) < _SHARED_DOCUMENTS:  # bounds the comparisons
                walk.documents.append(shared)
        walk.report.add_under(path, shared[2])
        return shared[1]

    def _collect(
        self,
        value: Any,
        path: Path,
        known: dict[str, set[str]],
        parsed: dict[str, Any],
        texts: dict[str, None],
        parent: dict[str, Any] | None = None,
        columns: list[list[str]] | None = None,
    ) -> None:
        """Every string a field rule or a built-in key marks, by entity, embedded JSON
        included (parsed once: the masking walk reuses `parsed`); and, into `columns`, the
        strings under each key of a list's rows."""
        rule = self._rule_at(path, parent, value)
        if rule is not None:
            # Names given as a list of parts, or a phone number written as a number, are
            # as findable in a note as a string.
            known[rule.entity].update(_leaf_texts(value) if rule.leaves else _scalars(value))
        elif isinstance(value, dict):
            for key, item in value.items():
                self._collect(item, (*path, key), known, parsed, texts, value, columns)
        elif isinstance(value, list):
            if columns is not None and len(value) >= _MIN_ROWS:
                columns.extend(_columns(value))
            for index, item in enumerate(value):
                self._collect(item, (*path, index), known, parsed, texts, columns=columns)
        elif isinstance(value, str):
            if (embedded := embedded_json(value)) is None:
                texts[value] = None
            else:
                parsed[value] = embedded
                self._collect(embedded, path, known, parsed, texts, columns=columns)

    def _name_columns(
        self, columns: list[list[str]], scanned: dict[str, list[Finding]]
    ) -> set[str]:
        """The values of a list of records' columns that hold names (`grids.column_names`)."""
        found: set[str] = set()
        if self._names is None:
            return found
        for cells in columns:
            named = [_whole_name(c, scanned.get(c)) for c in cells]
            found.update(cells[i] for i in column_names(cells, named, self._names.could_be_name))
        return found

    def _free_text(self, text: str, found: Counter[str], walk: _Walk) -> str:
        """`text` with what the detectors and the answer's marked values find masked;
        `found` counts it by entity."""
        findings = walk.scanned.get(text)
        if findings is None:
            _check(walk.deadline)
            findings = self._detect(text)
        if walk.keep:  # before merging: a visible MRN must not carry a name inside it along
            findings = [f for f in findings if f.entity not in walk.keep]
        if walk.literals is not None:
            # Marked values first: on the same span, theirs is the finding that knows the
            # whole name a part stands for (one person, one pseudonym).
            findings = _merge(self._literals_in(text, walk.literals), findings)
        if self._names is not None and "name" not in walk.keep:  # "Stavolle [NAME]"
            findings = self._names.completed(text, findings)
        return self._replaced(text, findings, found, walk)

    def _literals_in(self, text: str, literals: LiteralFinder) -> list[Finding]:
        """The marked values in `text`, but a name's part written as a common word in
        lowercase ("Will Bell ... will restart") or standing as an eponym ("Hashimoto's
        thyroiditis"): that is the word."""
        found = literals(text)
        if self._names is None:
            return found
        names = self._names
        return [f for f in found if f.entity != "name" or not _is_word(names, text, f)]

    def _detect(self, text: str) -> list[Finding]:
        """What the detectors find in free text: patterns, names, HL7 v2 and X12 fields,
        DICOM attributes, vCards, XML elements, table columns."""
        findings = self._scanner.scan(text)
        if self._names is not None:
            findings = _merge(findings, self._names.find(text))
        if hl7.looks_like_hl7(text):  # its fields first: each component stays apart
            findings = _merge(hl7.find(text), findings)
        if x12.looks_like_x12(text):  # X12 EDI: its elements, by position
            findings = _merge(x12.find(text), findings)
        if vcard.looks_like_vcard(text):  # a contact card: its name, birthday, address
            findings = _merge(vcard.find(text), findings)
        if dicom.looks_like_dicom(text):  # a DICOM header: its attributes, by tag
            findings = _merge(dicom.find(text), findings)
        if markup.looks_like_markup(text):  # XML: its elements' values, by their names
            findings = _merge(markup.find(text, self._builtin, self._field_rule), findings)
        if self._builtin is not None and _LAID_OUT.search(text):  # tables, key-value lines
            findings = _merge(tables.find(text, self._builtin), findings)
        # JSON cut short (a server's long output cut): its pairs, by their keys' rules
        if cut := tables.json_pairs(text, self._builtin, self._field_rule):
            findings = _merge(cut, findings)
        if self._names is not None and text.count("\n", 0, _GRID_PROBE) >= _MIN_ROWS - 1:
            # CSV with no header, a table whose header says nothing, a list of attendees
            findings = _merge(findings, grid_findings(text, findings, self._names.could_be_name))
        return findings

    def _field_rule(self, key: str) -> str | None:
        return self._fields.entity_at((key,))

    def _replaced(
        self, text: str, findings: list[Finding], found: Counter[str], walk: _Walk
    ) -> str:
        """`text` with these findings (sorted, disjoint) replaced, but those of entities
        the caller may see; `found` counts them by entity."""
        if walk.keep:
            findings = [f for f in findings if f.entity not in walk.keep]
        if not findings:
            return text
        parts: list[str] = []
        last = 0
        for finding in findings:
            parts.append(text[last : finding.start])
            value = text[finding.start : finding.end]
            parts.append(self._replacement(finding.entity, value, walk, finding.stands_for))
            found[finding.entity] += 1
            last = finding.end
        parts.append(text[last:])
        return "".join(parts)

    def _replacement(
        self, entity: str, value: str, walk: _Walk, stands_for: str | None = None
    ) -> str:
        action = self.config.action_for(entity)
        if action == "pseudonym" and stands_for is not None:
            value = stands_for  # "Ada" gets the pseudonym of "Ada Okafor": one person
        # Values recur within an answer (each record twice, names in notes): one HMAC each.
        key = (entity, value)
        if (replaced := walk.replaced.get(key)) is None:
            replaced = walk.replaced[key] = apply(action, entity, value, self._key)
        return replaced


class Carried:
    """The marked values of a stream's events so far, looked for in its later events and
    lines: an event may name a patient whom a later one mentions again. Bounded by count
    and size, since each event that adds values rebuilds the finder; past the bound, each
    event still finds its own."""

    def __init__(self) -> None:
        self.known: defaultdict[str, set[str]] = defaultdict(set)
        self.whole: dict[str, str] = {}  # as `_Walk.whole`: for keys and numbers
        self._count = self._chars = 0
        self._finder: tuple[int, LiteralFinder | None] = (0, None)

    def add(self, known: dict[str, set[str]]) -> None:
        for entity, values in known.items():
            added: set[str] = set()
            for value in values - self.known[entity]:
                if self._count >= _CARRIED:
                    break
                if self._chars + len(value) > _CARRIED_CHARS:
                    continue  # too big to carry, but a shorter one may still fit
                added.add(value)
                self._count += 1
                self._chars += len(value)
            self.known[entity] |= added
            self.whole.update(_whole({entity: added}))

    def finder(self) -> LiteralFinder | None:
        if self._finder[0] != self._count:  # rebuilt only when values were added
            self._finder = (self._count, literal_finder(self.known))
        return self._finder[1]


def _both(own: LiteralFinder | None, earlier: LiteralFinder | None) -> LiteralFinder | None:
    """This document's marked values and the stream's earlier ones, as one finder."""
    if earlier is None or own is None:
        return own or earlier

    def find(text: str) -> list[Finding]:
        return _merge(own(text), earlier(text))

    return find


def _whole(known: Mapping[str, set[str]]) -> dict[str, str]:
    """Marked values as a key or a number would spell them whole: `_normal` -> entity."""
    return {
        _normal(value): entity
        for entity, values in known.items()
        for value in values
        if len(value.strip()) >= _MIN_WHOLE
    }


@dataclass(frozen=True)
class _Walk:
    """One document's pass: its report, and the values its field rules marked."""

    report: MaskReport
    literals: LiteralFinder | None
    keep: frozenset[str] = frozenset()  # entities this caller may see
    handshake: bool = False  # a protocol method's answer: its protocol members pass
    deadline: float | None = None  # time.monotonic() past which masking gives up
    seen: dict[str, tuple[str, Counter[str]]] = field(default_factory=dict)
    keys: dict[str, tuple[str, Counter[str]]] = field(default_factory=dict)
    # marked values, `_normal` -> entity: this document's, then the stream's earlier ones
    whole: Mapping[str, str] = field(default_factory=dict)
    replaced: dict[tuple[str, str], str] = field(default_factory=dict)
    documents: list[tuple[str, Any, MaskReport]] = field(default_factory=list)  # JSON text
    parsed: dict[str, Any] = field(default_factory=dict)  # embedded JSON, by its text
    scanned: dict[str, list[Finding]] = field(default_factory=dict)  # free text's findings


@dataclass(frozen=True, slots=True)
class _Rule:
    entity: str
    whole: bool  # an operator's field rule: the value goes whole, lists and objects too
    leaves: bool = False  # a built-in key holding an object: each of its scalars is PHI


# Entities of one value each: under their key, an object holds that value in some member
# (`{"mrn": {"value": "48213"}}`), whatever the member is called. Not names or addresses,
# whose objects (FHIR's HumanName and Address) say by their own keys which parts are PHI.
_WRAPPED = 4  # members of an object that wraps one value
_ONE_VALUE = frozenset(
    {"ssn", "mrn", "phone", "fax", "email", "date", "zip", "city", "account", "health_plan"}
    | {"license", "vehicle", "device", "ip", "username", "npi", "employer"}
)


def _leafy(value: Any) -> bool:
    """A scalar, or a list of scalars: what a built-in key names."""
    if isinstance(value, list):
        return bool(value) and all(_leafy(item) and not isinstance(item, list) for item in value)
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise MaskingError("masking took longer than its time limit")


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float)


class _Rebuilt:
    """An object rebuilt member by member. Keys masked alike (records keyed by date:
    "[DATE]") are numbered, and none lands on one of the object's own keys: neither
    replaces the other, and a key the server wrote keeps its name."""

    def __init__(self, original: dict[str, Any]) -> None:
        self.out: dict[str, Any] = {}
        self._own = original
        self._numbers: dict[str, int] = {}  # the last number given to each masked key

    def put(self, key: str, member: tuple[str, Any]) -> None:
        name, value = member
        if value is _DROPPED:
            return
        if name != key:
            base, number = name, self._numbers.get(name, 1)
            while name in self.out or name in self._own:
                number += 1
                name = f"{base} #{number}"
            self._numbers[base] = number
        self.out[name] = value


def _normal(text: str) -> str:
    return " ".join(text.casefold().split())


def _scalars(value: Any) -> list[str]:
    """The strings and numbers of `value`, as text, lists included. Not an object's: under
    a bare key such as `name` it may be a schema, whose words are nobody's name; rules for
    its own keys (`given`, `family`) say which of them are PHI."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _scalars(item)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [json_codec.dumps(value)]
    return []


def _wrapper(value: Any) -> bool:
    """A value wrapped in an object of a few members (`{"value": ..., "system": ...}`), or a
    list of such: not a map keyed by other things (`{"by_email": {address: count}}`)."""
    if isinstance(value, list):
        return len(value) <= _WRAPPED and all(_wrapper(v) or _leafy(v) for v in value)
    return isinstance(value, dict) and 0 < len(value) <= _WRAPPED


def _leaf_texts(value: Any) -> list[str]:
    """Every scalar under `value`, objects included, as text."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in _leaf_texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _leaf_texts(item)]
    return _scalars(value)


def _is_word(names: NameFinder, text: str, finding: Finding) -> bool:
    """Whether a name of the answer found in `text` stands there as a word instead."""
    value = text[finding.start : finding.end]
    if value.islower() and names.common(value):
        return True
    return names.eponym_at(text, finding.end)


def _values(text: str, findings: list[Finding]) -> dict[str, set[str]]:
    """The values these findings mark in `text`, by entity."""
    values: dict[str, set[str]] = defaultdict(set)
    for finding in findings:
        values[finding.entity].add(text[finding.start : finding.end])
    return values


def _columns(rows: list[Any]) -> list[list[str]]:
    """The strings under each key of these rows, when most rows are objects."""
    objects = [row for row in rows if isinstance(row, dict)]
    if 2 * len(objects) < len(rows):
        return []
    cells: defaultdict[str, list[str]] = defaultdict(list)
    for row in objects[:_MAX_ROWS]:
        for key, item in row.items():
            if isinstance(item, str) and 0 < len(item) <= _MAX_CELL:
                cells[key].append(item)
    return [column for column in cells.values() if len(column) >= _MIN_ROWS]


def _whole_name(cell: str, findings: list[Finding] | None) -> bool:
    """Whether the detectors found `cell` a name whole (its words, from first to last)."""
    names = [f for f in findings or () if f.entity == "name"]
    words = trimmed("name", cell, 0)
    return (
        bool(names)
        and words is not None
        and names[0].start <= words.start <= words.end <= names[-1].end
    )


def _merge(first: list[Finding], second: list[Finding]) -> list[Finding]:
    """Both lists' findings as one (see `joined`): on the same span, the first list's."""
    return joined(first + second)


def _parsed(text: str) -> Any:
    try:
        return json_codec.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MaskingError("body is not JSON") from exc


class JsonLines(list[Any]):
    """JSON Lines in a string (an export, a log): one object or array a line."""


def embedded_json(text: str) -> Any:
    """The JSON object or array a string holds, JsonLines, or None. JSON nested or sized
    beyond what can be read is refused, not taken for text: as text, its field rules would
    not apply."""
    if not json_codec.opens_document(text):
        return None
    value = _read(text)
    if value is _NOT_JSON:
        return _json_lines(text)
    return value if isinstance(value, dict | list) else None


def _json_lines(text: str) -> JsonLines | None:
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 2 or not all(json_codec.opens_document(line) for line in lines):
        return None
    documents = JsonLines(_read(line) for line in lines)
    return None if any(d is _NOT_JSON for d in documents) else documents


_NOT_JSON = object()


def _read(text: str) -> Any:
    """`text` as JSON, or _NOT_JSON; JSON that cannot be read is refused."""
    try:
        return json_codec.loads(text)
    except (json_codec.TooBigError, RecursionError) as exc:
        raise MaskingError("embedded JSON too deep or too big to mask") from exc
    except ValueError:
        return _NOT_JSON
