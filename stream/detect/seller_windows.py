"""When the seller side decides, so that arrival order does not change the alerts.

Purchases reach a seller's partition in arrival order, which interleaves many users'
partitions; a backtest sees them in event time. Both raise at most one brushing alert per
seller per fixed event-time window (``brushing_cooldown`` long; the alert id names it), and
a decision at a purchase only looks at orders up to that purchase's time. A purchase that
arrives after later ones (out of order) also re-decides at every later purchase, since
their look-back now holds one more order. For a detector that only grows more certain as
orders are added (the model's ring of suspect orders), every window then gets the same
verdict in any arrival order, as long as orders arrive less than the seller window (48 h
of event time) out of order, since older ones are evicted; the rule, which weighs shares
of orders, mostly does.
"""

from __future__ import annotations

from stream.core.state import S_EID, S_KIND, S_TS, Row, SellerState

_PREFIX = "brushing@"


def window_id(ts: int, window_ms: int) -> str:
    return f"w{ts // window_ms}"


def decision_points(state: SellerState, row: Row, newest_before: int | None) -> list[Row]:
    """The purchases to decide at after ``row`` was added: itself when it is the newest,
    else itself and every purchase after it."""
    if newest_before is None or row[S_TS] >= newest_before:
        return [row]
    key = (row[S_TS], row[S_EID])
    return [o for o in state.orders if o[S_KIND] == "purchase" and (o[S_TS], o[S_EID]) >= key]


def claim(state: SellerState, ts: int, window_ms: int) -> bool:
    """Record that the window holding ``ts`` alerted; False if it already had."""
    key = f"{_PREFIX}{ts // window_ms}"
    if key in state.cooldowns:
        return False
    state.cooldowns[key] = ts
    return True


def forget_old_windows(state: SellerState, horizon_ms: int, window_ms: int) -> None:
    """Drop windows that no order still in the state can fall into."""
    oldest = (state.max_ts - horizon_ms) // window_ms - 1
    for key in [k for k in state.cooldowns if k.startswith(_PREFIX)]:
        if int(key[len(_PREFIX) :]) < oldest:
            del state.cooldowns[key]
    state.cooldowns.pop("brushing", None)  # the per-alert cooldown of older states
