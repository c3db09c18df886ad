"""Pieces the audit tests share: a configuration with a key pair made for the test, and
exchanges of the shape the services record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from custos.audit.audit_pb2 import Call, Decision, Exchange, Principal
from custos.audit.config import AuditConfig
from custos.audit.records import body
from custos.audit.signing import generate_key_pair


def audit_config(tmp_path: Path, **overrides: Any) -> AuditConfig:
    key = tmp_path / "audit.pem"
    if not key.exists():
        generate_key_pair(key, tmp_path / "audit.pub")
    settings: dict[str, Any] = {
        "spool_dir": tmp_path / "spool",
        "signing_key": key,
        "writer": "extproc-test",
    }
    return AuditConfig.model_validate(settings | overrides)


def exchange(request_id: str, status: int = 200) -> Exchange:
    request = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}'
    return Exchange(
        request_id=request_id,
        decision_id="d-" + request_id,
        principal=Principal(issuer="https://idp.example", subject="alice", groups=["care"]),
        http_method="POST",
        http_path="/mcp",
        calls=[Call(method="tools/call", tool="echo")],
        request=body(request, keep=True, max_bytes=1024),
        decision=Decision(effect="allow", code="allow", rule="care-team"),
        response=body(b'{"jsonrpc":"2.0","id":1,"result":{}}', keep=True, max_bytes=1024),
        status=status,
        outcome="complete",
    )
