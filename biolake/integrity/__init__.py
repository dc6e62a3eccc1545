"""``ln.check()``: the database and the storage reconciled, in both directions, and repaired
where that is safe. See ``docs/check.md``.

May use every layer below, as registries do, and nothing above (not ``setup``, not ``cli``).
One module per concern: ``objects`` (rows against stored objects, temp files), ``rehash``
(every object's bytes against its hash, resumable), ``links`` (references to rows that do not
exist), ``versions`` (keys without exactly one latest version), ``report`` (what was found).
"""

from biolake.integrity.reconcile import check
from biolake.integrity.report import CheckReport, Finding

__all__ = ["CheckReport", "Finding", "check"]
