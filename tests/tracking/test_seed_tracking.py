"""The API contract's "Runs & Transforms" and "Data Lineage Tracking" snippets, unchanged but for
``import biolake as ln``, run as one real script (``python preprocessing.py``) on each backend.
Only the data they read is made first."""

from __future__ import annotations

import pandas as pd
from test_track import run_script

import biolake as ln

SETUP = """
import pandas as pd
import biolake as ln

pd.DataFrame({"x": [1.0, 2.0, 4.0]}).to_csv("input.csv", index=False)
ln.Artifact("input.csv", key="input.csv").save()
for name in ("batch1", "batch2", "data"):
    pd.DataFrame({"x": [1.0, 3.0]}).to_csv(f"{name}.csv", index=False)
    ln.Artifact(f"{name}.csv", key=f"raw/{name}.csv").save()
result = pd.DataFrame({"y": [1, 2]})
"""

SEED = '''
import biolake as ln
# Start tracking (beginning of notebook/script)
ln.track()
# Your analysis code
data = ln.Artifact.get(key="input.csv").load()
# ... perform analysis ...
result.to_csv("output.csv")
artifact = ln.Artifact("output.csv", key="output.csv").save()
# Finish tracking (end of notebook/script)
ln.finish()

ln.track(params={
"learning_rate": 0.01,
"batch_size": 32,
"epochs": 100,
"downsample": True
})
# Query runs by parameters
ln.Run.filter(params__learning_rate=0.01).to_dataframe()
ln.Run.filter(params__downsample=True).to_dataframe()

# Associate with project
ln.track(project="Cancer Drug Screen 2025")
# Query by project
project = ln.Project.get(name="Cancer Drug Screen 2025")
ln.Artifact.filter(projects=project).to_dataframe()
ln.Run.filter(project=project).to_dataframe()

@ln.tracked()
def preprocess_data(input_key: str, output_key: str, normalize: bool = True) -> None:
    """Preprocess raw data and save result."""
    # Load input (automatically tracked)
    artifact = ln.Artifact.get(key=input_key)
    data = artifact.load()
    # Process
    if normalize:
        data = (data - data.mean()) / data.std()
    # Save output (automatically tracked)
    ln.Artifact.from_dataframe(data, key=output_key).save()
# Each call creates a separate Transform and Run
preprocess_data("raw/batch1.csv", "processed/batch1.csv", normalize=True)
preprocess_data("raw/batch2.csv", "processed/batch2.csv", normalize=False)

# From artifact to run
artifact = ln.Artifact.get(key="output.csv")
run = artifact.run
transform = run.transform
# View details
run.describe() # Run metadata
transform.describe() # Transform metadata
# Access inputs
run.inputs.to_dataframe()
# Visualize lineage graph
artifact.view_lineage()

# Visualize full lineage graph
artifact.view_lineage()
# View captured metadata
artifact.describe()
# Access related entities
artifact.run # The run that created it
artifact.run.transform # The transform (code) used
artifact.run.inputs # Input artifacts
artifact.run.report # Execution report

# Find all outputs from a transform
transform = ln.Transform.get(name="preprocessing.py")
ln.Artifact.filter(transform=transform).to_dataframe()
# Find all artifacts from a specific user
user = ln.User.get(handle="researcher123")
ln.Artifact.filter(created_by=user).to_dataframe()
# Find artifacts using specific inputs
input_artifact = ln.Artifact.get(key="raw/data.csv")
runs = ln.Run.filter(inputs=input_artifact)
ln.Artifact.filter(run__in=runs).to_dataframe()
'''


def test_the_contracts_tracking_snippets_run_unchanged(instance, tmp_path) -> None:
    env = {"BIOLAKE_USER": "researcher123"}
    done = run_script(instance, tmp_path, "preprocessing.py", SETUP + SEED, env=env)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob("*.svg"))  # view_lineage() writes nothing unasked
    first, with_params, with_project = ln.Run.filter(transform__key="preprocessing.py").order_by(
        "id"
    )
    assert [r.status for r in (first, with_params)] == ["completed", "completed"]
    assert with_project.status == "completed" and with_project.finished_implicitly
    assert ln.Run.filter(params__learning_rate=0.01).one() == with_params
    output = ln.Artifact.get(key="output.csv")
    assert output.run == first and [a.key for a in first.inputs] == ["input.csv"]
    assert f"started run {first.uid} of preprocessing.py" in first.report.load()
    # What the script printed while a run was open is that run's report: describe() too.
    assert f"Run {first.uid} of preprocessing.py" in with_project.report.load()
    calls = ln.Run.filter(transform__key="preprocessing.py:preprocess_data").order_by("id")
    assert [c.params["normalize"] for c in calls] == [True, False]
    assert all(c.initiated_by_run == with_project for c in calls)
    batch1 = ln.Artifact.get(key="processed/batch1.csv")
    assert batch1.run == calls[0] and batch1.transform.description == (
        "Preprocess raw data and save result."
    )
    project = ln.Project.get(name="Cancer Drug Screen 2025")
    assert {a.key for a in ln.Artifact.filter(projects=project)} == {
        "processed/batch1.csv",
        "processed/batch2.csv",
    }
    assert ln.Run.filter(project=project).count() == 3  # the script's run and both calls
    loaded = batch1.load()
    assert isinstance(loaded, pd.DataFrame) and abs(loaded["x"].mean()) < 1e-9  # normalised
    assert ln.User.get(handle="researcher123") == output.created_by
