"""The masking engine: a JSON-RPC response (or any JSON, or one SSE event's data) in,
the same document with its PHI masked out, and a report of what was masked: entity
types, counts and JSON paths, never the values.

Every string is scanned; a string that is itself JSON (MCP tools often return their
result as JSON text in `content[].text`) is walked as JSON and written back as JSON.
Field rules mask a key's value whatever it looks like, numbers and objects included. The
values they mark are also looked for in the document's free text (a clinical note that
repeats the patient's name, or just the first name), which no pattern could know."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cel_expr_python import cel

from custos.errors import CustosError
from custos.policy import PolicyInput
from custos.policy.document import compile_condition
from custos.policy.environment import activations
from extproc.actions import apply
from extproc.config import MaskingConfig
from extproc.detectors import PatternSpec, Scanner, ScannerSpec
from extproc.fields import FieldRules, Path, render
from extproc.findings import Finding

_WORD = re.compile(r"\w+")
_MIN_LITERAL = 3  # shorter marked values ("Al", "12") would mask ordinary words
_NAME_ENTITIES = frozenset({"name"})

# JSON-RPC's own members: never PHI, and masking them would break the protocol.
_ENVELOPE = frozenset({"jsonrpc", "id", "method"})
# The initialize result's protocol members: a protocol version looks like a date.
_HANDSHAKE = frozenset({"protocolVersion", "capabilities", "serverInfo"})
_DROPPED = object()


class MaskingError(CustosError):
    """A body that must be masked cannot be: the client gets an error, never the bytes."""

    code = "masking_failed"


@dataclass
class MaskReport:
    counts: Counter[str] = field(default_factory=Counter)
    paths: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, entity: str, path: Path) -> None:
        self.counts[entity] += 1
        self.paths[entity].add(render(path))

    def merge(self, other: MaskReport) -> None:
        self.counts.update(other.counts)
        for entity, paths in other.paths.items():
            self.paths[entity] |= paths

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {
            entity: {"count": count, "paths": sorted(self.paths[entity])}
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
        self._fields = FieldRules((rule.path, rule.entity) for rule in config.fields)
        self._key = config.pseudonym_key.read() if config.pseudonym_key else b""
        self._exceptions = [(e, compile_condition(e.when)) for e in config.exceptions]

    def unmasked_for(self, inp: PolicyInput | None) -> frozenset[str]:
        """The entities this caller may see unmasked, by the configured exceptions. An
        exception that fails to evaluate grants nothing."""
        if inp is None:
            return frozenset()
        granted: set[str] = set()
        for activation in activations(inp):
            for exception, condition in self._exceptions:
                value = condition.eval(activation)
                if value.type() == cel.Type.BOOL and value.value() is True:
                    granted.update(exception.entities)
        return frozenset(granted)

    def mask_body(
        self, body: bytes, report: MaskReport, keep: frozenset[str] = frozenset()
    ) -> bytes:
        """A whole JSON body (a response or a batch of them)."""
        return self.mask_json_text(self.decoded(body), report, keep).encode()

    def decoded(self, body: bytes) -> str:
        if len(body) > self.config.max_body_bytes:
            raise MaskingError(f"body of {len(body)} bytes exceeds {self.config.max_body_bytes}")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MaskingError("body is not UTF-8") from exc

    def mask_text_body(self, body: bytes, report: MaskReport) -> bytes:
        """A body that is not JSON, scanned as text."""
        return self.mask_text(self.decoded(body), (), report).encode()

    def mask_json_text(
        self, text: str, report: MaskReport, keep: frozenset[str] = frozenset()
    ) -> str:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise MaskingError("body is not JSON") from exc
        messages = document if isinstance(document, list) else [document]
        try:
            known: dict[str, set[str]] = defaultdict(set)
            parsed: dict[str, Any] = {}
            self._collect(document, (), known, parsed)
            for entity in keep:
                known.pop(entity, None)
            walk = _Walk(report, _literal_finder(known), keep, parsed=parsed)
            masked = [self._message(m, walk) for m in messages]
        except RecursionError as exc:
            raise MaskingError("body is nested too deeply to mask") from exc
        result = masked if isinstance(document, list) else masked[0]
        return json.dumps(result, ensure_ascii=False, separators=(",", ":"))

    def _message(self, message: Any, walk: _Walk) -> Any:
        if not isinstance(message, dict):
            return self._value(message, (), walk)
        out: dict[str, Any] = {}
        for key, value in message.items():
            if key in _ENVELOPE:
                out[key] = value
                continue
            if key == "result" and isinstance(value, dict):
                out[key] = self._result(value, walk)
                continue
            masked = self._value(value, (key,), walk)
            if masked is not _DROPPED:
                out[key] = masked
        return out

    def _result(self, result: dict[str, Any], walk: _Walk) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in result.items():
            if key in _HANDSHAKE:
                out[key] = value
                continue
            masked = self._value(value, ("result", key), walk)
            if masked is not _DROPPED:
                out[key] = masked
        return out

    def _value(self, value: Any, path: Path, walk: _Walk) -> Any:
        entity = self._fields.entity_at(path) if path else None
        if entity is not None and value is not None and entity not in walk.keep:
            walk.report.add(entity, path)
            action = self.config.action_for(entity)
            if action == "drop":
                return _DROPPED
            raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            return apply(action, entity, raw, self._key)
        if isinstance(value, dict):
            items = ((k, self._value(v, (*path, k), walk)) for k, v in value.items())
            return {k: v for k, v in items if v is not _DROPPED}
        if isinstance(value, list):
            items_ = (self._value(v, (*path, i), walk) for i, v in enumerate(value))
            return [v for v in items_ if v is not _DROPPED]
        if isinstance(value, str):
            return self._string(value, path, walk)
        return value

    def _string(self, text: str, path: Path, walk: _Walk) -> str:
        embedded = walk.parsed[text] if text in walk.parsed else embedded_json(text)
        if embedded is not None:
            masked = self._value(embedded, path, walk)
            indent = 2 if "\n" in text else None
            return json.dumps(masked, ensure_ascii=False, indent=indent)
        # MCP results carry each record twice (JSON text and structuredContent): a string
        # met again in the same answer is masked once and only counted again.
        cached = walk.seen.get(text)
        if cached is None:
            found = MaskReport()
            masked = self.mask_text(text, (), found, walk.literals, walk.keep)
            cached = walk.seen[text] = (masked, tuple(found.counts.elements()))
        for entity in cached[1]:
            walk.report.add(entity, path)
        return cached[0]

    def _collect(
        self, value: Any, path: Path, known: dict[str, set[str]], parsed: dict[str, Any]
    ) -> None:
        """Every string a field rule marks, by entity, embedded JSON included (parsed
        once: the masking walk reuses `parsed`)."""
        entity = self._fields.entity_at(path) if path else None
        if entity is not None and isinstance(value, str):
            known[entity].add(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                self._collect(item, (*path, key), known, parsed)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self._collect(item, (*path, index), known, parsed)
        elif isinstance(value, str) and (embedded := embedded_json(value)) is not None:
            parsed[value] = embedded
            self._collect(embedded, path, known, parsed)

    def mask_text(
        self,
        text: str,
        path: Path,
        report: MaskReport,
        literals: LiteralFinder | None = None,
        keep: frozenset[str] = frozenset(),
    ) -> str:
        findings = self._scanner.scan(text)
        if literals is not None:
            findings = _merge(findings, literals(text))
        if keep:
            findings = [f for f in findings if f.entity not in keep]
        if not findings:
            return text
        parts: list[str] = []
        last = 0
        for finding in findings:
            parts.append(text[last : finding.start])
            value = text[finding.start : finding.end]
            action = self.config.action_for(finding.entity)
            parts.append(apply(action, finding.entity, value, self._key))
            report.add(finding.entity, path)
            last = finding.end
        parts.append(text[last:])
        return "".join(parts)


LiteralFinder = Callable[[str], list[Finding]]


@dataclass(frozen=True)
class _Walk:
    """One document's pass: its report, and the values its field rules marked."""

    report: MaskReport
    literals: LiteralFinder | None
    keep: frozenset[str] = frozenset()  # entities this caller may see
    seen: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    parsed: dict[str, Any] = field(default_factory=dict)  # embedded JSON, by its text


def _literal_finder(known: dict[str, set[str]]) -> LiteralFinder | None:
    """Find marked values, and the parts of names (a note may say just "Alice"), as runs
    of whole words in any case. Matching word by word (not one regex per document, whose
    compilation would cost more than the masking) also finds a value written with other
    separators: `555 010 0101` for `(555) 010-0101`."""
    terms: dict[tuple[str, ...], str] = {}
    for entity, values in known.items():
        for value in values:
            if len(value.strip()) >= _MIN_LITERAL:
                terms.setdefault(_words(value), entity)
            if entity in _NAME_ENTITIES:
                for part in value.split():
                    if len(part) >= _MIN_LITERAL and part[0].isupper():
                        terms.setdefault(_words(part), entity)
    terms.pop((), None)
    if not terms:
        return None
    # The lengths of the terms each word starts, longest first: most words start none,
    # and a word that starts thousands of names ("John ...") costs one lookup per length.
    lengths: dict[str, list[int]] = defaultdict(list)
    for term in terms:
        if len(term) not in lengths[term[0]]:
            lengths[term[0]].append(len(term))
    for sizes in lengths.values():
        sizes.sort(reverse=True)

    def find(text: str) -> list[Finding]:
        tokens = [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]
        words = [t[0] for t in tokens]
        found: list[Finding] = []
        i = 0
        while i < len(tokens):
            for size in lengths.get(words[i], ()):
                if i + size > len(words):  # a shorter slice could equal a shorter term
                    continue
                entity = terms.get(tuple(words[i : i + size]))
                if entity is not None:
                    found.append(Finding(entity, tokens[i][1], tokens[i + size - 1][2]))
                    i += size
                    break
            else:
                i += 1
        return found

    return find


def _words(value: str) -> tuple[str, ...]:
    return tuple(m.group().casefold() for m in _WORD.finditer(value))


def _merge(first: list[Finding], second: list[Finding]) -> list[Finding]:
    """Both lists' findings, sorted, without overlaps (the earlier, then longer, wins)."""
    merged: list[Finding] = []
    for finding in sorted(first + second, key=lambda f: (f.start, -f.end)):
        if merged and finding.start < merged[-1].end:
            continue
        merged.append(finding)
    return merged


def embedded_json(text: str) -> Any:
    """The JSON object or array a string holds, or None."""
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None
