"""Metrics: what the API counts, one snapshot of everything, and its JSON and Prometheus forms.

A :class:`MetricsSnapshot` joins three sources: the store's counts (:class:`~jobqueue.outcomes.Stats`,
the truth for every process sharing the store), the counters of this API process
(:class:`ApiCounters`: what it accepted, refused, answered) and the counters of the workers running
in this process (:class:`~jobqueue.status.WorkerSummary`, when the app was given them). Workers in
other processes are not visible here; their effects are, through the store's counts.

The JSON form keeps the original's keys (``queue.current_size``, ``queue.max_size``,
``queue.total_enqueued``, ``queue.total_dequeued``, ``queue.total_rejected``, ``dlq_size``,
``idempotency_keys``) so that its clients keep working, and adds the rest beside them.
The Prometheus form is rendered by prometheus-client from a per-app registry, never the global one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from jobqueue.job import DEFAULT_QUEUE, JobState
from jobqueue.limits import QueueLimits
from jobqueue.outcomes import Stats
from jobqueue.status import BUCKETS, Histogram, WorkerReport, WorkerSummary


@dataclass(slots=True)
class ApiCounters:
    """What this API process did since it started."""

    #: Jobs stored (one per 202, or per ``accepted`` outcome of a batch).
    enqueued: int = 0
    #: Jobs refused because their queue was full (503, or a ``rejected`` outcome).
    rejected: int = 0
    #: Submissions answered with the job already holding their idempotency key (409).
    duplicates: int = 0
    #: Dead-lettered jobs put back in their queue (``POST /dlq/{id}/retry``).
    requeued: int = 0
    #: Request durations by (method, route template).
    requests: dict[tuple[str, str], Histogram] = field(default_factory=dict)

    def observe_request(self, method: str, route: str, seconds: float) -> None:
        histogram = self.requests.get((method, route))
        if histogram is None:
            histogram = self.requests[(method, route)] = Histogram()
        histogram.observe(seconds)


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Everything ``/metrics`` shows, taken at one moment; rendered as JSON or Prometheus text."""

    stats: Stats
    #: Capacity per queue name; a queue not named is unbounded.
    capacities: Mapping[str, int]
    counters: ApiCounters
    workers: WorkerSummary
    #: The queues paused in the store.
    paused: frozenset[str] = frozenset()
    #: The rate and concurrency limits in the store, by queue.
    limits: Mapping[str, QueueLimits] = field(default_factory=dict)
    #: The reports of every live worker sharing the store (``/metrics`` reads them; ``()`` elsewhere).
    reports: tuple[WorkerReport, ...] = ()

    def queue_names(self) -> list[str]:
        """Queues that hold jobs, have a capacity, limits or are paused, sorted."""
        return sorted(set(self.stats.queues) | set(self.capacities) | self.paused | set(self.limits))

    def limits_of(self, queue: str) -> dict[str, Any] | None:
        limits = self.limits.get(queue)
        return None if limits is None else limits.to_dict()

    def depth(self, queue: str) -> int:
        """Jobs waiting in ``queue``: the count its capacity applies to."""
        queue_stats = self.stats.queues.get(queue)
        return 0 if queue_stats is None else queue_stats.waiting

    def count(self, state: JobState, queue: str | None = None) -> int:
        """Jobs in ``state``, in one queue or in all."""
        queues = (
            self.stats.queues.values() if queue is None else [q for n, q in self.stats.queues.items() if n == queue]
        )
        return sum(q.counts[state] for q in queues)

    def totals(self) -> dict[str, int]:
        """The lifetime counters of this process (API and in-process workers)."""
        c, w = self.counters, self.workers.metrics
        return {
            "enqueued": c.enqueued,
            "started": w.claimed,
            "completed": w.completed,
            "failed": w.failed,
            "retried": w.retried,
            "dead_lettered": w.dead_lettered,
            "rejected": c.rejected,
            "duplicates": c.duplicates,
            "requeued": c.requeued,
            "recovered": w.recovered,
        }

    def to_json(self) -> dict[str, Any]:
        """The JSON body of ``GET /metrics`` (the original's keys first)."""
        totals = self.totals()
        return {
            # The original's block, for its clients: its single queue is our default queue.
            "queue": {
                "current_size": self.depth(DEFAULT_QUEUE),
                "max_size": self.capacities.get(DEFAULT_QUEUE),
                "total_enqueued": totals["enqueued"],
                "total_dequeued": totals["started"],
                "total_rejected": totals["rejected"],
            },
            "dlq_size": self.count(JobState.DEAD_LETTERED),
            "idempotency_keys": self.stats.idempotency_keys,
            "queues": {
                name: {
                    "depth": self.depth(name),
                    "capacity": self.capacities.get(name),
                    "paused": name in self.paused,
                    "limits": self.limits_of(name),
                    "states": {s.value: self.count(s, name) for s in JobState},
                }
                for name in self.queue_names()
            },
            "totals": totals,
            "workers": self.workers.slots,
            "workers_busy": self.workers.busy,
            "live_workers": len(self.reports),
        }


class _SnapshotCollector(Collector):
    """Yields the metric families of the snapshot it is given just before each render."""

    def __init__(self) -> None:
        self.snapshot: MetricsSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        if self.snapshot is not None:
            yield from families(self.snapshot)


class PrometheusExporter:
    """A per-app registry holding one collector; renders a snapshot in the format asked for."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector = _SnapshotCollector()
        self.registry.register(self._collector)

    def render(self, snapshot: MetricsSnapshot, accept: str | None) -> tuple[bytes, str]:
        """The exposition and its content type: OpenMetrics when ``accept`` asks for it, else text 0.0.4."""
        try:
            encoder, content_type = choose_encoder(accept or "")
        except (TypeError, ValueError):  # prometheus_client cannot compare a version such as "version=x": no 500
            encoder, content_type = choose_encoder("")
        # render() is synchronous, so no other request can swap the snapshot while it runs.
        self._collector.snapshot = snapshot
        try:
            return encoder(self.registry), content_type
        finally:
            self._collector.snapshot = None


def _buckets(counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts as Prometheus's cumulative ``(le, count)`` pairs, ending with ``+Inf``."""
    cumulative, buckets = 0, []
    for bound, n in zip(BUCKETS, counts, strict=False):
        cumulative += n
        buckets.append((repr(bound), float(cumulative)))
    buckets.append(("+Inf", float(sum(counts))))
    return buckets


def _histogram(name: str, doc: str, counts: Sequence[int], total: float) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=_buckets(counts), sum_value=total)


def families(snap: MetricsSnapshot) -> Iterator[Metric]:
    """Every metric of a snapshot as prometheus-client metric families."""
    depth = GaugeMetricFamily(
        "jobqueue_queue_depth", "Jobs waiting (pending, blocked, scheduled, awaiting retry).", labels=["queue"]
    )
    capacity = GaugeMetricFamily("jobqueue_queue_capacity", "Waiting jobs a queue accepts.", labels=["queue"])
    jobs = GaugeMetricFamily("jobqueue_jobs", "Jobs stored, by queue and state.", labels=["queue", "state"])
    paused = GaugeMetricFamily("jobqueue_queue_paused", "1 while a queue is paused (no job starts).", labels=["queue"])
    rate = GaugeMetricFamily("jobqueue_queue_rate_limit", "A queue's rate limit, in jobs per second.", labels=["queue"])
    running = GaugeMetricFamily(
        "jobqueue_queue_concurrency_limit", "Jobs of a queue that may run at once.", labels=["queue"]
    )
    for name in snap.queue_names():
        depth.add_metric([name], snap.depth(name))
        paused.add_metric([name], float(name in snap.paused))
        if (limits := snap.limits.get(name)) is not None:
            if limits.rate is not None:
                rate.add_metric([name], limits.rate.count / limits.rate.per)
            if limits.concurrency is not None:
                running.add_metric([name], limits.concurrency)
        if name in snap.capacities:
            capacity.add_metric([name], snap.capacities[name])
        for state in JobState:
            jobs.add_metric([name, state.value], snap.count(state, name))
    yield from (depth, capacity, paused, rate, running, jobs)
    yield GaugeMetricFamily("jobqueue_dlq_size", "Dead-lettered jobs.", value=snap.count(JobState.DEAD_LETTERED))
    yield GaugeMetricFamily(
        "jobqueue_idempotency_keys", "Idempotency keys reserved.", value=snap.stats.idempotency_keys
    )
    yield from _live_worker_families(snap.reports)
    yield GaugeMetricFamily("jobqueue_workers", "Worker slots in this process.", value=snap.workers.slots)
    yield GaugeMetricFamily("jobqueue_workers_busy", "Jobs running in this process.", value=snap.workers.busy)
    docs = {
        "enqueued": "Jobs accepted by this API process.",
        "started": "Attempts started by this process's workers.",
        "completed": "Attempts completed by this process's workers.",
        "failed": "Attempts that failed in this process's workers (retried or dead-lettered).",
        "retried": "Failed attempts scheduled for a retry.",
        "dead_lettered": "Jobs dead-lettered by this process's workers.",
        "rejected": "Jobs refused because their queue was full.",
        "duplicates": "Submissions refused because their idempotency key was held.",
        "requeued": "Dead-lettered jobs put back in their queue.",
        "recovered": "Expired leases recovered by this process's workers.",
    }
    for key, value in snap.totals().items():
        yield CounterMetricFamily(f"jobqueue_jobs_{key}", docs[key], value=value)
    w = snap.workers.metrics
    yield _histogram("jobqueue_job_start_latency_seconds", "From a job's due time to the start of its attempt.",
                     w.start_latency.counts, w.start_latency.total)  # fmt: skip
    yield _histogram("jobqueue_job_duration_seconds", "How long attempts ran.", w.duration.counts, w.duration.total)
    requests = HistogramMetricFamily(
        "jobqueue_http_request_duration_seconds", "HTTP requests by method and route.", labels=["method", "route"]
    )
    for (method, route), h in sorted(snap.counters.requests.items()):
        requests.add_metric([method, route], _buckets(h.counts), h.total)
    yield requests


def _live_worker_families(reports: Sequence[WorkerReport]) -> Iterator[Metric]:
    """What every worker sharing the store reports, summed: the same from any API process. The sums
    of counters drop when a worker leaves, which ``rate()`` reads as a counter reset."""
    yield GaugeMetricFamily("jobqueue_live_workers", "Workers reporting to the store.", value=len(reports))
    yield GaugeMetricFamily("jobqueue_live_worker_slots", "Job slots of the workers reporting to the store.",
                            value=sum(r.concurrency for r in reports))  # fmt: skip
    yield GaugeMetricFamily("jobqueue_live_workers_busy", "Jobs running in the workers reporting to the store.",
                            value=sum(r.busy for r in reports))  # fmt: skip
    for counter, doc in (("completed", "Attempts completed"), ("failed", "Attempts failed"),
                         ("recovered", "Expired leases recovered")):  # fmt: skip
        total = sum(r.counters.get(counter, 0) for r in reports)
        yield CounterMetricFamily(f"jobqueue_live_jobs_{counter}", f"{doc}, summed over live workers.", value=total)
