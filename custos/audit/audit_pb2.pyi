import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditRecord(_message.Message):
    __slots__ = ("record_id", "writer", "chain", "sequence", "previous_hash", "hash", "time", "exchange", "checkpoint", "chain_start")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    WRITER_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    CHAIN_START_FIELD_NUMBER: _ClassVar[int]
    record_id: str
    writer: str
    chain: str
    sequence: int
    previous_hash: bytes
    hash: bytes
    time: _timestamp_pb2.Timestamp
    exchange: Exchange
    checkpoint: Checkpoint
    chain_start: ChainStart
    def __init__(self, record_id: _Optional[str] = ..., writer: _Optional[str] = ..., chain: _Optional[str] = ..., sequence: _Optional[int] = ..., previous_hash: _Optional[bytes] = ..., hash: _Optional[bytes] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., exchange: _Optional[_Union[Exchange, _Mapping]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., chain_start: _Optional[_Union[ChainStart, _Mapping]] = ...) -> None: ...

class Exchange(_message.Message):
    __slots__ = ("request_id", "session_id", "decision_id", "principal", "source_address", "http_method", "http_path", "calls", "request", "decision", "masking", "response", "unmasked_response_sha256", "status", "latency_us", "outcome")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HTTP_METHOD_FIELD_NUMBER: _ClassVar[int]
    HTTP_PATH_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    MASKING_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    UNMASKED_RESPONSE_SHA256_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_US_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    session_id: str
    decision_id: str
    principal: Principal
    source_address: str
    http_method: str
    http_path: str
    calls: _containers.RepeatedCompositeFieldContainer[Call]
    request: Body
    decision: Decision
    masking: Masking
    response: Body
    unmasked_response_sha256: bytes
    status: int
    latency_us: int
    outcome: str
    def __init__(self, request_id: _Optional[str] = ..., session_id: _Optional[str] = ..., decision_id: _Optional[str] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., source_address: _Optional[str] = ..., http_method: _Optional[str] = ..., http_path: _Optional[str] = ..., calls: _Optional[_Iterable[_Union[Call, _Mapping]]] = ..., request: _Optional[_Union[Body, _Mapping]] = ..., decision: _Optional[_Union[Decision, _Mapping]] = ..., masking: _Optional[_Union[Masking, _Mapping]] = ..., response: _Optional[_Union[Body, _Mapping]] = ..., unmasked_response_sha256: _Optional[bytes] = ..., status: _Optional[int] = ..., latency_us: _Optional[int] = ..., outcome: _Optional[str] = ...) -> None: ...

class Principal(_message.Message):
    __slots__ = ("issuer", "subject", "email", "groups")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    subject: str
    email: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, issuer: _Optional[str] = ..., subject: _Optional[str] = ..., email: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ...) -> None: ...

class Call(_message.Message):
    __slots__ = ("method", "tool", "name")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    method: str
    tool: str
    name: str
    def __init__(self, method: _Optional[str] = ..., tool: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("effect", "code", "rule", "reason", "policy")
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    effect: str
    code: str
    rule: str
    reason: str
    policy: str
    def __init__(self, effect: _Optional[str] = ..., code: _Optional[str] = ..., rule: _Optional[str] = ..., reason: _Optional[str] = ..., policy: _Optional[str] = ...) -> None: ...

class Masking(_message.Message):
    __slots__ = ("counts", "paths")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.ScalarMap[str, int]
    paths: _containers.RepeatedCompositeFieldContainer[MaskedPath]
    def __init__(self, counts: _Optional[_Mapping[str, int]] = ..., paths: _Optional[_Iterable[_Union[MaskedPath, _Mapping]]] = ...) -> None: ...

class MaskedPath(_message.Message):
    __slots__ = ("entity", "paths")
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    entity: str
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, entity: _Optional[str] = ..., paths: _Optional[_Iterable[str]] = ...) -> None: ...

class Body(_message.Message):
    __slots__ = ("text", "size", "sha256", "truncated")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    text: str
    size: int
    sha256: bytes
    truncated: bool
    def __init__(self, text: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[bytes] = ..., truncated: _Optional[bool] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("head_sequence", "head_hash", "key_id", "signature", "reason")
    HEAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    head_sequence: int
    head_hash: bytes
    key_id: str
    signature: bytes
    reason: str
    def __init__(self, head_sequence: _Optional[int] = ..., head_hash: _Optional[bytes] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class ChainStart(_message.Message):
    __slots__ = ("reason", "previous_chain", "previous_sequence", "previous_hash")
    REASON_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CHAIN_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    reason: str
    previous_chain: str
    previous_sequence: int
    previous_hash: bytes
    def __init__(self, reason: _Optional[str] = ..., previous_chain: _Optional[str] = ..., previous_sequence: _Optional[int] = ..., previous_hash: _Optional[bytes] = ...) -> None: ...
