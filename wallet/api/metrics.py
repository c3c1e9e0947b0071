"""Prometheus metrics, one registry per application (tests build many apps in one process).

Labels are bounded sets only: a route's canonical path (``/v1/charges/{charge_id}``, never the
id), a method, a status, an error ``code``, a charge status. Never an id, a phone number or any
other personal data.

    wallet_http_requests_total{method, route, status}
    wallet_http_request_duration_seconds{method, route}         histogram
    wallet_http_requests_in_progress
    wallet_charges_total{step, outcome}                          step: create | confirm
    wallet_credit_runs_total{trigger, outcome}                   trigger: api | schedule; ok, failed, ...
    wallet_credit_run_lines_total{kind}                          kind: credited | expired
    wallet_background_job_runs_total{job, outcome}
    wallet_writer_commit_duration_seconds                        histogram, one sample a batch
    wallet_writer_batch_size                                     histogram, writes in one commit
    wallet_writer_queue_depth, wallet_writer_last_batch_size, wallet_writer_last_commit_seconds,
    wallet_writer_seconds_since_progress, wallet_writer_alive    read at scrape time
    wallet_event_streams_open                                    read at scrape time
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from collections.abc import Callable, Iterator
from itertools import accumulate
from types import TracebackType

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from wallet.ledger.errors import OperationError
from wallet.storage.port import WriterStats, Written

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "unmatched"  # a path no route serves: never its text, which anybody can choose
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED_STATUS = 499  # the client went away before the answer (nginx's convention)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
REQUEST_SECONDS_BUCKETS = Histogram.DEFAULT_BUCKETS  # its last bound is +Inf
# each bound as its "le" label
_REQUEST_SECONDS_LE = tuple(floatToGoString(bound) for bound in REQUEST_SECONDS_BUCKETS)  # type: ignore[no-untyped-call]
COMMIT_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        # Request metrics are plain numbers counted on the event loop's thread (the only one that
        # answers requests), rendered by _RequestCollector: prometheus-client would lock per request.
        # By (method, route, status): answers; by (method, route): per-bucket counts (last +Inf), sum.
        self.requests_answered: dict[tuple[str, str, int], int] = {}
        self.request_durations: dict[tuple[str, str], tuple[list[int], list[float]]] = {}
        self.in_progress = 0  # requests being answered
        registry.register(_RequestCollector(self))
        self._charge_children: dict[tuple[str, str], Counter] = {}  # by (step, outcome), likewise
        self.charges = Counter(
            "wallet_charges",
            "Charge attempts by step (create, confirm) and outcome (a status or an error code)",
            ["step", "outcome"],
            registry=registry,
        )
        self.credit_runs = Counter(
            "wallet_credit_runs",
            "Credit runs by trigger (api, schedule) and outcome (ok, replayed, refused, failed)",
            ["trigger", "outcome"],
            registry=registry,
        )
        self.credit_run_lines = Counter(
            "wallet_credit_run_lines", "Budget lines a credit run credited or expired", ["kind"], registry=registry
        )
        self.job_runs = Counter(
            "wallet_background_job_runs",
            "Runs of background jobs by outcome (ok, failed)",
            ["job", "outcome"],
            registry=registry,
        )
        self.commit_seconds = Histogram(
            "wallet_writer_commit_duration_seconds",
            "Time from BEGIN to COMMIT of one write batch",
            buckets=COMMIT_SECONDS_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "wallet_writer_batch_size", "Writes that shared one commit", buckets=BATCH_SIZE_BUCKETS, registry=registry
        )
        self._writer_stats: Callable[[], WriterStats] | None = None
        self.live: list[tuple[str, str, Callable[[], float]]] = []
        registry.register(_ScrapeTimeCollector(self))

    def watch(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge read at scrape time from ``read``."""
        self.live.append((name, help_text, read))

    def watch_writer(self, stats: Callable[[], WriterStats]) -> None:
        self._writer_stats = stats

    def writer_stats(self) -> WriterStats | None:
        return self._writer_stats() if self._writer_stats is not None else None

    def request_answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and observe its duration (on the event loop's thread)."""
        key = (method, route, status)
        answered = self.requests_answered
        answered[key] = answered.get(key, 0) + 1
        durations = self.request_durations.get((method, route))
        if durations is None:
            durations = self.request_durations[(method, route)] = ([0] * len(REQUEST_SECONDS_BUCKETS), [0.0])
        durations[0][bisect_left(REQUEST_SECONDS_BUCKETS, seconds)] += 1  # the first bound >= seconds
        durations[1][0] += seconds

    def observe_commit(self, batch_size: int, commit_seconds: float) -> None:
        """A storage commit observer: called from the writer's thread (prometheus-client is thread-safe)."""
        self.batch_size.observe(batch_size)
        self.commit_seconds.observe(commit_seconds)

    @contextlib.contextmanager
    def credit_run_outcome(self, trigger: str) -> Iterator[Callable[[Written], Written]]:
        """Count a credit run: ``ok`` (and the lines it credited and expired), ``replayed``,
        ``refused`` (an operation error, such as a month out of range) or ``failed``."""

        def written(result: Written) -> Written:
            if result.replayed:
                self.credit_runs.labels(trigger, "replayed").inc()
                return result
            self.credit_runs.labels(trigger, "ok").inc()
            self.credit_run_lines.labels("credited").inc(result.value.get("credited_now", 0))
            self.credit_run_lines.labels("expired").inc(result.value.get("expired_now", 0))
            return result

        try:
            yield written
        except OperationError:
            self.credit_runs.labels(trigger, "refused").inc()
            raise
        except Exception:
            self.credit_runs.labels(trigger, "failed").inc()
            raise

    def charge_outcome(self, step: str) -> _ChargeOutcome:
        """Count a charge step by its outcome: the status written, ``replayed``, or the error code.

        Wrap the whole handler body (``with metrics.charge_outcome("create") as outcome:``); call
        the yielded function with what the service wrote.
        """
        return _ChargeOutcome(self, step)

    def count_charge(self, step: str, outcome: str) -> None:
        key = (step, outcome)
        child = self._charge_children.get(key)
        if child is None:
            child = self._charge_children[key] = self.charges.labels(step, outcome)
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ChargeOutcome:
    """What ``Metrics.charge_outcome`` returns: a context manager as a small class, cheaper per
    charge than ``contextlib.contextmanager``."""

    __slots__ = ("_metrics", "_step")

    def __init__(self, metrics: Metrics, step: str) -> None:
        self._metrics = metrics
        self._step = step

    def __enter__(self) -> Callable[[Written], Written]:
        return self._written

    def _written(self, result: Written) -> Written:
        outcome = "replayed" if result.replayed else str(result.value.get("status", "ok"))
        self._metrics.count_charge(self._step, outcome)
        return result

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if isinstance(error, OperationError):
            self._metrics.count_charge(self._step, error.code)
        # None: whatever was raised goes on


class _RequestCollector(Collector):
    """The request metrics as prometheus-client's Counter, Histogram and Gauge would expose them
    (the same names, help, labels, order and values), without the ``_created`` samples."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # names of their own; nothing to check against the others ahead

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        requests = CounterMetricFamily(
            "wallet_http_requests", "HTTP requests answered, by route and status", labels=["method", "route", "status"]
        )
        for (method, route, status), count in list(metrics.requests_answered.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        durations = HistogramMetricFamily(
            "wallet_http_request_duration_seconds",
            "Time to answer an HTTP request (a stream: until it ends)",
            labels=["method", "route"],
        )
        for (method, route), (counts, total) in list(metrics.request_durations.items()):
            cumulative = list(accumulate(counts))
            buckets = [(bound, float(count)) for bound, count in zip(_REQUEST_SECONDS_LE, cumulative)]
            durations.add_metric([method, route], buckets, total[0])
        yield durations
        in_progress = metrics.in_progress
        yield GaugeMetricFamily("wallet_http_requests_in_progress", "HTTP requests being answered", value=in_progress)


class _ScrapeTimeCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # read at scrape time; nothing to describe ahead

    def collect(self) -> Iterator[Metric]:
        for name, help_text, read in self._metrics.live:
            yield GaugeMetricFamily(name, help_text, value=read())
        stats = self._metrics.writer_stats()
        if stats is None:
            return
        for name, help_text, value in (
            ("wallet_writer_alive", "1 while the writer (thread or process) runs", 1 if stats.alive else 0),
            ("wallet_writer_queue_depth", "Writes waiting for the writer", stats.queue_depth),
            ("wallet_writer_last_batch_size", "Writes in the last committed batch", stats.last_batch_size),
            ("wallet_writer_last_commit_seconds", "BEGIN to COMMIT of the last batch", stats.last_commit_seconds),
            ("wallet_writer_seconds_since_progress", "Since the last batch ended", stats.seconds_since_progress),
            (
                "wallet_writer_storage_fault",
                "1 when the last batch failed on a storage fault",
                int(stats.storage_fault),
            ),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)


METRICS = web.AppKey("metrics", Metrics)
