"""Masking accuracy: how much of the labelled PHI corpus (bench/phi_corpus.py) the masking
engine catches, and how much text that is not PHI it alters, through the same engine
ext_proc runs (no Envoy, no gRPC).

    .venv/bin/python bench/phi_accuracy.py [--n 400] [--seed 1] [--config examples/masking.yaml]
    .venv/bin/python bench/phi_accuracy.py --misses 15          # examples of what got through
    .venv/bin/python bench/phi_accuracy.py --engine-root ../prev  # another checkout, side by side

Scoring, per document: the masked body is parsed and its `result.content[0].text` compared
with the original text, word by word (`\\w+` tokens, line by line where the lines
correspond, aligned as a longest common subsequence). An original token paired with one
of the masked text survived; a placeholder ("[NAME]") pairs with nothing. A span is
caught when none of its tokens survived (a date may keep its year: Safe Harbor allows it);
a token outside every span is altered when it did not survive. A body the engine refuses
(MaskingError) counts as every span caught and every token altered: the client got
nothing."""

from __future__ import annotations

import argparse
import bisect
import difflib
import json
import os
import random
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phi_corpus import ENTITIES, Document, Span, generate

try:
    from extproc.masking import Masker, MaskingError, MaskReport
    from extproc.masking.config import MaskingConfig, load_masking_config
except ImportError:  # a checkout from before the engine moved into extproc.masking
    from extproc.config import MaskingConfig, load_masking_config  # type: ignore[no-redef]
    from extproc.engine import Masker, MaskingError, MaskReport  # type: ignore[no-redef]

TOKEN = re.compile(r"\w+")
# What the engine writes for a value ("[NAME]", "[SSN:7f3a2c]") is read as one token that
# equals no word of any original, so "[NAME]" never passes for a surviving word "NAME".
PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*(?::[0-9a-f]{6})?\]")
MASKED = "\x00"  # never a \w+ token
YEAR = re.compile(r"(?:1[89]|20)[0-9]{2}")
# Alignment: an exact longest common subsequence (LCS) of tokens where the table is at most
# this many cells; beyond, SequenceMatcher's blocks of at least ANCHOR tokens are kept as
# anchors and the gaps between them solved exactly. SequenceMatcher alone is greedy: in a
# gap it takes the earliest of equally short matches, so an address's "W" (West) could
# pair with a marital status "W" further on and leave "NC" and "USA" unmatched.
LCS_CELLS = 250_000
ANCHOR = 3


# --- scoring one document --------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    text: str


def tokens(text: str, offset: int = 0) -> list[Token]:
    return [Token(m.start() + offset, m.end() + offset, m.group()) for m in TOKEN.finditer(text)]


def masked_tokens(text: str) -> list[str]:
    out: list[str] = []
    last = 0
    for placeholder in PLACEHOLDER.finditer(text):
        out += TOKEN.findall(text, last, placeholder.start())
        out.append(MASKED)
        last = placeholder.end()
    out += TOKEN.findall(text, last)
    return out


def _lcs(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """The index pairs of one longest common subsequence of `a` and `b`."""
    n, m = len(a), len(b)
    # suffix[i][j]: the LCS length of a[i:] and b[j:]
    suffix = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below, token = suffix[i], suffix[i + 1], a[i]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if token == b[j] else max(below[j], row[j + 1])
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < n and j < m:
        if a[i] == b[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif suffix[i + 1][j] >= suffix[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _matches(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs of tokens the two sequences share, in order: exact when small enough,
    else exact between SequenceMatcher's longer blocks."""
    if len(a) * len(b) <= LCS_CELLS:
        return _lcs(a, b)
    pairs: list[tuple[int, int]] = []
    ai = bj = 0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for block in matcher.get_matching_blocks():  # the last one is (len(a), len(b), 0)
        if block.size and block.size < ANCHOR:
            continue
        gap_a, gap_b = a[ai : block.a], b[bj : block.b]
        if len(gap_a) * len(gap_b) <= LCS_CELLS:
            pairs += [(ai + i, bj + j) for i, j in _lcs(gap_a, gap_b)]
        else:  # a huge gap: SequenceMatcher's own blocks there, greedy as they are
            inner = difflib.SequenceMatcher(None, gap_a, gap_b, autojunk=False)
            for x in inner.get_matching_blocks():
                pairs += [(ai + x.a + k, bj + x.b + k) for k in range(x.size)]
        pairs += [(block.a + k, block.b + k) for k in range(block.size)]
        ai, bj = block.a + block.size, block.b + block.size
    return pairs


def _align(original: Sequence[Token], masked: Sequence[str]) -> list[bool]:
    """Whether each original token survived: it pairs with a token of the masked text."""
    kept = [False] * len(original)
    for i, _j in _matches([t.text for t in original], masked):
        kept[i] = True
    return kept


def survival(original: str, masked: str) -> tuple[list[Token], list[bool]]:
    """The original's tokens and whether each survived. Line by line when both texts have
    as many lines (masking never adds one), so no word pairs with its twin on another
    line; whole otherwise (a value found across a line break takes the break with it)."""
    original_lines, masked_lines = original.split("\n"), masked.split("\n")
    if len(original_lines) != len(masked_lines):
        whole = tokens(original)
        return whole, _align(whole, masked_tokens(masked))
    found: list[Token] = []
    kept: list[bool] = []
    offset = 0
    for line, masked_line in zip(original_lines, masked_lines, strict=True):
        line_tokens = tokens(line, offset)
        found += line_tokens
        kept += _align(line_tokens, masked_tokens(masked_line))
        offset += len(line) + 1
    return found, kept


@dataclass(frozen=True)
class Scored:
    """One document's outcome: per span whether it was caught; per token outside every
    span whether it was altered."""

    doc: Document
    masked: str | None  # None: refused
    caught: list[bool]
    plain_tokens: list[Token]
    altered: list[bool]


def score(doc: Document, masked: str | None) -> Scored:
    found, kept = survival(doc.text, masked) if masked is not None else (tokens(doc.text), None)
    starts = [t.start for t in found]
    in_span = [False] * len(found)
    caught: list[bool] = []
    for span in doc.spans:
        inside = _overlapping(found, starts, span)
        for i in inside:
            in_span[i] = True
        if kept is None:
            caught.append(True)
            continue
        counted = [
            i for i in inside if not (span.entity == "date" and YEAR.fullmatch(found[i].text))
        ]
        caught.append(not any(kept[i] for i in counted))
    plain = [i for i in range(len(found)) if not in_span[i]]
    altered = [True] * len(plain) if kept is None else [not kept[i] for i in plain]
    return Scored(doc, masked, caught, [found[i] for i in plain], altered)


def _overlapping(found: Sequence[Token], starts: Sequence[int], span: Span) -> list[int]:
    """The tokens that overlap the span, in part included ("05T14" in an ISO timestamp)."""
    first = max(0, bisect.bisect_right(starts, span.start) - 1)
    return [
        i for i in range(first, bisect.bisect_left(starts, span.end)) if found[i].end > span.start
    ]


def mask(masker: Masker, doc: Document) -> str | None:
    """The masked content text, or None if the engine refused the body."""
    try:
        body = masker.mask_body(doc.body, MaskReport())
    except MaskingError:
        return None
    return json.loads(body)["result"]["content"][0]["text"]


# --- the whole corpus ------------------------------------------------------------------------


@dataclass
class Tally:
    hit: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hit += hit
        self.total += 1

    def share(self) -> float | None:
        return self.hit / self.total if self.total else None


@dataclass
class Results:
    documents: int = 0
    refused: int = 0
    overall: Tally = field(default_factory=Tally)
    entity: defaultdict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    shape: defaultdict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    names: defaultdict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    altered: Tally = field(default_factory=Tally)
    altered_shape: defaultdict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))

    def add(self, scored: Scored) -> None:
        self.documents += 1
        self.refused += scored.masked is None
        shape = scored.doc.shape
        for span, caught in zip(scored.doc.spans, scored.caught, strict=True):
            self.overall.add(caught)
            self.entity[span.entity].add(caught)
            self.shape[shape].add(caught)
            if span.entity in ("name", "clinician_name"):
                self.names["holdout" if span.holdout else "in Faker's lists"].add(caught)
        for altered in scored.altered:
            self.altered.add(altered)
            self.altered_shape[shape].add(altered)

    def as_dict(self) -> dict[str, Any]:
        def table(tallies: dict[str, Tally]) -> dict[str, list[int]]:
            return {k: [t.hit, t.total] for k, t in sorted(tallies.items())}

        return {
            "documents": self.documents,
            "refused": self.refused,
            "recall": {
                "overall": [self.overall.hit, self.overall.total],
                "entity": table(self.entity),
                "shape": table(self.shape),
                "names": table(self.names),
            },
            "altered": {
                "overall": [self.altered.hit, self.altered.total],
                "shape": table(self.altered_shape),
            },
        }


def measure(docs: Sequence[Document], config: MaskingConfig) -> tuple[Results, list[Scored]]:
    masker = Masker(config)
    results, scored = Results(), []
    for doc in docs:
        one = score(doc, mask(masker, doc))
        results.add(one)
        scored.append(one)
    return results, scored


def engine_location() -> str:
    """The checkout whose engine runs: the folder holding the `extproc` package."""
    import extproc

    return str(Path(extproc.__file__ or "").resolve().parents[1])


# --- examples --------------------------------------------------------------------------------

CONTEXT = 50


def _excerpt(text: str, start: int, end: int) -> str:
    before = text[max(0, start - CONTEXT) : start]
    after = text[end : end + CONTEXT]
    return f"{before}\u00bb{text[start:end]}\u00ab{after}".replace("\n", "\u23ce")


def _masked_line(scored: Scored, start: int) -> str | None:
    """About where the span was, in the masked text's line that stands for the span's line
    (when lines correspond): the same share of the way along it."""
    if scored.masked is None:
        return None
    text, masked_lines = scored.doc.text, scored.masked.split("\n")
    if text.count("\n") + 1 != len(masked_lines):
        return None
    number = text.count("\n", 0, start)
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start) % (len(text) + 1)
    line = masked_lines[number]
    at = round((start - line_start) / max(1, line_end - line_start) * len(line))
    return line[max(0, at - CONTEXT) : at + 2 * CONTEXT]


def spread(items: list[tuple[str, Any]], count: int, seed: int = 0) -> list[Any]:
    """`count` items taking turns among their kinds (entity, shape), each kind in a
    shuffled but fixed order, so the rare kinds show too."""
    rng = random.Random(seed)
    kinds: dict[str, list[Any]] = defaultdict(list)
    for kind, item in items:
        kinds[kind].append(item)
    for group in kinds.values():
        rng.shuffle(group)
    chosen: list[Any] = []
    queues = [iter(kinds[k]) for k in sorted(kinds)]
    while len(chosen) < count and queues:
        for queue in list(queues):
            item = next(queue, None)
            if item is None:
                queues.remove(queue)
            elif len(chosen) < count:
                chosen.append(item)
    return chosen


def misses(scored: Sequence[Scored], count: int) -> Iterator[str]:
    found = [
        (span.entity, (one, span))
        for one in scored
        for span, caught in zip(one.doc.spans, one.caught, strict=True)
        if not caught
    ]
    for one, span in spread(found, count):
        holdout = ", holdout" if span.holdout else ""
        where = f"[{span.entity}{holdout} / {one.doc.shape}]"
        yield f"{where} {_excerpt(one.doc.text, span.start, span.end)}"
        if (line := _masked_line(one, span.start)) is not None:
            yield f"    masked: {line}".replace("\n", "\u23ce")


def alterations(scored: Sequence[Scored], count: int) -> Iterator[str]:
    found = [
        (one.doc.shape, (one, token))
        for one in scored
        if one.masked is not None
        for token, altered in zip(one.plain_tokens, one.altered, strict=True)
        if altered
    ]
    for one, token in spread(found, count):
        yield f"[{one.doc.shape}] {_excerpt(one.doc.text, token.start, token.end)}"


# --- printing --------------------------------------------------------------------------------


def _rate(pair: list[int] | None) -> str:
    if not pair or not pair[1]:
        return "-"
    return f"{100 * pair[0] / pair[1]:5.1f}%"


def _delta(this: list[int] | None, other: list[int] | None) -> str:
    if not this or not other or not this[1] or not other[1]:
        return ""
    return f"{100 * (this[0] / this[1] - other[0] / other[1]):+6.1f}"


def _rows(title: str, runs: Sequence[dict[str, Any]], pick: Any, keys: Sequence[str]) -> list[str]:
    two = len(runs) == 2
    head = f"{title:<24}{'count':>7}  {'this':>7}" + (f"  {'other':>7}  {'diff':>6}" if two else "")
    lines = [head]
    for key in keys:
        pairs = [pick(run).get(key) for run in runs]
        if not any(pairs):
            continue
        total = next(p[1] for p in pairs if p)
        row = f"  {key:<22}{total:>7}  {_rate(pairs[0]):>7}"
        if two:
            row += f"  {_rate(pairs[1]):>7}  {_delta(pairs[0], pairs[1]):>6}"
        lines.append(row)
    return lines


def render(runs: Sequence[dict[str, Any]], setup: dict[str, Any]) -> str:
    """The figures of one run, or of two side by side ("this" checkout, "other" one)."""
    this = runs[0]
    lines = [
        f"PHI accuracy: {this['documents']} documents (seed {setup['seed']}), "
        f"config: {setup['config'] or 'none (MaskingConfig() defaults)'}",
        f"  this:  engine at {this['engine']}; {this['refused']} documents refused",
    ]
    if len(runs) == 2:
        lines.append(
            f"  other: engine at {runs[1]['engine']}; {runs[1]['refused']} documents refused"
        )
    lines.append("")
    recall = lambda part: lambda run: run["recall"][part]  # noqa: E731
    shapes = sorted(this["recall"]["shape"])
    lines += _rows("recall by entity", runs, recall("entity"), ENTITIES)
    lines += _rows("recall by shape", runs, recall("shape"), shapes)
    lines += _rows("recall of names", runs, recall("names"), ["in Faker's lists", "holdout"])
    lines += _rows("recall", runs, lambda run: {"overall": run["recall"]["overall"]}, ["overall"])
    lines.append("")
    altered = lambda run: {"overall": run["altered"]["overall"], **run["altered"]["shape"]}  # noqa: E731
    lines += _rows("non-PHI tokens altered", runs, altered, ["overall", *shapes])
    return "\n".join(lines)


# --- running ---------------------------------------------------------------------------------


def config_of(path: str | None) -> MaskingConfig:
    return load_masking_config(path) if path else MaskingConfig()


def run_here(args: argparse.Namespace) -> tuple[dict[str, Any], list[Scored]]:
    docs = generate(args.n, args.seed)
    results, scored = measure(docs, config_of(args.config))
    return {"engine": engine_location(), **results.as_dict()}, scored


def run_elsewhere(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The same measurement with the engine of another checkout (a `git worktree` of an
    earlier commit): this script and corpus, that checkout's `extproc` and `custos` first
    on the path."""
    command = [sys.executable, str(Path(__file__).resolve()), "--json", "--n", str(args.n)]
    command += ["--seed", str(args.seed)]
    if args.config:
        command += ["--config", args.config]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the run with the engine of {root} failed:\n{done.stderr}")
    return json.loads(done.stdout)["runs"][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="documents (default 400)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--config", help="masking config YAML (default: MaskingConfig())")
    parser.add_argument(
        "--misses",
        type=int,
        default=0,
        metavar="N",
        help="print N missed spans and N altered tokens",
    )
    parser.add_argument(
        "--engine-root", type=Path, help="also measure this checkout's engine, side by side"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.config:
        args.config = str(Path(args.config).resolve())
    # The example config pseudonymises names with a key from the environment.
    os.environ.setdefault("CUSTOS_PSEUDONYM_KEY", "benchmark-key-0123456789")

    this, scored = run_here(args)
    runs = [this]
    if args.engine_root:
        runs.append(run_elsewhere(args.engine_root.resolve(), args))
    setup = {"n": args.n, "seed": args.seed, "config": args.config}
    if args.json:
        print(json.dumps({"setup": setup, "runs": runs}, indent=2))
        return 0
    print(render(runs, setup))
    if args.misses:
        print(
            f"\n{args.misses} missed spans "
            "(\u00bbspan\u00ab in the original; the masked line below it):"
        )
        print("\n".join(misses(scored, args.misses)))
        print(f"\n{args.misses} altered tokens that are not PHI:")
        print("\n".join(alterations(scored, args.misses)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
