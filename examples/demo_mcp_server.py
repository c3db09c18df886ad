"""Demo MCP server for Custos: a tiny "EHR" serving FAKE patient data over streamable HTTP.

Every patient below is invented. Names, dates of birth, addresses and clinical notes are
made up; SSNs use the 900-999 area numbers, which the SSA never issues; phone numbers use
the 555-01xx range reserved for fiction; e-mail addresses use the reserved example.* domains.
The data is a fixed table, so every run and every test sees the same records.

It exists so the sidecar has something realistic to sit in front of: tools that read
(search_patients, get_patient_record) and one that destroys (delete_patient), with PHI both
in structured fields and inside free-text prose, to exercise authorization and PHI masking.

Run it:

    python examples/demo_mcp_server.py --host 127.0.0.1 --port 8001

It serves MCP streamable HTTP at /mcp (stateful sessions; SSE responses unless --json-response).
If DEMO_MCP_HEADER_LOG names a file, the headers of every HTTP request are appended to it as
one JSON line each, so tests outside this process can see what the sidecar forwarded upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

HEADER_LOG_ENV = "DEMO_MCP_HEADER_LOG"
# Set to 1 to gzip every JSON answer whatever the client accepts: an upstream that
# misbehaves this way must still not get PHI past the sidecar (its tests use this).
FORCE_GZIP_ENV = "DEMO_MCP_FORCE_GZIP"
# Set to a number of bytes to make each clinical note a long history of that size: big
# answers (years of notes) must be masked, or refused by name, never cut.
NOTE_BYTES_ENV = "DEMO_MCP_NOTE_BYTES"
MCP_PATH = "/mcp"

logger = logging.getLogger("demo_mcp_server")


class PatientSummary(BaseModel):
    patient_id: str
    mrn: str
    name: str
    date_of_birth: str


class PatientRecord(PatientSummary):
    ssn: str
    phone: str
    email: str
    address: str
    clinical_note: str

    def summary(self) -> PatientSummary:
        # A fresh PatientSummary, not self: the SDK dumps a returned subclass with all its
        # fields, which would leak the SSN and note into search results.
        return PatientSummary.model_validate(
            self.model_dump(include=set(PatientSummary.model_fields))
        )


class SearchResult(BaseModel):
    query: str
    count: int
    patients: list[PatientSummary]


class DeleteResult(BaseModel):
    patient_id: str
    deleted: bool
    remaining: int


# (name, date of birth, SSN, phone, e-mail, address, condition seen for) -- all invented.
_FAKE_PATIENTS: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    (
        "Alice Fakenham",
        "1984-03-12",
        "900-12-3456",
        "(555) 010-0101",
        "alice.fakenham@example.com",
        "12 Imaginary Lane, Springfield, ZZ 00001",
        "seasonal allergic rhinitis",
    ),
    (
        "Bob Placeholder",
        "1971-11-02",
        "901-23-4567",
        "(555) 010-0102",
        "bob.placeholder@example.org",
        "48 Nowhere Street, Shelbyville, ZZ 00002",
        "type 2 diabetes mellitus",
    ),
    (
        "Carol Testwell",
        "1990-07-25",
        "902-34-5678",
        "(555) 010-0103",
        "carol.testwell@example.net",
        "7 Sample Court, Ogdenville, ZZ 00003",
        "mild persistent asthma",
    ),
    (
        "David Notreal",
        "1965-01-30",
        "903-45-6789",
        "(555) 010-0104",
        "david.notreal@example.com",
        "300 Fiction Avenue, North Haverbrook, ZZ 00004",
        "essential hypertension",
    ),
    (
        "Eve Mockingbird",
        "2001-09-14",
        "904-56-7890",
        "(555) 010-0105",
        "eve.mockingbird@example.org",
        "9 Pretend Road, Capital City, ZZ 00005",
        "migraine without aura",
    ),
    (
        "Frank Dummyson",
        "1958-05-08",
        "905-67-8901",
        "(555) 010-0106",
        "frank.dummyson@example.net",
        "1 Lorem Ipsum Plaza, Brockway, ZZ 00006",
        "osteoarthritis of the left knee",
    ),
)


def fake_patients() -> dict[str, PatientRecord]:
    """A fresh copy of the fake table, keyed by patient id; each server mutates its own."""
    records: dict[str, PatientRecord] = {}
    for number, (name, dob, ssn, phone, email, address, condition) in enumerate(_FAKE_PATIENTS, 1):
        patient_id = f"pt-{number:04d}"
        # The note repeats name, DOB and phone inside prose on purpose: masking has to find
        # PHI in free text, not only in the fields that are labelled as such.
        note = (
            f"{name} (DOB {dob}) was seen today for follow-up of {condition}. "
            f"Symptoms are stable on the current plan; no new complaints. "
            f"{name.split()[0]} asked to be called back at {phone} with lab results. "
            f"Return visit in three months."
        )
        if size := int(os.environ.get(NOTE_BYTES_ENV, "0")):
            visit = " Seen again; stable on the same plan, no new complaints."
            note = (note + visit * (size // len(visit) + 1))[:size]
        records[patient_id] = PatientRecord(
            patient_id=patient_id,
            mrn=f"MRN-{100000 + number}",
            name=name,
            date_of_birth=dob,
            ssn=ssn,
            phone=phone,
            email=email,
            address=address,
            clinical_note=note,
        )
    return records


def build_server() -> MCPServer:
    """The MCP server with its three tools, over its own in-memory copy of the fake data."""
    patients = fake_patients()
    server = MCPServer(
        "custos-demo-ehr",
        version="0.1.0",
        instructions="Demo EHR with FAKE patient data, for testing the Custos sidecar.",
    )

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def search_patients(
        query: str, limit: Annotated[int, Field(ge=1, le=100)] = 10
    ) -> SearchResult:
        """Find patients whose name contains `query` (case-insensitive)."""
        needle = query.casefold()
        found = [p.summary() for p in patients.values() if needle in p.name.casefold()][:limit]
        return SearchResult(query=query, count=len(found), patients=found)

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def get_patient_record(patient_id: str) -> PatientRecord:
        """Full record of one patient: demographics, SSN, contact details, latest clinical note."""
        if patient_id not in patients:
            # ToolError becomes an isError result carrying this message, not a protocol error.
            raise ToolError(f"Unknown patient id: {patient_id}")
        return patients[patient_id]

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
    def delete_patient(patient_id: str) -> DeleteResult:
        """Delete a patient from this server's in-memory copy of the data."""
        if patients.pop(patient_id, None) is None:
            raise ToolError(f"Unknown patient id: {patient_id}")
        return DeleteResult(patient_id=patient_id, deleted=True, remaining=len(patients))

    return server


class HeaderLogMiddleware:
    """Append {"method", "path", "headers", "client"} for every HTTP request to a JSON-lines
    file.

    Tests of the sidecar read this file to prove what reached the upstream (for example that
    the client's Authorization header was stripped), so it logs on arrival, before the SDK can
    reject the request or hold it open as a long-lived SSE stream.
    """

    def __init__(self, app: ASGIApp, log_path: Path) -> None:
        self.app = app
        self.log_path = log_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: dict[str, str] = {}
            for raw_name, raw_value in scope["headers"]:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1")
                # Repeated headers are folded as HTTP allows, so none is silently dropped.
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            # The client as the server reads it: uvicorn trusts X-Forwarded-For from Envoy.
            client = (scope.get("client") or ("", 0))[0]
            line = json.dumps(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "headers": headers,
                    "client": client,
                }
            )
            # One write per line in append mode keeps lines whole even when requests overlap.
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(line + "\n")
        await self.app(scope, receive, send)


class ForcedGzipMiddleware:
    """Compresses every application/json answer, ignoring Accept-Encoding."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body" or not _is_json(start):
                if start:  # not JSON: let it through as it was
                    await send(dict(start))
                    start.clear()
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                body = gzip.compress(b"".join(chunks))
                headers = [
                    (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
                ]
                headers += [
                    (b"content-encoding", b"gzip"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def _is_json(start: dict[str, Any]) -> bool:
    return any(
        k.lower() == b"content-type" and v.startswith(b"application/json")
        for k, v in start.get("headers", [])
    )


def build_app(*, header_log: Path | None = None, json_response: bool = False) -> ASGIApp:
    """The ASGI app serving MCP at /mcp; `header_log` defaults to $DEMO_MCP_HEADER_LOG."""
    app: ASGIApp = build_server().streamable_http_app(
        streamable_http_path=MCP_PATH,
        json_response=json_response,
        # The SDK's DNS-rebinding guard accepts only loopback Host/Origin values; behind a
        # proxy the Host is whatever the client used for the proxy, so the guard is off here.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    if header_log is None and (env_path := os.environ.get(HEADER_LOG_ENV)):
        header_log = Path(env_path)
    if os.environ.get(FORCE_GZIP_ENV) == "1":
        app = ForcedGzipMiddleware(app)
    if header_log is not None:
        app = HeaderLogMiddleware(app, header_log)
    return app


class _AnnouncingServer(uvicorn.Server):
    """Logs the ready line only once the socket listens and the app's lifespan has started."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            logger.info("demo MCP server listening on http://%s:%d%s", shown, port, MCP_PATH)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Demo MCP server with FAKE patient data.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument(
        "--json-response",
        action="store_true",
        help="answer POSTs with application/json instead of text/event-stream",
    )
    args = parser.parse_args(argv)

    # Configured before the SDK's own basicConfig runs, so that one is a no-op and nothing
    # (uvicorn's access log included, which defaults to stdout) ends up on stdout.
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    app = build_app(json_response=args.json_response)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None)
    asyncio.run(_AnnouncingServer(config).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
