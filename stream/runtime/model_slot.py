"""The model bundle a worker scores with, replaceable while the worker runs.

Hot reload: the worker polls the bundle directory's manifest; when its version changes it
loads and verifies the new bundle off the event loop, then swaps it in between
micro-batches. Events are never paused or skipped, and every alert names the version that
scored it. Replace a bundle atomically: write it beside the old one and rename, or point a
symlink at it (``ln -sfn``). A bundle that fails to load leaves the old one in place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from model.sequence_model import SequenceModel
from stream.core.alerts import RULES_MODEL_VERSION
from stream.runtime.metrics import Metrics
from stream.runtime.settings import Settings
from stream.runtime.topics import ALERT_TOPICS

log = logging.getLogger("fraudstream")
KINDS = frozenset(ALERT_TOPICS)  # fraud, brushing, churn
RETRY_S = 60.0  # a bundle still being copied may load later


class ModelSlot:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.model: SequenceModel | None = None
        # A version that failed to load, and when: retried after RETRY_S, not every tick.
        self.failed: tuple[str, float] | None = None
        if settings.model is None:
            log.warning("no model bundle given: the rules score every kind (--model DIR)")
            metrics.set_model(RULES_MODEL_VERSION, "rules", configured=False)
            return
        # A bundle that cannot be loaded at start stops the worker: running the rules
        # instead would look healthy while scoring differently from what was asked.
        self._install(self._load(settings.model))

    def _load(self, path: Path) -> SequenceModel:
        s = self.settings
        return SequenceModel(path, s.model_backend, s.model_threads, s.drift_window)

    @property
    def version(self) -> str:
        return self.model.version if self.model is not None else RULES_MODEL_VERSION

    @property
    def fraud(self) -> SequenceModel | None:
        """The model when it scores fraud; None when the rules do."""
        return self.model if self.model is not None and "fraud" in self.model.kinds else None

    @property
    def brushing_threshold(self) -> float | None:
        """The per-order threshold when the model scores brushing; None when the rules do."""
        return self.model.threshold("brushing") if self.model is not None else None

    def _install(self, model: SequenceModel) -> None:
        def observe(size: int, seconds: float) -> None:
            self.metrics.batch_size.observe(size)
            self.metrics.batch_latency.labels(model.backend).observe(seconds)

        model.on_batch = observe
        old, self.model = self.model, model
        self.metrics.feature_psi.clear()  # the old bundle's figures say nothing of this one
        self.metrics.score_psi.clear()
        if model.drift is None:
            log.warning(
                "model bundle %s version %s records no reference distributions (built "
                "before they were): no drift gauges",
                self.settings.model,
                model.version,
            )
        self.metrics.set_model(model.version, model.backend, configured=True)
        log.warning(
            "model bundle %s version %s on %s%s scores %s; the rules score %s; churn: %s, "
            "built for a %g-day horizon",
            self.settings.model,
            model.version,
            model.backend,
            f" (replacing {old.version})" if old is not None else "",
            ", ".join(sorted(model.kinds)) or "nothing",
            ", ".join(sorted(KINDS - model.kinds)) or "nothing",
            "model"
            if "churn" in model.kinds
            else "habits"
            if getattr(model, "churn_habits", None)
            else "BG/NBD"
            if model.churn_btyd
            else "rules",
            model.churn_horizon_days,
        )

    async def export_drift(self) -> None:
        """The drift gauges from the model's window of recent decisions."""
        drift = self.model.drift if self.model is not None else None
        if drift is None:
            return
        for group, value in drift.feature_psi().items():
            self.metrics.feature_psi.labels(group).set(value)
        for kind, value in drift.score_psi().items():
            self.metrics.score_psi.labels(kind).set(value)

    async def reload_if_changed(self) -> None:
        from model.bundle import bundle_version

        path = self.settings.model
        if path is None:
            return
        version = bundle_version(path)
        if version is None or version == self.version:
            return
        failed = self.failed
        if failed is not None and failed[0] == version and time.monotonic() - failed[1] < RETRY_S:
            return
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(None, self._load, path)
        except Exception as exc:
            self.failed = (version, time.monotonic())
            self.metrics.model_reload_failures.inc()
            log.error("model bundle %s version %s not loaded, keeping %s: %s",
                      path, version, self.version, exc)  # fmt: skip
            return
        self.failed = None
        self._install(model)
        self.metrics.model_reloads.inc()
