"""``ln.check()``: find what is wrong between the database and the storage, repair what is safe."""

from __future__ import annotations

from biolake.core.connect import current_instance
from biolake.errors import InvalidArgument
from biolake.integrity.links import find_broken_links, repair_links
from biolake.integrity.objects import find_object_problems, read_rows, repair_objects
from biolake.integrity.rehash import rehash as rehash_objects
from biolake.integrity.report import CheckReport
from biolake.integrity.versions import find_version_problems, repair_versions

__all__ = ["check"]


def check(
    *,
    rehash: bool = False,
    repair: bool = False,
    yes: bool = False,
    resume: bool = True,
    workers: int | None = None,
) -> CheckReport:
    """Reconcile the current instance's database and storage; returns a :class:`CheckReport`.

    Finds rows whose stored object is missing, stored objects no row references, temp files of
    killed saves, broken references between rows, and keys with no latest version or several.
    ``rehash=True`` also hashes every referenced object again (in ``workers`` threads, with a
    progress bar on a terminal; an interrupted rehash continues where it stopped unless
    ``resume=False``). ``repair=True`` fixes what is safe to fix; what would delete data
    (unreferenced objects, orphaned feature values) needs ``yes=True`` as well. Missing and
    damaged objects cannot be repaired: their findings say how to recover.

    Example::

        report = ln.check()
        report.describe()
        ln.check(repair=True, yes=True).ok  # True once nothing is left to fix
    """
    if yes and not repair:
        raise InvalidArgument("yes=True confirms what repair=True deletes: pass repair=True too.")
    if workers is not None and workers < 1:
        raise InvalidArgument(f"workers={workers!r}: use a number of threads of 1 or more.")
    instance = current_instance()
    rows = read_rows(instance)
    findings, referenced, n_stored = find_object_problems(instance, rows)
    counts = {"artifacts": len(rows), "objects": n_stored}
    if rehash:
        found, rehashed = rehash_objects(instance, rows, referenced, workers=workers, resume=resume)
        findings += found
        counts.update(rehashed)
    findings += find_broken_links(instance)
    findings += find_version_problems(instance)
    if repair:
        repair_objects(instance, findings, yes)
        repair_links(instance, findings, yes)
        repair_versions(instance, findings)
    return CheckReport(instance.name, findings, counts)
