"""Records, features and search, as in docs/records_features.md (run by tests/test_records.py).

Uses the current instance (set BIOLAKE_INSTANCE or call ln.setup.init first).
"""

from __future__ import annotations

import datetime as dt


def main() -> None:
    import biolake as ln

    # Records: a type, its members, a hierarchy.
    sample_type = ln.Record(name="Sample", is_type=True).save()
    for name in ["P53mutant1", "P53mutant2", "WT-control"]:
        ln.Record(name=name, type=sample_type).save()
    parent = ln.Record.get(name="P53mutant1")
    child = ln.Record(name="P53mutant1-replicate1", type=sample_type).save()
    child.parents.add(parent)
    print(parent.children.to_dataframe()[["name"]])
    parent.describe()  # fields, then parents and children
    print(ln.Record.search("p53").to_dataframe()[["name"]])

    # Features: typed keys; a Record type makes a categorical feature.
    ln.Feature(name="read_count", dtype=int).save()
    ln.Feature(name="gc_content", dtype=float).save()
    ln.Feature(name="experiment_date", dtype=dt.date).save()
    ln.Feature(name="study_metadata", dtype=dict).save()
    ln.Feature(name="sample", dtype=sample_type).save()

    # Annotate runs; all values of one call are stored, or none.
    transform = ln.Transform(key="align.py").save()
    for i, sample in enumerate(["P53mutant1", "WT-control"]):
        run = ln.Run(transform=transform, params={"threads": 8}).save()
        run.features.add_values(
            {
                "read_count": 2_000_000 * (i + 1),
                "gc_content": 0.41 + i / 10,
                "experiment_date": "2025-10-31",
                "study_metadata": {"assay": {"type": "RNA-seq"}, "detail1": "123"},
                "sample": sample,
            }
        )
    try:
        run.features.add_values({"read_count": "many", "gc_content": 0.5})
    except ln.errors.ValidationError as error:
        print(error)  # names the feature, the value and the expected type; nothing was stored

    # Query: fields, params, relations and features mix freely in one SQL statement.
    runs = ln.Run.filter(
        params__threads=8,
        read_count__gt=10**6,
        experiment_date="2025-10-31",
        study_metadata__assay__type="RNA-seq",
        sample__in=["P53mutant1", "WT-control"],
        transform=transform,
    )
    print(runs.to_dataframe(include="features")[["read_count", "gc_content", "sample"]])
    print(ln.Run.filter(sample=parent).one().features.get_values())


if __name__ == "__main__":
    main()
