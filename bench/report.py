"""The benchmark's figures, the targets they are judged against, and how they print."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from openloop import OpenLoopResult
from wrkrun import WrkResult

# The targets of issue 2, section 7.
MIN_THROUGHPUT_RATIO = 0.60
MAX_P99_ADDED_MS = 1.0


# Keys of the CPU figures besides the services' names.
MAIN_THREAD = "  of which ext_authz main thread"  # part of ext_authz, not added to totals
GENERATOR = "open-loop generator (this script)"


@dataclass(frozen=True)
class TargetRun:
    """Everything measured against one front Envoy."""

    name: str
    wrk: WrkResult
    open_loop: OpenLoopResult
    # CPU seconds per process during the wrk measurement and during the fixed-rate one.
    cpu_max: dict[str, float]
    cpu_fixed: dict[str, float]
    # ext_authz's own view (Prometheus), during the wrk measurement; empty for bare Envoy.
    authz_decisions: dict[str, float]
    authz_mean_decision_ms: float | None = None

    def cpu_us_max(self) -> dict[str, float]:
        return {n: s / self.wrk.requests * 1e6 for n, s in self.cpu_max.items()}

    def cpu_us_fixed(self) -> dict[str, float]:
        count = max(1, len(self.open_loop.samples))
        return {n: s / count * 1e6 for n, s in self.cpu_fixed.items()}


@dataclass(frozen=True)
class Setup:
    cpus: int
    rules: int
    duration: int
    connections: int
    rate: float
    open_loop_connections: int
    profiled: bool


@dataclass(frozen=True)
class Verdicts:
    throughput_ratio: float
    p99_added_ms: float

    @property
    def ratio_met(self) -> bool:
        return self.throughput_ratio >= MIN_THROUGHPUT_RATIO

    @property
    def p99_met(self) -> bool:
        return self.p99_added_ms <= MAX_P99_ADDED_MS


def judge(bare: TargetRun, authz: TargetRun) -> Verdicts:
    return Verdicts(
        throughput_ratio=authz.wrk.requests_per_second / bare.wrk.requests_per_second,
        p99_added_ms=authz.open_loop.latency_ms(99) - bare.open_loop.latency_ms(99),
    )


def render(setup: Setup, bare: TargetRun, authz: TargetRun) -> str:
    verdicts = judge(bare, authz)
    lines = [
        "Custos benchmark: bare Envoy vs Envoy + ext_authz",
        f"  machine: {setup.cpus} CPUs; every Envoy runs --concurrency 1 --disable-hot-restart;"
        " all processes share the CPUs",
        f"  request: tools/call search_patients, valid token, policy of {setup.rules} rules;"
        " upstream: a separate Envoy answering 200 itself",
        f"  max load: wrk -t1 -c{setup.connections} -d{setup.duration}s (closed loop)",
        f"  fixed rate: {setup.rate:g} req/s for {setup.duration} s, open loop over "
        f"{setup.open_loop_connections} keep-alive connections, latency from scheduled send",
    ]
    if setup.profiled:
        lines.append("  PROFILED: ext_authz ran under cProfile, its figures are pessimistic")
    lines += [
        "",
        *figure_rows(setup.rate, bare, authz),
        "",
        *_targets(setup, verdicts),
        "",
        *_cpu(setup, bare, authz),
    ]
    return "\n".join(lines)


def figure_rows(
    rate: float, bare: TargetRun, other: TargetRun, other_title: str = "Envoy + ext_authz"
) -> list[str]:
    """Throughput and latency of both fronts, side by side."""
    at = f"at {rate:g} req/s"

    def row(label: str, fmt: str, value: Callable[[TargetRun], float]) -> str:
        return f"  {label:<34}{format(value(bare), fmt):>14}{format(value(other), fmt):>20}"

    return [
        f"  {'':<34}{'bare Envoy':>14}{other_title:>20}",
        row("throughput (wrk), req/s", ".0f", lambda r: r.wrk.requests_per_second),
        row("p50 at max load, ms", ".3f", lambda r: r.wrk.p50_ms),
        row("p99 at max load, ms", ".3f", lambda r: r.wrk.p99_ms),
        row(f"p50 {at}, ms", ".3f", lambda r: r.open_loop.latency_ms(50)),
        row(f"p99 {at}, ms", ".3f", lambda r: r.open_loop.latency_ms(99)),
        row(f"max {at}, ms", ".3f", lambda r: r.open_loop.latency_ms(100)),
        row("  service p99 (from actual send), ms", ".3f", lambda r: r.open_loop.service_ms(99)),
        row("  sender lateness p99, ms", ".3f", lambda r: r.open_loop.late_ms(99)),
        row("  achieved rate, req/s", ".1f", lambda r: r.open_loop.achieved_rate),
        row(f"non-200 {at}", "d", lambda r: r.open_loop.non_200),
    ]


def _targets(setup: Setup, verdicts: Verdicts) -> list[str]:
    rows = [
        (
            "throughput ratio (with/bare)",
            f"{verdicts.throughput_ratio:.2f}",
            f">= {MIN_THROUGHPUT_RATIO:.2f}",
            verdicts.ratio_met,
        ),
        (
            f"p99 added at {setup.rate:g} req/s",
            f"{verdicts.p99_added_ms:.3f} ms",
            f"<= {MAX_P99_ADDED_MS:g} ms",
            verdicts.p99_met,
        ),
    ]
    return [
        f"  {label:<30}{value:>10}   target {target:<9} {'MET' if met else 'MISSED'}"
        for label, value, target, met in rows
    ]


def _cpu(setup: Setup, bare: TargetRun, authz: TargetRun) -> list[str]:
    """Where the CPUs went: CPU time per request, per process, under both loads. At max
    load the two CPUs are shared by everything, so these are what decides throughput."""
    lines = cpu_rows(setup.rate, bare, authz, "authz")
    lines.append("  busy at max load with ext_authz, % of one CPU: " + _busy(setup, authz))
    if authz.authz_mean_decision_ms is not None:
        lines.append(
            "  ext_authz pipeline at max load (Authorizer.authorize, from its metrics): "
            f"{authz.authz_mean_decision_ms * 1e3:.0f} us per decision on average"
        )
    decisions = ", ".join(f"{k} {v:.0f}" for k, v in authz.authz_decisions.items())
    lines.append(f"  ext_authz decisions during its wrk run: {decisions or 'none'}")
    return lines


def cpu_rows(rate: float, bare: TargetRun, other: TargetRun, other_label: str) -> list[str]:
    """CPU time per request and process, both fronts, both loads, and the totals (a
    service's main thread is shown under it, not added again)."""
    columns = [bare.cpu_us_max(), other.cpu_us_max(), bare.cpu_us_fixed(), other.cpu_us_fixed()]
    names = list(dict.fromkeys(name for column in columns for name in column))
    at = f"at {rate:g}/s"
    lines = [
        f"  CPU per request, us{'':<18}{'bare max':>10}{f'{other_label} max':>11}"
        f"{f'bare {at}':>15}{f'{other_label} {at}':>16}"
    ]
    for name in _ordered(names):
        lines.append(_cpu_row(name, [column.get(name) for column in columns]))
    totals = [sum(v for n, v in column.items() if not _is_thread(n)) for column in columns]
    lines.append(_cpu_row("total", totals))
    return lines


def main_thread(service: str) -> str:
    """The row of a Python service's main thread (its event loop, under the GIL)."""
    return f"  of which {service} main thread"


def _is_thread(name: str) -> bool:
    return name.startswith("  of which ")


def _ordered(names: list[str]) -> list[str]:
    """Services in start order, each main thread under its service, load generators last."""
    generators = ["wrk", GENERATOR]
    ordered: list[str] = []
    for name in names:
        if _is_thread(name) or name in generators:
            continue
        ordered.append(name)
        if main_thread(name) in names:
            ordered.append(main_thread(name))
    return ordered + [name for name in generators if name in names]


def _cpu_row(name: str, values: list[float | None]) -> str:
    widths = (10, 11, 15, 16)
    cells = "".join(f"{_us(value):>{width}}" for value, width in zip(values, widths, strict=True))
    return f"    {name:<33}{cells}"


def _busy(setup: Setup, run: TargetRun) -> str:
    """Only the processes that worked: the other front Envoy idles meanwhile."""
    busy = {name: run.cpu_max[name] / setup.duration for name in _ordered(list(run.cpu_max))}
    return ", ".join(f"{name.strip()} {share:.0%}" for name, share in busy.items() if share >= 0.01)


def _us(value: float | None) -> str:
    return "-" if value is None or value < 0.05 else f"{value:.1f}"


def to_json(setup: Setup, bare: TargetRun, authz: TargetRun) -> dict[str, object]:
    verdicts = judge(bare, authz)

    def run(r: TargetRun) -> dict[str, object]:
        return {**run_figures(r), "authz_mean_decision_ms": r.authz_mean_decision_ms}

    return {
        "setup": asdict(setup),
        "bare": run(bare),
        "ext_authz": run(authz),
        "throughput_ratio": verdicts.throughput_ratio,
        "throughput_ratio_met": verdicts.ratio_met,
        "p99_added_ms": verdicts.p99_added_ms,
        "p99_added_met": verdicts.p99_met,
    }


def run_figures(r: TargetRun) -> dict[str, object]:
    """One front's figures, for the JSON record."""
    loop = r.open_loop
    return {
        "wrk_requests_per_second": r.wrk.requests_per_second,
        "wrk_p50_ms": r.wrk.p50_ms,
        "wrk_p99_ms": r.wrk.p99_ms,
        "fixed_rate_p50_ms": loop.latency_ms(50),
        "fixed_rate_p99_ms": loop.latency_ms(99),
        "fixed_rate_max_ms": loop.latency_ms(100),
        "fixed_rate_service_p99_ms": loop.service_ms(99),
        "fixed_rate_sender_late_p99_ms": loop.late_ms(99),
        "fixed_rate_achieved": loop.achieved_rate,
        "fixed_rate_non_200": loop.non_200,
        "cpu_us_per_request_max_load": _keys(r.cpu_us_max()),
        "cpu_us_per_request_fixed_rate": _keys(r.cpu_us_fixed()),
    }


def _keys(figures: dict[str, float]) -> dict[str, float]:
    """The indentation of the main-thread row is for the table only."""
    return {name.strip(): value for name, value in figures.items()}


def save(path: Path, document: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
