"""Which batch job a run belongs to: SLURM or PBS/Torque, read from the job's environment.

The context is a small JSON-ready dict of strings; keys whose variable is unset are left out.
Its ``"group"`` names the array job (``"slurm:120"``) so that the runs of all its tasks can be
found by one query on that key; a job outside an array is its own group (``"pbs:77.server"``).
In an array, SLURM gives every task a job id of its own and the array's id in
``SLURM_ARRAY_JOB_ID``; PBS Pro names the array in ``PBS_ARRAY_ID``, and for Torque, which does
not, the array's id is the task's with its index removed (``123[4].server`` -> ``123[].server``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["scheduler_context"]

# Each scheduler: (key, the variables that may hold it, the first set one wins). The first key
# is the job id, whose variable says the process runs under that scheduler.
_FIELDS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "slurm": (
        ("job_id", ("SLURM_JOB_ID", "SLURM_JOBID")),  # SLURM_JOBID: older releases
        ("array_job_id", ("SLURM_ARRAY_JOB_ID",)),
        ("array_task_id", ("SLURM_ARRAY_TASK_ID",)),
        ("job_name", ("SLURM_JOB_NAME",)),
        ("cluster", ("SLURM_CLUSTER_NAME",)),
        ("partition", ("SLURM_JOB_PARTITION",)),
        ("step_id", ("SLURM_STEP_ID",)),
        ("proc_id", ("SLURM_PROCID",)),  # the task's rank within an srun step
        ("node", ("SLURMD_NODENAME",)),
    ),
    "pbs": (
        ("job_id", ("PBS_JOBID",)),
        ("array_job_id", ("PBS_ARRAY_ID",)),  # PBS Pro only
        ("array_task_id", ("PBS_ARRAY_INDEX", "PBS_ARRAYID")),  # PBS Pro, Torque
        ("job_name", ("PBS_JOBNAME",)),
        ("queue", ("PBS_QUEUE",)),
    ),
}


def scheduler_context(environ: Mapping[str, str] = os.environ) -> dict[str, str] | None:
    """The batch job this process runs in, or None outside SLURM and PBS/Torque.

    Example::

        >>> scheduler_context({"SLURM_JOB_ID": "123", "SLURM_ARRAY_JOB_ID": "120",
        ...                    "SLURM_ARRAY_TASK_ID": "3"})
        {'scheduler': 'slurm', 'job_id': '123', 'array_job_id': '120', 'array_task_id': '3',
         'group': 'slurm:120'}
    """
    for scheduler, fields in _FIELDS.items():
        context = _read(environ, fields)
        if "job_id" in context:
            if scheduler == "pbs" and "array_task_id" in context:
                context.setdefault("array_job_id", re.sub(r"\[\d+\]", "[]", context["job_id"]))
            group = context.get("array_job_id", context["job_id"])
            return {"scheduler": scheduler, **context, "group": f"{scheduler}:{group}"}
    return None


def _read(
    environ: Mapping[str, str], fields: tuple[tuple[str, tuple[str, ...]], ...]
) -> dict[str, str]:
    context = {}
    for key, names in fields:
        value = next((environ[name] for name in names if environ.get(name)), None)
        if value is not None:
            context[key] = value
    return context
