"""A tool's `outputSchema` as the client must read it once the tool's answers are masked.

An MCP client checks a tool's `structuredContent` against the `outputSchema` it listed (the
Python SDK refuses the result when it does not conform). Masking changes what the schema
promised: a number under a PHI key becomes a placeholder string ("[MRN]"), a value matching
a `pattern` or a `format` no longer does ("[SSN]", "[DATE]"), a key that is itself PHI is
renamed, a dropped value is gone. So the listing is rewritten to what masking may produce,
and no more: every typed value may also be a string; no string pattern, format, length,
enum or const is asserted; `oneOf` becomes `anyOf` (a widened value may match several) and
`not` goes; no key name is fixed; with a `drop` action, nothing is required. Everything else
(properties, items, descriptions, numbers' ranges, which apply to numbers only) stays."""

from __future__ import annotations

from typing import Any

# Keywords a masked value may now fail: string assertions, fixed values, fixed key names.
_FREED = frozenset(
    {"pattern", "format", "minLength", "maxLength", "enum", "const", "not", "propertyNames"}
    | {"contentEncoding", "contentMediaType", "contentSchema"}
)
# What a dropped value (a member, an item) may fail.
_PRESENT = frozenset({"required", "minItems", "minProperties", "minContains", "dependentRequired"})
# Keywords holding one subschema, a list of them, or a map of them.
_ONE = ("additionalProperties", "items", "additionalItems", "contains", "if", "then", "else")
_ONE += ("unevaluatedProperties", "unevaluatedItems")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def widened(schema: Any, dropping: bool) -> Any:
    """`schema` (JSON Schema, any draft MCP allows) accepting what masking may make of a
    value it accepts. `dropping`: some entity's action is `drop`. The root stays an object,
    as MCP requires of an output schema (and of `structuredContent`)."""
    out = _widened(schema, dropping)
    if isinstance(schema, dict) and "type" in schema:
        out["type"] = schema["type"]
    return out


def _widened(schema: Any, dropping: bool) -> Any:
    if not isinstance(schema, dict):
        return schema  # true, false, or not a schema: left as written
    out: dict[str, Any] = {}
    choices: list[Any] | None = None
    for key, value in schema.items():
        if key in _FREED or (dropping and key in _PRESENT):
            continue
        if key in ("additionalProperties", "unevaluatedProperties") and value is False:
            continue  # a masked key ("[DATE] #2") is one the schema did not name
        if key == "type":
            out[key] = _with_string(value)
        elif key == "oneOf" and isinstance(value, list):
            choices = [_widened(item, dropping) for item in value]
        elif key in _LIST and isinstance(value, list):
            out[key] = [_widened(item, dropping) for item in value]
        elif key in _MAP and isinstance(value, dict):
            out[key] = {name: _widened(item, dropping) for name, item in value.items()}
        elif key in _ONE:
            out[key] = _widened(value, dropping)
        else:
            out[key] = value
    if choices is not None:  # beside an anyOf of its own, both must hold
        if "anyOf" in out:
            out["allOf"] = [*out.get("allOf", []), {"anyOf": choices}]
        else:
            out["anyOf"] = choices
    return out


def _with_string(kind: Any) -> Any:
    """A `type` that also admits a string (a placeholder), or as written if it does."""
    if isinstance(kind, str):
        return kind if kind == "string" else [kind, "string"]
    if isinstance(kind, list) and "string" not in kind:
        return [*kind, "string"]
    return kind
