"""The worker's web views (an index, metrics, a user's and a seller's state with their
recent alerts, the tables' sizes) and periodic gauges; what a view shows is in
``stream.runtime.subject_views``."""

from __future__ import annotations

from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from stream.core.state import SellerState, UserState
from stream.runtime.driver.lag import partition_lag
from stream.runtime.driver.tables import CoalescedTable
from stream.runtime.metrics import Metrics, estimate_keys
from stream.runtime.subject_views import (
    RecentAlerts,
    as_html,
    index,
    seller_view,
    user_view,
    wants_html,
)


def add_views(
    app: faust.App,
    metrics: Metrics,
    users: CoalescedTable[UserState],
    sellers: CoalescedTable[SellerState],
    recent: RecentAlerts,
) -> None:
    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        headers = {"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}
        return web.bytes(generate_latest(metrics.registry), headers=headers)

    @app.page("/")
    async def index_view(web: Any, request: Any) -> Any:
        return _respond(web, request, "fraudstream worker", index())

    @app.page("/users/{user_id}")
    async def user_page(web: Any, request: Any, user_id: str) -> Any:
        state = users.peek(user_id.encode())
        if state is None:
            return web.json({"error": f"unknown user {user_id!r} on this worker"}, status=404)
        view = user_view(user_id, state, recent.of("user", user_id))
        return _respond(web, request, f"user {user_id}", view)

    @app.page("/sellers/{seller_id}")
    async def seller_page(web: Any, request: Any, seller_id: str) -> Any:
        state = sellers.peek(seller_id.encode())
        if state is None:
            return web.json({"error": f"unknown seller {seller_id!r} on this worker"}, status=404)
        view = seller_view(seller_id, state, recent.of("seller", seller_id))
        return _respond(web, request, f"seller {seller_id}", view)

    @app.page("/tables")
    async def tables_view(web: Any, request: Any) -> Any:
        """Exact keys and value bytes of the local tables, by a scan of the stored state,
        and their RocksDB write buffers (the soak samples it); a scan, never scraped."""
        return web.json({"users": users.usage()._asdict(), "sellers": sellers.usage()._asdict()})


def _respond(web: Any, request: Any, title: str, view: dict[str, Any]) -> Any:
    """JSON, or a small HTML page when the client prefers text/html (a browser)."""
    if wants_html(request.headers.get("Accept")):
        return web.html(as_html(title, view))
    return web.json(view)


def add_monitoring(
    app: faust.App, metrics: Metrics, events_topic: str, users: Any, sellers: Any
) -> None:
    metrics.up.set(1)

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def report_lag() -> None:
        consumer = app.consumer
        lag: dict[int, int] = {}
        for tp in consumer.assignment():
            if tp.topic != events_topic:
                continue
            behind = await partition_lag(consumer, tp)
            if behind is not None:
                lag[tp.partition] = behind
        # Partitions moved to another worker after a rebalance must not report stale lag.
        metrics.lag.clear()
        for partition, behind in lag.items():
            metrics.lag.labels(str(partition)).set(behind)
        metrics.table_keys.labels("users").set(estimate_keys(users))
        metrics.table_keys.labels("sellers").set(estimate_keys(sellers))

    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        metrics.rebalances.inc()

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
