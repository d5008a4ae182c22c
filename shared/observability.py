"""Prometheus metrics and structured logs that carry the request id.

Every app gets its own `CollectorRegistry`: the tests (and `scripts/run_local.py --smoke`)
run several services in one process, and prometheus_client's global registry would merge
their series. Series are labelled by the route *template* (`/v1/needs/{need_id}`), never the
raw path, so a crawler cannot blow up the number of series.

The request id is held in a context variable for the length of a request, so log records
(`RequestIdFilter`) and outbound calls (`shared.http`) pick it up without being handed it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pythonjsonlogger.json import JsonFormatter

# The `_created` series double every counter and no dashboard here reads them.
disable_created_metrics()

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

# Seconds; from a 1 ms health check to a 2,000-row synchronous upload.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
UNMATCHED = "<unmatched>"


class ServiceMetrics:
    """The series every service exports, on a registry of its own."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tjp_http_requests", "HTTP requests answered", ["method", "route", "status"],
            registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "tjp_http_errors",
            "HTTP requests answered with a 4xx or 5xx status",
            ["method", "route", "status_class"],
            registry=r,
        )
        self.latency = Histogram(
            "tjp_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_progress = Gauge(
            "tjp_http_requests_in_progress", "Requests being answered now", registry=r
        )
        self.rate_limited = Counter(
            "tjp_rate_limited", "Requests refused with 429 by the per-key rate limits",
            ["limit"], registry=r,
        )  # fmt: skip
        for limit in ("writes", "matching"):
            self.rate_limited.labels(limit)  # zero from the start, so rate() has a series
        self.upload_jobs = Histogram(
            "tjp_upload_job_duration_seconds",
            "Wall time of background bulk-upload jobs, by outcome",
            ["outcome"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.state = StateCollector()
        r.register(self.state)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status >= 400:
            self.errors.labels(method, route, f"{status // 100}xx").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector(Collector):
    """Series read off live objects at scrape time: feed consumers and service gauges.

    `feed_consumers` is the same {source: FeedConsumer} the readiness check and the parked
    entries API use; `gauges` maps a metric name to (help, callable returning a number)."""

    def __init__(self) -> None:
        self.feed_consumers: Callable[[], dict[str, Any]] = dict
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def collect(self) -> Iterator[Metric]:
        consumers = sorted((self.feed_consumers() or {}).items())
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "position": GaugeMetricFamily(
                "tjp_feed_position", "Last upstream feed entry applied", labels=["source"]
            ),
            "lag_seconds": GaugeMetricFamily(
                "tjp_feed_lag_seconds",
                "Seconds since this consumer last stood at the upstream feed's head "
                "(0 while it is there)",
                labels=["source"],
            ),
            "parked_open": GaugeMetricFamily(
                "tjp_feed_parked_open",
                "Parked (poison) feed entries not yet replayed",
                labels=["source"],
            ),  # fmt: skip
            "applied_total": CounterMetricFamily(
                "tjp_feed_applied", "Feed entries applied", labels=["source"]
            ),
            "failures_total": CounterMetricFamily(
                "tjp_feed_failures", "Failed feed polls", labels=["source"]
            ),
            "parked_total": CounterMetricFamily(
                "tjp_feed_parked", "Feed entries parked since start", labels=["source"]
            ),
        }
        for source, consumer in consumers:
            for name, value in consumer.metrics().items():
                family = families.get(name)
                if family is not None:
                    family.add_metric([source], value)
        yield from families.values()
        for name, (help_text, read) in sorted(self.gauges.items()):
            family = GaugeMetricFamily(name, help_text)
            family.add_metric([], float(read()))
            yield family


def route_template(scope: dict[str, Any]) -> str:
    """The matched route's path template; set by Starlette's router on the shared scope."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def track_jobs(jobs: dict[str, asyncio.Task[Any]], metrics: ServiceMetrics) -> dict[str, Any]:
    """A job table that times each task put into it (the upload-job histogram)."""
    return TimedJobs(jobs, metrics)


class TimedJobs(dict[str, "asyncio.Task[Any]"]):
    def __init__(self, jobs: dict[str, asyncio.Task[Any]], metrics: ServiceMetrics) -> None:
        super().__init__(jobs)
        self._metrics = metrics

    def __setitem__(self, key: str, task: asyncio.Task[Any]) -> None:
        started = time.perf_counter()

        def done(t: asyncio.Task[Any]) -> None:
            if t.cancelled():
                outcome = "cancelled"
            else:
                outcome = "failed" if t.exception() is not None else "finished"
            self._metrics.upload_jobs.labels(outcome).observe(time.perf_counter() - started)

        task.add_done_callback(done)
        super().__setitem__(key, task)


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on every record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonLogFormatter(JsonFormatter):
    """One JSON object a line: time, level, logger, message, request_id and any extras."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s %(request_id)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")  # ISO 8601 in UTC
        super().__init__(*args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return super().format(record)


def configure_logging(level: str = "INFO", stream: Any = None) -> logging.Handler:
    """JSON lines on stderr (or `stream`) for the root logger; returns the handler.

    Replaces a handler this function installed before, so calling it twice (two services
    in one process) does not print every line twice."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    handler.addFilter(RequestIdFilter())
    handler.set_name("tjp-json")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "tjp-json"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
