"""Text from records and entries, made safe to print on a terminal.

A record's strings (bodies, writer, chain, ids) and an entry's insertId are whatever was
written or injected: a newline in one would print a line that looks like the tool's own,
and an escape sequence could rewrite what the terminal shows. Printed, they keep their
visible characters and show the others as escapes (`\\n`, `\\x1b`, `\\u202e`), so every
line printed is one the tool wrote. A backslash is left as it is, so the text form is for
reading; the JSON form is the exact one."""

from __future__ import annotations

import re
import unicodedata

# Controls, format characters (bidirectional overrides, zero-width ones), line and
# paragraph separators, lone surrogates: what can move the cursor, break a line or
# reorder what is shown.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Printable ASCII is never hidden: only other characters need a look at their category.
_CANDIDATE = re.compile(r"[^\x20-\x7e]")


def printable(text: str) -> str:
    return _CANDIDATE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if unicodedata.category(char) not in _HIDDEN:
        return char
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
