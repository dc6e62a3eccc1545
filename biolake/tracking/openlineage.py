"""OpenLineage RunEvents for runs: a pure conversion, no database.

Each run becomes a START event and, once it has ended, one end event (``END_EVENTS``):
``completed`` is COMPLETE, ``errored`` and ``crashed`` are FAIL, ``aborted`` is ABORT. A run
still ``started`` gets its START only: the spec asks for one START and one terminal event per
run, and a RUNNING event would say nothing the START does not (its time would be the export's,
so two exports of the same run would differ).

- run: ``runId`` is :func:`run_uuid`, the same for a run in every export. Run facets on every
  event: ``parent`` (the run that initiated this one, and its root), the params as
  ``executionParameters`` (values as text, as the standard facet wants) and as
  ``biolake_parameters`` (the JSON values as they are); ``errorMessage`` on FAIL.
- job: the instance's namespace (``biolake://<instance name>``) and the transform's key. Job facets
  ``jobType`` and ``sourceCodeLocation`` (the git remote and commit, when both were recorded) on
  every event; ``sourceCode``, the largest, on START only.
- datasets: namespace the artifact's storage root (``file:///...`` for a local folder), name the
  artifact's key (its uid when it has none), the ``version`` facet its content hash. Inputs and
  outputs are on every event: a consumer may read any one of them alone.

The caller passes runs duck-typed (``uid``, ``status``, ``started_at``, ``finished_at``,
``status_reason``, ``params``, ``git_remote``, ``git_commit``, ``git_branch`` and ``transform``
with ``key``, ``kind``, ``source_code``) with their datasets and parent already looked up.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from biolake.tracking.functions import param_value

__all__ = [
    "END_EVENTS",
    "PARAMETERS_FACET",
    "SCHEMA_URL",
    "Dataset",
    "Producer",
    "RunRef",
    "dataset",
    "run_events",
    "run_uuid",
]

SPEC_VERSION = "2-0-2"
SCHEMA_URL = f"https://openlineage.io/spec/{SPEC_VERSION}/OpenLineage.json#/$defs/RunEvent"
REPOSITORY = "https://github.com/biolake/biolake"
END_EVENTS = {"completed": "COMPLETE", "errored": "FAIL", "crashed": "FAIL", "aborted": "ABORT"}
PARAMETERS_FACET = "biolake_parameters"

# The standard facets used: name -> (schema version, definition), for their _schemaURL.
_STANDARD_FACETS = {
    "parent": ("1-2-0", "ParentRunFacet"),
    "errorMessage": ("1-0-1", "ErrorMessageRunFacet"),
    "executionParameters": ("1-0-0", "ExecutionParametersRunFacet"),
    "jobType": ("2-0-4", "JobTypeJobFacet"),
    "sourceCode": ("1-0-1", "SourceCodeJobFacet"),
    "sourceCodeLocation": ("1-1-0", "SourceCodeLocationJobFacet"),
    "version": ("1-0-1", "DatasetVersionDatasetFacet"),
}
_TRACEBACK = "Traceback (most recent call last):"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_REMOTE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(?!//)(.+)$")  # git@host:org/repo.git


@dataclass(frozen=True)
class Producer:
    """Who emits the events: the job namespace of an instance and biolake's release."""

    namespace: str
    producer: str

    @classmethod
    def of(cls, instance_name: str, version: str) -> Producer:
        """``Producer.of("lab", "0.1.0")``: namespace ``biolake://lab``."""
        return cls(f"biolake://{quote(instance_name, safe='')}", f"{REPOSITORY}/tree/{version}")

    @property
    def custom_schema_url(self) -> str:
        """Where the ``biolake_parameters`` facet is described."""
        return (
            self.producer.replace("/tree/", "/blob/", 1)
            + "/docs/tracking.md#exporting-to-openlineage"
        )


class Dataset(NamedTuple):
    namespace: str
    name: str
    version: str | None


class RunRef(NamedTuple):
    """Another run, as a parent facet names it."""

    uid: str
    started_at: dt.datetime
    job_name: str


def dataset(storage_root: str, key: str | None, uid: str, content_hash: str | None) -> Dataset:
    """An artifact as a dataset: ``dataset("/data/lab", "raw/counts.csv", "a1b2", "blake3:9f")``
    is ``Dataset("file:///data/lab", "raw/counts.csv", "blake3:9f")``."""
    return Dataset(storage_namespace(storage_root), key if key is not None else uid, content_hash)


def storage_namespace(root: str) -> str:
    """A storage root as a URI: ``s3://bucket/prefix`` as it is, a local folder as ``file://``."""
    if _SCHEME.match(root):
        return root.rstrip("/")
    return Path(root).as_uri() if Path(root).is_absolute() else root


@functools.lru_cache(maxsize=1024)  # each event needs its run's id, its parent's and its root's
def run_uuid(namespace: str, uid: str, started_at: dt.datetime) -> str:
    """The run's stable ``runId``: a UUIDv7, the version the spec recommends, whose 48-bit time
    is the start in milliseconds and whose other bits come from SHA-256 of the namespace and the
    run's uid (instead of random bits), so every export gives the run the same id."""
    millis = int(started_at.timestamp() * 1000) & (2**48 - 1)
    digest = int.from_bytes(hashlib.sha256(f"{namespace}/runs/{uid}".encode()).digest()[:10])
    low = digest & (2**74 - 1)  # 12 + 62 bits around the version and variant
    value = (millis << 80) | (7 << 76) | ((low >> 62) << 64) | (0b10 << 62) | (low & (2**62 - 1))
    return str(uuid.UUID(int=value))


def run_events(
    run: Any,
    producer: Producer,
    *,
    inputs: Sequence[Dataset] = (),
    outputs: Sequence[Dataset] = (),
    parent: RunRef | None = None,
    root: RunRef | None = None,
) -> list[dict[str, Any]]:
    """The RunEvents of ``run``: START, then the end event of its status if it has ended.

    Example: ``run_events(run, Producer.of("lab", "0.1.0"), outputs=[dataset(...)])``
    """
    kinds = ["START"]
    end = END_EVENTS.get(run.status)
    if end is not None:
        kinds.append(end)
    # Each event is built anew, sharing no dict with the other: a caller may change one.
    return [_event(kind, run, producer, inputs, outputs, parent, root) for kind in kinds]


def _event(
    kind: str,
    run: Any,
    producer: Producer,
    inputs: Sequence[Dataset],
    outputs: Sequence[Dataset],
    parent: RunRef | None,
    root: RunRef | None,
) -> dict[str, Any]:
    run_facets = _run_facets(run, producer, parent, root)
    if kind == "FAIL":
        run_facets["errorMessage"] = _error_facet(producer, run.status_reason)
    job_facets = _job_facets(run, producer)
    if kind == "START" and run.transform.source_code is not None:
        job_facets["sourceCode"] = _facet(
            producer, "sourceCode", language="python", sourceCode=run.transform.source_code
        )
    time = run.started_at if kind == "START" else run.finished_at or run.started_at
    return {
        "eventType": kind,
        "eventTime": _time(time),
        "producer": producer.producer,
        "schemaURL": SCHEMA_URL,
        "run": {
            "runId": run_uuid(producer.namespace, run.uid, run.started_at),
            "facets": run_facets,
        },
        "job": {"namespace": producer.namespace, "name": run.transform.key, "facets": job_facets},
        "inputs": [_dataset(item, producer) for item in inputs],
        "outputs": [_dataset(item, producer) for item in outputs],
    }


def _time(value: dt.datetime) -> str:
    # Stored times are UTC; a naive one (a run built by hand) is taken as UTC too.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _facet(producer: Producer, name: str, **fields: Any) -> dict[str, Any]:
    version, definition = _STANDARD_FACETS[name]
    url = f"https://openlineage.io/spec/facets/{version}/{definition}.json#/$defs/{definition}"
    return {"_producer": producer.producer, "_schemaURL": url, **fields}


def _run_facets(
    run: Any, producer: Producer, parent: RunRef | None, root: RunRef | None
) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if parent is not None:
        top = root or parent  # the root is the parent itself when the parent has none
        facets["parent"] = _facet(
            producer,
            "parent",
            run=_ref(parent, producer),
            job=_ref_job(parent, producer),
            root={"run": _ref(top, producer), "job": _ref_job(top, producer)},
        )
    if run.params:
        params = param_value(dict(run.params))  # JSON as stored; a non-finite float as text
        facets["executionParameters"] = _facet(
            producer,
            "executionParameters",
            parameters=[{"key": k, "value": _as_text(v)} for k, v in params.items()],
        )
        facets[PARAMETERS_FACET] = {
            "_producer": producer.producer,
            "_schemaURL": producer.custom_schema_url,
            "parameters": params,
        }
    return facets


def _ref(ref: RunRef, producer: Producer) -> dict[str, str]:
    return {"runId": run_uuid(producer.namespace, ref.uid, ref.started_at)}


def _ref_job(ref: RunRef, producer: Producer) -> dict[str, str]:
    return {"namespace": producer.namespace, "name": ref.job_name}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _job_facets(run: Any, producer: Producer) -> dict[str, Any]:
    kind = str(run.transform.kind or "script").upper()
    facets = {
        "jobType": _facet(
            producer, "jobType", processingType="BATCH", integration="BIOLAKE", jobType=kind
        )
    }
    location = _source_location(run.git_remote, run.git_commit, run.git_branch)
    if location is not None:
        facets["sourceCodeLocation"] = _facet(producer, "sourceCodeLocation", **location)
    return facets


def _source_location(
    remote: str | None, commit: str | None, branch: str | None
) -> dict[str, str] | None:
    """The ``sourceCodeLocation`` fields: the repository at the commit. The file's place in
    the repository is not recorded, so the URL is the commit's tree and ``path`` is left out."""
    if not remote or not commit:
        return None
    url = _browse_url(remote, commit)
    if url is None:
        return None
    fields = {"type": "git", "url": url, "repoUrl": remote, "version": commit}
    if branch:
        fields["branch"] = branch
    return fields


def _browse_url(remote: str, commit: str) -> str | None:
    """A URL of the repository at ``commit``: ``/tree/<commit>`` on a web host (the form GitHub,
    GitLab, Gitea and Forgejo serve) for http(s), ssh and ``user@host:path`` remotes; the remote
    itself for other URLs (``file://``) and local paths, which no web page shows."""
    scp = None if _SCHEME.match(remote) else _SCP_REMOTE.match(remote)
    if scp is not None and not remote.startswith("/"):
        host, path = scp.group(1), "/" + scp.group(2).lstrip("/")
    elif _SCHEME.match(remote):
        parts = urlsplit(remote)
        if parts.scheme not in ("http", "https", "ssh", "git+ssh") or not parts.hostname:
            return remote
        host, path = parts.hostname, parts.path
        if parts.scheme in ("http", "https") and parts.port:
            host = f"{host}:{parts.port}"  # an ssh port is no web port: dropped
    elif remote.startswith("/"):
        return PurePosixPath(remote).as_uri()
    else:
        return None
    scheme = "http" if remote.startswith("http://") else "https"
    path = path.rstrip("/").removesuffix(".git")
    return f"{scheme}://{host}{quote(path)}/tree/{quote(commit, safe='')}"


def _error_facet(producer: Producer, reason: str | None) -> dict[str, Any]:
    """``errorMessage`` from the status reason: for a traceback, its last line (the exception)
    as the message and the whole as the stack trace; otherwise the reason as it is."""
    text = (reason or "").strip() or "the run failed without a recorded reason"
    fields = {"message": text, "programmingLanguage": "python"}
    if _TRACEBACK in text:
        # The exception is the last unindented line (indented ones are frames and groups).
        lines = [line for line in text.splitlines() if line.strip()]
        unindented = [line for line in lines if not line[0].isspace()]
        fields["message"] = (unindented or lines)[-1].strip()
        fields["stackTrace"] = text
    return _facet(producer, "errorMessage", **fields)


def _dataset(item: Dataset, producer: Producer) -> dict[str, Any]:
    entry: dict[str, Any] = {"namespace": item.namespace, "name": item.name}
    if item.version is not None:
        entry["facets"] = {"version": _facet(producer, "version", datasetVersion=item.version)}
    return entry
