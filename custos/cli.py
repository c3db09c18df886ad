"""The `custos` command. It sits at the edge: it imports the library (and launches the
services), never the reverse."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from custos.audit.defaults import AUDIT_LOG, MAX_UNSIGNED_SECONDS, MIN_RETENTION_DAYS
from custos.errors import ConfigError, CustosError

if TYPE_CHECKING:
    from custos.audit.config import AuditConfig
    from custos.audit.verify import Found

HEALTH_HELP = "serve only gRPC health checks here (host:port), e.g. for the kubelet's probes"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    # One line per HTTP call (JWKS fetches, `custos token`) is noise, not news.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.handler(args))
    except CustosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="custos", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the whole local stack (make run)")
    run.add_argument("--policy", type=Path, help="policy file (default: the example)")
    run.add_argument("--run-dir", type=Path, default=Path("run"), help="generated configs")
    run.add_argument(
        "--free-ports", action="store_true", help="any free loopback ports instead of 8080 etc."
    )
    run.set_defaults(handler=_run)

    token = commands.add_parser("token", help="print a bearer token from the dev issuer")
    token.add_argument("--sub", required=True, help="subject (the user)")
    token.add_argument("--groups", default="", help="comma-separated groups")
    token.add_argument("--email")
    token.add_argument("--aud", help="audience (default: the local stack's)")
    token.add_argument("--expires-in", type=int, default=3600, help="seconds")
    token.add_argument(
        "--issuer", help="the development issuer's URL (default: where `custos run` starts it)"
    )
    token.set_defaults(handler=_token)

    policy = commands.add_parser("policy", help="check, test and explain policy files")
    verbs = policy.add_subparsers(required=True, metavar="VERB")
    check = verbs.add_parser("check", help="compile every rule; exit 1 on errors")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_policy_check)
    test = verbs.add_parser("test", help="run a file of cases against a policy")
    test.add_argument("file", type=Path)
    test.add_argument("cases", type=Path)
    test.set_defaults(handler=_policy_test)
    explain = verbs.add_parser("explain", help="show which rules matched a case, and why")
    explain.add_argument("file", type=Path)
    explain.add_argument("--case", type=Path, required=True, help="a cases file")
    explain.add_argument("--name", help="the case to explain (default: every case)")
    explain.set_defaults(handler=_policy_explain)

    mask = commands.add_parser(
        "mask",
        help="mask a JSON or SSE document offline",
        description="Mask a saved answer as ext_proc would, to tune masking rules. Rules "
        "that pseudonymise read their HMAC key where the rules say (the example reads the "
        "environment variable CUSTOS_PSEUDONYM_KEY, at least 16 bytes).",
    )
    mask.add_argument("file", help="a JSON-RPC response or an SSE stream; - for stdin")
    mask.add_argument(
        "--config",
        type=Path,
        help="masking rules (YAML); default: the example rules (examples/masking.yaml) with a "
        "throwaway pseudonym key unless CUSTOS_PSEUDONYM_KEY is set",
    )
    mask.add_argument("--report", action="store_true", help="list what was masked on stderr")
    mask.set_defaults(handler=_mask)

    authz = commands.add_parser("extauthz", help="serve the ext_authz gRPC service")
    authz.add_argument("--config", type=Path, required=True)
    authz.add_argument("--audit", type=Path, help="audit configuration (YAML): record refusals")
    authz.set_defaults(handler=_extauthz)

    proc = commands.add_parser("extproc", help="serve the ext_proc (PHI masking) gRPC service")
    proc.add_argument("--masking", type=Path, required=True, help="masking rules (YAML)")
    proc.add_argument("--listen", default="127.0.0.1:9003")
    proc.add_argument("--policy", type=Path, help="hide tools/list entries it would refuse")
    proc.add_argument("--metrics-listen", help="serve Prometheus metrics here (host:port)")
    proc.add_argument("--audit", type=Path, help="audit configuration (YAML): record exchanges")
    proc.add_argument("--health-listen", help=HEALTH_HELP)
    proc.add_argument(
        "--reload-seconds",
        type=_interval,
        default=1.0,
        help="look for changed masking and policy files this often (%(default)s)",
    )
    proc.set_defaults(handler=_extproc)

    audit = commands.add_parser("audit", help="audit records: keys, verification, replay")
    audit_verbs = audit.add_subparsers(required=True, metavar="VERB")
    keygen = audit_verbs.add_parser("keygen", help="make an Ed25519 checkpoint signing key pair")
    keygen.add_argument("private", type=Path, help="the private key file to create (PEM)")
    keygen.add_argument("public", type=Path, help="the public key file, for auditors (PEM)")
    keygen.set_defaults(handler=_audit_keygen)
    verify = audit_verbs.add_parser(
        "verify", help="check hashes, links, signatures and chain ends; exit 1 on any finding"
    )
    _record_source(verify)
    verify.add_argument(
        "--public-key", type=Path, action="append", required=True, help="PEM; may repeat"
    )
    verify.add_argument("--live", action="store_true", help="writers still running: open ends")
    verify.add_argument(
        "--max-unsigned-seconds",
        type=_seconds,
        default=MAX_UNSIGNED_SECONDS,
        help="with --live: how long an open end may stay unsigned, next to the set's newest "
        "record (default %(default)g: checkpoints come every 60 s with news)",
    )
    verify.add_argument(
        "--expect-writer",
        action="append",
        default=[],
        metavar="NAME",
        help="a writer that must have a chain in the set; may repeat",
    )
    verify.set_defaults(handler=_audit_verify)
    replay = audit_verbs.add_parser("replay", help="show exchanges as the client saw them")
    _record_source(replay)
    replay.add_argument(
        "--public-key",
        type=Path,
        action="append",
        default=[],
        help="PEM; may repeat: records no valid signature covers are marked",
    )
    replay.add_argument("--request-id")
    replay.add_argument("--session-id")
    replay.add_argument("--principal", help="subject or e-mail")
    replay.add_argument("--since", type=_utc, help="ISO 8601 time, inclusive (UTC if no zone)")
    replay.add_argument("--until", type=_utc, help="ISO 8601 time, exclusive")
    replay.add_argument("--json", action="store_true", help="one JSON record per line")
    replay.set_defaults(handler=_audit_replay)

    shipper = commands.add_parser("shipper", help="ship audit spools to Cloud Logging")
    shipper.add_argument("--audit", type=Path, required=True, help="audit configuration (YAML)")
    shipper.add_argument("--metrics-listen", help="serve Prometheus metrics here (host:port)")
    shipper.add_argument("--health-listen", help=HEALTH_HELP)
    shipper.set_defaults(handler=_shipper)

    envoy = commands.add_parser(
        "envoy", help="become Envoy with this bootstrap (a container's main process)"
    )
    envoy.add_argument("--config", type=Path, required=True, help="Envoy bootstrap (YAML)")
    envoy.add_argument(
        "envoy_args",
        nargs="*",
        metavar="-- ENVOY_ARG",
        help="passed to envoy as they are, e.g. -- --mode validate or -- --log-level warn",
    )
    envoy.set_defaults(handler=_envoy)

    issuer = commands.add_parser("dev-issuer", help="serve a development OIDC issuer")
    issuer.add_argument("--port", type=int, default=9100)
    issuer.set_defaults(handler=_dev_issuer)
    _logging_parser(commands)
    return parser


def _logging_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser(
        "logging", help="the Cloud Logging bucket and sink that keep the audit records"
    )
    verbs = group.add_subparsers(required=True, metavar="VERB")
    provision = verbs.add_parser(
        "provision", help="create (idempotently) the log bucket, its lock and the sink"
    )
    _logging_target_arguments(provision)
    provision.add_argument(
        "--lock", action="store_true", help="lock the bucket: its retention can never change"
    )
    provision.add_argument("--sink", default=AUDIT_LOG, help="sink name (%(default)s)")
    provision.add_argument(
        "--allow-short-retention",
        action="store_true",
        help=f"accept retention under {MIN_RETENTION_DAYS} days (not for audit records)",
    )
    provision.add_argument(
        "--keep-default-copy",
        action="store_true",
        help="do not exclude the audit log from the _Default sink: a second copy of every "
        "record stays in the unlocked _Default bucket (not for audit records)",
    )
    provision.add_argument(
        "--force-sink",
        action="store_true",
        help="re-point an existing sink that routes into another destination (by default "
        "refused: it may be what feeds a locked bucket now)",
    )
    provision.set_defaults(handler=_logging_provision)
    check = verbs.add_parser(
        "check",
        help="exit 1 unless the bucket is locked, long enough and fed by a sink, and no "
        "other sink (_Default included) keeps a copy of the audit log",
    )
    _logging_target_arguments(check)
    check.add_argument(
        "--allow-short-retention",
        action="store_true",
        help=f"accept --retention-days under {MIN_RETENTION_DAYS} (not for audit records)",
    )
    check.add_argument(
        "--allow-default-copy",
        action="store_true",
        help="only warn when the _Default sink copies the audit log into its bucket",
    )
    check.add_argument(
        "--allow-sink",
        action="append",
        default=[],
        metavar="NAME",
        help="only warn when this sink (not _Default) may copy the audit log; repeatable",
    )
    check.set_defaults(handler=_logging_check)
    emulator = verbs.add_parser("emulator", help="serve a local Cloud Logging API emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=9105)
    emulator.set_defaults(handler=_logging_emulator)


def _logging_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", required=True, help="Google Cloud project id")
    parser.add_argument("--location", required=True, help="bucket location, e.g. global")
    parser.add_argument("--bucket", required=True, help="log bucket id")
    parser.add_argument(
        "--retention-days",
        type=int,
        default=MIN_RETENTION_DAYS,
        help="retention in days: provision sets it, check requires at least it (%(default)s)",
    )
    parser.add_argument("--log-name", default=AUDIT_LOG, help="the audit log's name (%(default)s)")
    parser.add_argument(
        "--endpoint",
        help="host:port of the local emulator (no TLS, no credentials); default: Google, "
        "with Application Default Credentials",
    )


def _logging_provision(args: argparse.Namespace) -> int:
    from custos.cloud_logging.clients import config_client
    from custos.cloud_logging.provision import AuditBucket, provision

    target = AuditBucket(args.project, args.location, args.bucket, args.log_name)
    with config_client(args.endpoint) as client:
        done = provision(
            client,
            target,
            retention_days=args.retention_days,
            lock=args.lock,
            sink_name=args.sink,
            allow_short_retention=args.allow_short_retention,
            keep_default_copy=args.keep_default_copy,
            force_sink=args.force_sink,
        )
    print(f"bucket {target.path}: {done.bucket.outcome} ({done.bucket.detail})")
    print(f"lock: {done.lock.outcome} ({done.lock.detail})")
    print(f"sink {done.sink_path}: {done.sink.outcome} ({done.sink.detail})")
    print(f"writer identity: {done.writer_identity or 'none'}; {done.grant}")
    default = done.default_copy
    print(f"default sink {done.default_sink_path}: {default.outcome} ({default.detail})")
    return 0


def _logging_check(args: argparse.Namespace) -> int:
    from custos.cloud_logging.clients import config_client
    from custos.cloud_logging.provision import AuditBucket, check

    target = AuditBucket(args.project, args.location, args.bucket, args.log_name)
    with config_client(args.endpoint) as client:
        result = check(
            client,
            target,
            retention_days=args.retention_days,
            allow_short_retention=args.allow_short_retention,
            allow_default_copy=args.allow_default_copy,
            allow_sinks=tuple(args.allow_sink),
        )
    for warning in result.warnings:
        print(f"WARN  {warning}")
    if not result.ok:
        for problem in result.problems:
            print(f"FAIL  {problem}")
        return 1
    print(
        f"OK  bucket {target.path}: locked, keeps entries {result.retention_days} days "
        f"(required {result.required_days}); {target.log_filter} routed into it by "
        f"sink {', '.join(result.routing_sinks)}; {result.default_copy}"
    )
    return 0


def _logging_emulator(args: argparse.Namespace) -> int:
    from custos.cloud_logging.emulator import serve

    serve(args.host, args.port)
    return 0


def _run(args: argparse.Namespace) -> int:
    from custos.run_command import run_stack

    return run_stack(args.run_dir, args.policy, free_ports=args.free_ports)


def _token(args: argparse.Namespace) -> int:
    import httpx

    from custos.stack import Ports

    issuer = args.issuer or f"http://127.0.0.1:{Ports().issuer}"
    ask: dict[str, object] = {
        "sub": args.sub,
        "groups": [g for g in args.groups.split(",") if g],
        "expires_in": args.expires_in,
    }
    if args.email:
        ask["email"] = args.email
    if args.aud:
        ask["aud"] = args.aud
    try:
        response = httpx.post(f"{issuer}/token", json=ask, timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        print(
            f"error: no development issuer at {issuer} ({type(exc).__name__}); "
            "is `make run` running?",
            file=sys.stderr,
        )
        return 1
    print(response.json()["access_token"])
    return 0


def _policy_check(args: argparse.Namespace) -> int:
    from custos.policy import load_policy

    policy = load_policy(args.file)
    print(f"{args.file}: {len(policy.rules)} rules OK ({policy.digest[:12]})")
    return 0


def _policy_test(args: argparse.Namespace) -> int:
    from custos.policy import load_policy
    from custos.policy.cases import load_cases, run_cases

    policy = load_policy(args.file)
    passed = failed = 0
    for result in run_cases(policy, load_cases(args.cases)):
        got = f"{result.decision.effect} ({result.decision.rule})"
        if result.passed:
            passed += 1
            print(f"PASS  {result.case.name}: {got}")
        else:
            failed += 1
            expect = result.case.expect
            wanted = expect.effect + (f" ({expect.rule})" if expect.rule else "")
            print(f"FAIL  {result.case.name}: expected {wanted}, got {got}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _policy_explain(args: argparse.Namespace) -> int:
    from custos.policy import decide, load_policy
    from custos.policy.cases import load_cases
    from custos.policy.explain import render

    policy = load_policy(args.file)
    cases = [c for c in load_cases(args.case) if args.name in (None, c.name)]
    if not cases:
        print(f"error: no case named {args.name!r} in {args.case}", file=sys.stderr)
        return 1
    for case in cases:
        print(render(case.name, decide(policy, case.to_input(), explain=True)))
    return 0


def _mask(args: argparse.Namespace) -> int:
    from extproc.offline import mask_document

    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise CustosError(f"{args.file}: {exc.strerror}") from exc
    masked, report = mask_document(args.config or _example_masking(), raw)
    sys.stdout.buffer.write(masked)
    if args.report:
        print(json.dumps(report, indent=2), file=sys.stderr)
    return 0


def _example_masking() -> Path:
    """`custos mask` with no setup: the example rules, with a throwaway pseudonym key
    unless one is set, and a line on stderr that says so."""
    import os
    import secrets

    from custos.stack import EXAMPLE_MASKING, PSEUDONYM_KEY_ENV

    if not EXAMPLE_MASKING.is_file():
        raise ConfigError("no --config, and no example rules here (a checkout has them)")
    said = f"custos mask: no --config: the example rules ({EXAMPLE_MASKING.name})"
    if PSEUDONYM_KEY_ENV not in os.environ:
        # Pseudonyms then differ from run to run, and from any deployment's.
        os.environ[PSEUDONYM_KEY_ENV] = secrets.token_urlsafe(24)
        said += f" and a throwaway pseudonym key ({PSEUDONYM_KEY_ENV} is not set)"
    print(said, file=sys.stderr)
    return EXAMPLE_MASKING


def _extauthz(args: argparse.Namespace) -> int:
    from extauthz.config import load_config
    from extauthz.server import serve

    asyncio.run(serve(load_config(args.config), _audit_config(args.audit)))
    return 0


def _extproc(args: argparse.Namespace) -> int:
    from extproc.server import serve

    audit = _audit_config(args.audit)
    asyncio.run(
        serve(
            args.masking,
            args.listen,
            args.policy,
            args.metrics_listen,
            audit,
            health_listen=args.health_listen,
            reload_seconds=args.reload_seconds,
        )
    )
    return 0


def _envoy(args: argparse.Namespace) -> int:
    import os

    from custos.envoy_config import ENVOY_FIXED_ARGS, envoy_binary

    if not args.config.is_file():
        raise ConfigError(f"{args.config}: no such file")
    binary = envoy_binary()
    argv = [binary, "--config-path", str(args.config), *ENVOY_FIXED_ARGS, *args.envoy_args]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        # Envoy takes this process's place: the container's main process, given the
        # kubelet's signals directly, with no Python in between to forward or swallow them.
        os.execv(binary, argv)
    except OSError as exc:
        raise ConfigError(f"cannot run {binary}: {exc.strerror}") from exc


def _audit_config(path: Path | None) -> AuditConfig | None:
    from custos.audit.config import load_audit_config

    return load_audit_config(path) if path is not None else None


def _shipper(args: argparse.Namespace) -> int:
    from custos.audit.config import load_audit_config
    from custos.audit.shipper_process import serve

    serve(load_audit_config(args.audit), args.metrics_listen, args.health_listen)
    return 0


def _audit_keygen(args: argparse.Namespace) -> int:
    from custos.audit.signing import generate_key_pair

    try:
        key_id = generate_key_pair(args.private, args.public)
    except FileExistsError:
        print(f"error: {args.private} exists; not overwritten", file=sys.stderr)
        return 1
    print(f"key {key_id}: private {args.private}, public {args.public}")
    return 0


def _record_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spool", type=Path, help="a spool directory (or one writer's)")
    source.add_argument("--project", help="read the records back from Cloud Logging")
    parser.add_argument("--log-name", default=AUDIT_LOG, help="with --project")
    parser.add_argument("--endpoint", help="with --project: a local Logging API (host:port)")


def _records(args: argparse.Namespace) -> Iterator[Found]:
    if args.spool is not None:
        from custos.audit.sources import from_spool

        return from_spool(args.spool)
    from custos.audit.entries import from_cloud_logging

    return from_cloud_logging(args.project, args.log_name, args.endpoint)


def _utc(text: str) -> dt.datetime:
    when = dt.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _seconds(text: str) -> float:
    seconds = float(text)
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"{text}: not a number of seconds (0 or more)")
    return seconds


def _interval(text: str) -> float:
    seconds = float(text)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text}: not a number of seconds (more than 0)")
    return seconds


def _audit_replay(args: argparse.Namespace) -> int:
    from custos.audit.replay import Selection, as_json, as_text, checked, select, warning
    from custos.audit.signing import load_public_keys
    from custos.audit.verify import verify

    keys = load_public_keys(args.public_key)
    selection = Selection(args.request_id, args.session_id, args.principal, args.since, args.until)
    found = list(_records(args))
    # Verified over the whole set: a record is covered by checkpoints outside the selection.
    report = verify(found, keys) if keys else None
    shown = checked(select(found, selection), report)
    said = warning(shown, keys_given=report is not None)
    if said:
        print(said, file=sys.stderr)
    lines = as_json(shown) if args.json else as_text(shown, marked=report is not None)
    for line in lines:
        print(line)
    return 0


def _audit_verify(args: argparse.Namespace) -> int:
    from custos.audit.printable import printable
    from custos.audit.signing import load_public_keys
    from custos.audit.verify import verify

    keys = load_public_keys(args.public_key)
    shipped_start = False
    if args.spool is not None:
        from custos.audit.sources import shipped_from

        shipped_start = shipped_from(args.spool)
    report = verify(
        _records(args),
        keys,
        live=args.live,
        shipped_start=shipped_start,
        max_unsigned_seconds=args.max_unsigned_seconds,
        expect_writers=args.expect_writer,
    )
    # Chains, writers, insert ids and spool names in these lines come from the records
    # and entries read, which anyone able to write there chose: escaped, they cannot
    # print a line of their own (a fake "verified") or drive the terminal.
    for summary in report.chains.values():
        state = "closed" if summary.closed else f"open after #{summary.last}"
        print(
            printable(
                f"chain {summary.chain} (writer {summary.writer}): {summary.records} records, "
                f"{summary.exchanges} exchanges, signed through #{summary.signed_through}, "
                f"{state}"
            )
        )
    for note in report.notes:
        print(printable(f"note: {note}"))
    for finding in report.findings:
        print(printable(f"FINDING {finding}"))
    print(f"{len(report.findings)} findings" if report.findings else "verified: no findings")
    return 1 if report.findings else 0


def _dev_issuer(args: argparse.Namespace) -> int:
    import uvicorn

    from custos.dev_issuer import DevIssuer

    issuer = DevIssuer(f"http://127.0.0.1:{args.port}")
    logging.getLogger("custos").warning(
        "development OIDC issuer at %s: NOT FOR PRODUCTION (it mints tokens for anyone "
        "on this machine)",
        issuer.issuer,
    )
    uvicorn.run(issuer.app(), host="127.0.0.1", port=args.port, log_level="warning")
    return 0
