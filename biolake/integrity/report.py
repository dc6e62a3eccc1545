"""What ``ln.check()`` found: findings by kind, rendered as a tree or as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["KINDS", "CheckReport", "Finding"]

# Every kind of finding, in the order reports list them, with the heading they show under.
KINDS = {
    "missing_object": "rows whose stored object is missing",
    "hash_mismatch": "objects whose bytes no longer match their hash",
    "stray_object": "stored objects no row references",
    "temp_file": "temp files of saves that were killed",
    "broken_link": "references to rows that do not exist",
    "no_latest_version": "keys without a latest version",
    "two_latest_versions": "keys with more than one latest version",
}
# How a finding can be repaired: by `repair=True`, only with `yes=True` too, or not by check.
REPAIRS = ("safe", "yes", "none")


@dataclass
class Finding:
    """One problem: its ``kind`` (a key of ``KINDS``), ``what`` it is, ``where`` (a row or a
    storage key), ``fix`` (what the repair does, or how to recover), ``repair`` (``"safe"``:
    ``repair=True`` fixes it; ``"yes"``: it deletes data, so only with ``yes=True`` too;
    ``"none"``: check cannot fix it), whether it was ``repaired``, and machine-readable
    ``details`` (uids, keys, ids)."""

    kind: str
    what: str
    where: str
    fix: str
    repair: str
    repaired: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.kind in KINDS and self.repair in REPAIRS, (self.kind, self.repair)


class CheckReport:
    """The outcome of ``ln.check()``: ``findings``, what was looked at (``counts``), and
    whether anything is left to fix (``ok``).

    Example::

        report = ln.check()
        report.ok                       # True when nothing is wrong (or all was repaired)
        report.by_kind()["stray_object"]
        report.describe()
        report.to_json()
    """

    def __init__(self, instance: str, findings: list[Finding], counts: dict[str, int]) -> None:
        self.instance = instance
        order = list(KINDS)
        self.findings = sorted(findings, key=lambda f: (order.index(f.kind), f.where))
        self.counts = counts

    @property
    def ok(self) -> bool:
        """No problem is left: none was found, or every one was repaired."""
        return all(f.repaired for f in self.findings)

    @property
    def remaining(self) -> list[Finding]:
        return [f for f in self.findings if not f.repaired]

    def by_kind(self) -> dict[str, list[Finding]]:
        """Every kind of ``KINDS`` with its findings (an empty list when it has none)."""
        grouped: dict[str, list[Finding]] = {kind: [] for kind in KINDS}
        for finding in self.findings:
            grouped[finding.kind].append(finding)
        return grouped

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "ok": self.ok,
            "counts": self.counts,
            "findings": [asdict(f) for f in self.findings],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON: ``instance``, ``ok``, ``counts`` and the ``findings``."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def summary(self) -> str:
        """One line: how many problems, how many repaired, what was looked at."""
        looked = ", ".join(f"{name}: {n:,}" for name, n in self.counts.items())
        if not self.findings:
            return f"No problems in {self.instance!r} ({looked})."
        repaired = len(self.findings) - len(self.remaining)
        done = f", {repaired} repaired" if repaired else ""
        problems = "1 problem" if len(self.findings) == 1 else f"{len(self.findings)} problems"
        return f"{problems} in {self.instance!r}{done} ({looked})."

    def describe(self, return_str: bool = False) -> str | None:
        """Print the findings as a tree by kind (or return the text)."""
        from rich.console import Console
        from rich.markup import escape
        from rich.tree import Tree

        tree = Tree(f"[bold]{escape(self.summary())}[/bold]")
        for kind, findings in self.by_kind().items():
            if not findings:
                continue
            branch = tree.add(f"[bold]{escape(KINDS[kind])}[/bold] ({kind}: {len(findings)})")
            for finding in findings:
                node = branch.add(escape(f"{finding.where}: {finding.what}"), highlight=False)
                node.add(escape(_fix_line(finding)), style="dim", highlight=False)
        import io

        console = Console(record=True, width=110, file=io.StringIO() if return_str else None)
        console.print(tree)
        return console.export_text() if return_str else None

    def __repr__(self) -> str:
        return f"<CheckReport {self.summary()}>"


def _fix_line(finding: Finding) -> str:
    command = {"safe": "check --repair", "yes": "check --repair --yes"}.get(finding.repair)
    if command is None:
        return f"to recover: {finding.fix}"
    return f"repaired ({command} {finding.fix})" if finding.repaired else f"{command} {finding.fix}"
