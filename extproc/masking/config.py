"""Masking configuration: a YAML file next to the policy, validated on load."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from custos.config_file import load_model
from custos.errors import ConfigError
from custos.policy.document import compile_condition
from extproc.masking.actions import Action
from extproc.masking.fields import parse_path
from extproc.masking.lexicon import BuiltinKeys

Entity = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRule(_Strict):
    """A JSON key or path whose value is PHI whatever it looks like.

    `ssn` or `*.ssn`: that key at any depth. `$.result.structuredContent.patients[*].dob`:
    that path from the root, `*` matching any key and `[*]` any list index."""

    path: str = Field(min_length=1)
    entity: Entity

    @field_validator("path")
    @classmethod
    def _parses(cls, path: str) -> str:
        if path.startswith("$"):
            parse_path(path)  # raises ValueError naming the path
        return path


class PatternRule(_Strict):
    entity: Entity
    regex: str = Field(min_length=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str) -> str:
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return regex


class MaskingException(_Strict):
    """Who may see which entities unmasked: a CEL condition over the policy's variables
    (`identity`, `request`, `mcp`, `now`), e.g. members of `phi-unmasked` see SSNs."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    when: str = Field(min_length=1)
    entities: tuple[Entity, ...] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _compiles(cls, when: str) -> str:
        compile_condition(when)  # ValueError with the CEL position
        return when


class PseudonymKey(_Strict):
    """The HMAC key for pseudonyms, from a mounted secret or an environment variable."""

    file: Path | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PseudonymKey:
        if (self.file is None) == (self.env is None):
            raise ValueError("set exactly one of 'file' or 'env'")
        return self

    def read(self) -> bytes:
        if self.env is not None:
            source = f"environment variable {self.env}"
            if self.env not in os.environ:
                raise ConfigError(f"the pseudonym key: {source} is not set")
            value = os.environ[self.env].encode()
        elif self.file is None:  # the validator makes this impossible
            raise ConfigError("the pseudonym key has neither file nor env")
        else:
            source = str(self.file)
            try:
                value = self.file.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the pseudonym key: {exc.strerror}") from exc
        if len(value) < 16:
            raise ConfigError(f"the pseudonym key ({source}) must be at least 16 bytes")
        return value


class MaskingConfig(_Strict):
    default_action: Action = "redact"
    actions: dict[Entity, Action] = {}
    fields: tuple[FieldRule, ...] = ()
    patterns: tuple[PatternRule, ...] = ()
    words: dict[Entity, tuple[str, ...]] = {}
    detectors: frozenset[str] | None = None  # built-in detectors to use; None = all
    # The built-in lexicon of PHI keys and FHIR R4's shapes (extproc.masking.lexicon), and
    # the lexicon's keys to leave out of it (an operator's `city` that is a clinic's).
    builtin_keys: bool = True
    builtin_keys_off: tuple[str, ...] = ()
    # Accept SSNs in the never-issued 9xx areas, which fake and test data use.
    ssn_test_areas: bool = False
    pseudonym_key: PseudonymKey | None = None
    exceptions: tuple[MaskingException, ...] = ()
    # The largest answer masked whole (a JSON body, gunzipped), and the largest event of a
    # stream: above either, the client gets a JSON-RPC error that names the limit.
    max_body_bytes: int = Field(default=4 * 1_048_576, ge=1024)
    max_event_bytes: int = Field(default=4 * 1_048_576, ge=1024)
    # A body that takes longer to mask is refused. Keep it under Envoy's ext_proc message
    # timeout, so the client gets this clear refusal rather than Envoy's.
    mask_timeout_ms: int = Field(default=2000, ge=10, le=60_000)
    # Also mask the arguments of each call before the MCP server sees them (a tool
    # argument carrying an SSN), for servers that must not receive PHI.
    mask_requests: bool = False

    @field_validator("builtin_keys_off")
    @classmethod
    def _in_lexicon(cls, off: tuple[str, ...]) -> tuple[str, ...]:
        BuiltinKeys(off)  # ValueError naming what the lexicon does not hold
        return off

    @model_validator(mode="after")
    def _key_for_pseudonyms(self) -> MaskingConfig:
        uses = self.default_action == "pseudonym" or "pseudonym" in self.actions.values()
        if uses and self.pseudonym_key is None:
            raise ValueError("the 'pseudonym' action needs a pseudonym_key")
        return self

    def action_for(self, entity: str) -> Action:
        return self.actions.get(entity, self.default_action)


def load_masking_config(path: str | Path) -> MaskingConfig:
    path = Path(path)
    config = load_model(path, MaskingConfig)
    key = config.pseudonym_key
    if key is not None and key.file is not None and not key.file.is_absolute():
        config = config.model_copy(
            update={"pseudonym_key": key.model_copy(update={"file": path.parent / key.file})}
        )
    return config
