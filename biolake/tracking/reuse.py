"""Re-runs: a completed run that already did what a call is about to do.

Two runs did the same computation when their transform's source, the inputs they read, their
params and their environment are the same: ``runs.fingerprint`` hashes these at the end of a
completed run, and ``describe()`` names the earlier run with the same fingerprint.

``@ln.tracked(cache=True)`` goes further and returns what an earlier call returned, without
running again, when an earlier completed call of the same transform (same source) had the same
params in the same environment, and all of these still hold:

- every input it read is still the latest version under its key (a new version of an input
  means a new computation) and not in the trash;
- every artifact it saved or returned still exists, not in the trash, and its stored bytes
  still hash to the artifact's hash.

Only artifacts and JSON values (and lists and dicts of them) can be returned from the cache;
a function returning anything else runs each time, with a warning the first time.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

from biolake.core.instance import Instance


class NotReusable(Exception):
    """What a call returned cannot be stored and returned again."""


def result_value(result: Any) -> Any:
    """``result`` as JSON to store with the run: an artifact as ``{"artifact": uid}``, JSON
    values as they are; raises ``NotReusable`` for anything else."""
    if result is None or isinstance(result, bool | str):
        return result
    if isinstance(result, numbers.Integral):
        return int(result)
    if isinstance(result, numbers.Real) and math.isfinite(float(result)):
        return float(result)
    if isinstance(result, list | tuple):
        return [result_value(item) for item in result]
    if isinstance(result, dict) and all(isinstance(k, str) for k in result):
        if set(result) == {"artifact"}:  # would read back as an artifact
            raise NotReusable("a dict with the single key 'artifact'")
        return {k: result_value(v) for k, v in result.items()}
    if getattr(result, "__tablename__", None) == "artifacts":
        return {"artifact": result.uid}
    raise NotReusable(type(result).__name__)


def reusable(
    models: Any, instance: Instance, transform: Any, params: Any, environment_id: int | None
) -> tuple[Any, Any] | None:
    """(earlier run, what it returned) for a call that need not run again, else None."""
    earlier = (
        models.run.filter(transform=transform, status="completed", result__isnull=False)
        .order_by("-finished_at")
        .to_list()
    )
    wanted = json.dumps(params, sort_keys=True)
    for run in earlier:
        if run.environment_id != environment_id or json.dumps(run.params, sort_keys=True) != wanted:
            continue
        if not _inputs_current(run):
            continue
        outputs = models.artifact.filter(run=run, visibility__in=["default", "trash"])
        if not all(a.visibility == "default" and _intact(instance, a) for a in outputs):
            continue
        try:
            return run, _returned(models.artifact, instance, run.result["value"])
        except LookupError:  # a returned artifact is gone or changed: look further back
            continue
    return None


def _inputs_current(run: Any) -> bool:
    for artifact in run.input_artifacts:
        if artifact.visibility != "default" or (
            artifact.key is not None and not artifact.is_latest
        ):
            return False
    return True


def _returned(model: Any, instance: Instance, value: Any) -> Any:
    if isinstance(value, list):
        return [_returned(model, instance, item) for item in value]
    if isinstance(value, dict) and set(value) == {"artifact"}:
        artifact = model.filter(uid=value["artifact"]).one_or_none()
        if artifact is None or not _intact(instance, artifact):
            raise LookupError(value["artifact"])
        return artifact
    if isinstance(value, dict):
        return {k: _returned(model, instance, v) for k, v in value.items()}
    return value


def _intact(instance: Instance, artifact: Any) -> bool:
    """Whether the artifact's object still holds its bytes: one ``stat`` against its recorded
    fingerprint, a full hash only when that changed (or none was recorded)."""
    try:
        check = instance.storage.check(
            artifact.storage_key, artifact.hash, artifact.storage_fingerprint
        )
    except (OSError, ValueError):
        return False
    return bool(check.intact)
