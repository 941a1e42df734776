"""What each full garbage collection of a worker walks: with this directory first on
PYTHONPATH and GC_CENSUS_OUT=FILE set, a ``fraudstream worker`` process appends one JSON line
per generation-2 collection: the objects in the old generation by type (counted before the
collection starts), the collection's CPU time and what it collected. Other processes, and
a worker without GC_CENSUS_OUT, are untouched.

    GC_CENSUS_OUT=/tmp/census.jsonl PYTHONPATH=scripts/gc_census:. \\
        python -m stream.local.soak --broker B --minutes 2.5 --rate 2500 --users 3000 \\
        --model model/bundles/default
"""

import collections
import gc
import json
import os
import sys
import time
from typing import Any

_OUT = os.environ.get("GC_CENSUS_OUT")


def _census(phase: str, info: dict[str, Any], state: dict[str, Any] = {}) -> None:  # noqa: B006 - the callback's own memory
    if info["generation"] != 2 or _OUT is None:
        return
    if phase == "start":
        objects = gc.get_objects(generation=2)
        counts = collections.Counter(type(o).__qualname__ for o in objects)
        state["census"] = (len(objects), counts.most_common(8))
        del objects
        state["cpu"] = time.thread_time()  # after the census, so it is not counted
        return
    n, top = state.pop("census")
    with open(_OUT, "a") as out:
        line = {"objects": n, "cpu_ms": round((time.thread_time() - state["cpu"]) * 1000, 1),
                "collected": info["collected"], "top": top}  # fmt: skip
        out.write(json.dumps(line) + "\n")


if _OUT and "worker" in sys.argv:
    gc.callbacks.append(_census)
