"""A walkthrough of biolake's main job on the default local instance (run by `make demo`).

It follows the "Artifacts" and "Versioning" sections of the API contract: register a file, a
DataFrame and an AnnData object under keys, read them back, make new versions, look at them.
Then records, features and queries ("Records" and "Features" sections). Run it again: files with
the same content return the existing artifacts; changed content makes new versions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def step(title: str) -> None:
    print(f"\n== {title}")


def main() -> None:
    import anndata as ad
    import numpy as np
    import pandas as pd

    import biolake as ln

    work = Path(tempfile.mkdtemp(prefix="biolake-demo-"))
    print(f"instance: {ln.settings.instance.root}  (user: {ln.settings.user.handle})")

    step("Save a file under a key")
    fasta = work / "sample.fasta"
    fasta.write_text(">seq1\nACGTACGTTGCA\n>seq2\nGGCCTTAA\n")
    artifact = ln.Artifact(fasta, key="demo/sample.fasta", description="Two sequences").save()
    print(artifact)

    step("Save a DataFrame (Parquet) and an AnnData object (h5ad)")
    df = pd.DataFrame(
        {"gene": ["TP53", "EGFR", "MYC"], "expression": [2.5, 0.7, 1.9]},
        index=pd.Index(["s1", "s2", "s3"], name="sample"),
    )
    df_artifact = ln.Artifact.from_dataframe(
        df, key="demo/processed_data.parquet", description="Processed experimental data"
    ).save()
    adata = ad.AnnData(np.arange(12, dtype="float32").reshape(4, 3))
    adata.obs_names = [f"cell{i}" for i in range(4)]
    adata.var_names = ["TP53", "EGFR", "MYC"]
    ad_artifact = ln.Artifact.from_anndata(adata, key="demo/scrna.h5ad").save()
    print(df_artifact)
    print(ad_artifact)

    step("Retrieve: by key, by uid, by filter")
    print("by key:   ", ln.Artifact.get(key="demo/sample.fasta").uid)
    print("by uid:   ", ln.Artifact.get(artifact.uid).key)
    print("by filter:", ln.Artifact.filter(suffix=".h5ad", key__startswith="demo/").first())

    step("Access content: cache(), load(), open()")
    print("cached at:", artifact.cache())
    print("loaded DataFrame:\n", df_artifact.load())
    print("loaded AnnData:", ad_artifact.load())
    with artifact.open() as f:
        print("first 12 bytes:", f.read(12))
    with ad_artifact.open() as backed:
        print("backed AnnData shape:", backed.shape)

    step("Describe")
    df_artifact.describe()

    step("Versioning: new content under the same key makes a new version")
    data = work / "data.csv"
    data.write_text("sample,value\ns1,1\n")
    v1 = ln.Artifact(data, key="demo/experiment/data.csv").save()
    data.write_text("sample,value\ns1,1\ns2,2\n")
    v2 = ln.Artifact(data, key="demo/experiment/data.csv").save()
    print(f"first save:  version {v1.version}, latest={v1.is_latest}")
    print(f"second save: version {v2.version}, latest={v2.is_latest}")
    latest = ln.Artifact.get(key="demo/experiment/data.csv")
    print(
        "all versions:\n", latest.versions.to_dataframe()[["uid", "version", "is_latest", "hash"]]
    )
    first = latest.versions.filter(version="1").first()
    print("v1 rows:", len(first.load()), "| latest rows:", len(latest.load()))

    step("Saving identical content again returns the existing artifact")
    again = ln.Artifact(data, key="demo/experiment/data.csv").save()
    print("same artifact:", again.uid == latest.uid)

    step("Trash and restore")
    v_latest = ln.Artifact.get(key="demo/experiment/data.csv")
    v_latest.delete()
    print(
        "after delete, latest is version", ln.Artifact.get(key="demo/experiment/data.csv").version
    )
    v_latest.restore()
    print(
        "after restore, latest is version", ln.Artifact.get(key="demo/experiment/data.csv").version
    )
    print(
        f"\n{ln.Artifact.filter(key__startswith='demo/').count()} demo artifacts in the instance."
    )
    records_features_and_queries(work)
    tracked_pipeline(work)


def records_features_and_queries(work: Path) -> None:
    """The contract's "Records" and "Features" sections, on the artifacts of this demo."""
    from datetime import date

    import biolake as ln

    step("Records: a type and its members, a hierarchy, search")
    sample_type = ln.Record(name="Sample", is_type=True).save()
    for name in ["P53mutant1", "P53mutant2", "WT-control"]:
        ln.Record(name=name, type=sample_type).save()  # saving again returns the existing one
    parent = ln.Record.get(name="P53mutant1")
    child = ln.Record(name="P53mutant1-replicate1", type=sample_type).save()
    child.parents.add(parent)
    print("members of Sample:", [r.name for r in sample_type.instances.order_by("name")])
    print("children of P53mutant1:", [r.name for r in parent.children])
    print("search 'p53':", [r.name for r in ln.Record.search("p53")[:5]])

    step("Features: typed metadata; one bad value and nothing from that call is stored")
    ln.Feature(name="gc_content", dtype=float).save()
    ln.Feature(name="read_count", dtype=int).save()
    ln.Feature(name="experiment_date", dtype=date).save()
    ln.Feature(name="cell_type", dtype=str).save()
    ln.Feature(name="study_metadata", dtype=dict).save()
    ln.Feature(name="sample", dtype=sample_type).save()
    for i, cell_type in enumerate(["T cell", "B cell", "T cell"]):
        path = work / f"counts{i}.csv"
        path.write_text(f"gene,count\nTP53,{i}\n")
        artifact = ln.Artifact(path, key=f"demo/counts/sample{i}.csv").save()
        artifact.features.add_values(
            {
                "gc_content": 0.5 + i / 20,
                "read_count": 800_000 * (i + 1),
                "experiment_date": "2025-10-31",
                "cell_type": cell_type,
                "study_metadata": {"assay": {"type": "RNA-seq"}, "detail1": str(122 + i)},
                "sample": ["P53mutant1", "P53mutant2", "WT-control"][i],
            }
        )
    try:
        artifact.features.add_values({"read_count": "a lot", "gc_content": 0.4})
    except ln.errors.ValidationError as error:
        print("rejected:", error)
    print("values:", artifact.features.get_values())

    step("Queries: fields, relations and features in one filter")
    counts = ln.Artifact.filter(key__startswith="demo/counts/")
    hits = counts.filter(read_count__gt=1_000_000, cell_type="T cell")
    print("read_count > 1e6 and T cell:", [a.key for a in hits])
    print(
        "gc_content in [0.5, 0.55]:",
        counts.filter(gc_content__gte=0.5, gc_content__lte=0.55).count(),
    )
    print("RNA-seq:", counts.filter(study_metadata__assay__type="RNA-seq").count())
    print("sample P53mutant2:", [a.key for a in counts.filter(sample="P53mutant2")])
    print("with a cell_type:", counts.filter(cell_type__isnull=False).count())
    df = counts.to_dataframe(include="features")
    print(df[["key", "read_count", "cell_type", "experiment_date"]])
    artifact.describe()


def tracked_pipeline(work: Path) -> None:
    """The "Runs & Transforms" and "Data Lineage Tracking" sections: this script as a tracked
    run calling two tracked functions, then its lineage: queries, describe() and a picture."""
    import biolake as ln

    step("Track this script and a function: params, inputs, outputs, project")
    run = ln.track(params={"scale": 10.0}, project="biolake demo")

    @ln.tracked()
    def scale_expression(key: str, scale: float) -> ln.Artifact:
        """Scale the expression column of a table."""
        df = ln.Artifact.get(key=key).load()
        df["expression"] = df["expression"] * scale
        return ln.Artifact.from_dataframe(df, key="demo/expression_scaled.parquet").save()

    @ln.tracked()
    def summarise(key: str) -> ln.Artifact:
        """The mean expression per gene."""
        df = ln.Artifact.get(key=key).load()
        summary = df.groupby("gene", as_index=False)["expression"].mean()
        return ln.Artifact.from_dataframe(summary, key="demo/expression_summary.parquet").save()

    scaled = scale_expression("demo/processed_data.parquet", scale=10.0)
    summary = summarise("demo/expression_scaled.parquet")
    ln.finish()
    call = ln.Run.filter(initiated_by_run=run).order_by("id").first()  # the first call
    print(f"{run.transform.key} (version {run.transform.version}) -> {run.status}")
    print(f"{call.transform.key}: params {call.params}, status {call.status}")
    print("inputs:", [a.key for a in call.inputs], "| outputs:", [a.key for a in call.outputs])
    print("the output's run:", scaled.run.transform.key)
    print("initiated by the script's run:", call.initiated_by_run == run)
    print("runs with scale=10:", ln.Run.filter(params__scale=10.0).count() >= 2)

    step("Lineage: where the summary came from, and a picture of it")
    print("ancestors of the summary:", sorted(a.key for a in summary.ancestors()))
    processed = ln.Artifact.get(key="demo/processed_data.parquet")
    print("derived from the processed data:", sorted(a.key for a in processed.descendants()))
    print("the script's report starts:", run.report.load().splitlines()[0])
    print("its environment lists", len(run.environment.load().splitlines()), "lines")
    summary.run.describe()
    picture = summary.view_lineage(path=work / "lineage.svg")
    print(f"lineage picture: {work / 'lineage.svg'} ({len(picture.to_json()['nodes'])} nodes)")


if __name__ == "__main__":
    main()
