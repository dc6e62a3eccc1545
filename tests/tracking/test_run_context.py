"""Where a run executes: git state from real repositories, environment fingerprints, schedulers."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from biolake.tracking.environment import fingerprint, package_list
from biolake.tracking.git import MAX_DIFF_BYTES, GitState, git_state, strip_credentials
from biolake.tracking.scheduler import scheduler_context

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="needs the git binary")


def git(folder: Path, *args: str) -> str:
    """Run git in ``folder``, blind to the user's global and system config."""
    assert GIT is not None
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        [GIT, "-C", str(folder), *args], check=True, capture_output=True, text=True, env=env
    )
    return done.stdout.strip()


def init(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.org")
    return root


def commit(root: Path, name: str = "step.py", text: str = "print('hi')\n") -> str:
    (root / name).write_text(text)
    git(root, "add", name)
    git(root, "commit", "-q", "-m", f"write {name}")
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = init(tmp_path / "repo")
    commit(root)
    return root


def state_of(start: Path, *, diff: bool = True, timeout: float = 2.0) -> GitState:
    state = git_state(start, diff=diff, timeout=timeout)
    assert state is not None
    return state


# --- git ---------------------------------------------------------------------------------------


@needs_git
def test_clean_repository(repo: Path) -> None:
    state = state_of(repo)
    assert state == GitState(
        root=str(repo.resolve()),
        commit=git(repo, "rev-parse", "HEAD"),
        branch="main",
        remote_url=None,
        dirty=False,
        diff=None,
    )


@needs_git
def test_found_from_a_file_in_a_subfolder(repo: Path) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "step.py").write_text("")
    assert state_of(repo / "src" / "step.py").root == str(repo.resolve())


@needs_git
def test_modified_file_is_dirty_with_its_diff(repo: Path) -> None:
    (repo / "step.py").write_text("print('bye')\n")
    state = state_of(repo)
    assert state.dirty is True
    assert state.diff is not None
    assert "-print('hi')" in state.diff and "+print('bye')" in state.diff
    assert not state.diff_too_large


@needs_git
def test_staged_change_is_dirty_and_untracked_file_is_not(repo: Path) -> None:
    (repo / "notes.txt").write_text("untracked\n")
    assert state_of(repo).dirty is False
    (repo / "step.py").write_text("print('staged')\n")
    git(repo, "add", "step.py")
    assert state_of(repo).dirty is True


@needs_git
def test_branch(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature/qc")
    head = commit(repo, "qc.py")
    state = state_of(repo)
    assert (state.branch, state.commit) == ("feature/qc", head)


@needs_git
def test_detached_head(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    commit(repo, "second.py")
    git(repo, "checkout", "-q", first)
    state = state_of(repo)
    assert (state.branch, state.commit, state.dirty) == (None, first, False)


@needs_git
def test_packed_refs(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "packed")
    head = commit(repo, "more.py")
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "packed").exists()
    state = state_of(repo)
    assert (state.branch, state.commit) == ("packed", head)


@needs_git
def test_worktree(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", "https://example.org/lab/repo.git")
    worktree = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wt-branch", str(worktree))
    assert (worktree / ".git").is_file()
    state = state_of(worktree)
    assert state.root == str(worktree.resolve())
    assert (state.branch, state.commit) == ("wt-branch", git(repo, "rev-parse", "HEAD"))
    assert state.remote_url == "https://example.org/lab/repo.git"
    assert state.dirty is False
    (worktree / "step.py").write_text("changed in the worktree\n")
    assert state_of(worktree).dirty is True
    assert state_of(repo).dirty is False


@needs_git
def test_relative_gitdir_file(tmp_path: Path) -> None:
    root = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", str(tmp_path / "store"), "work")
    (root / ".git").write_text("gitdir: ../store\n")  # as submodules write it
    git(root, "config", "user.name", "Test User")
    git(root, "config", "user.email", "test@example.org")
    head = commit(root)
    state = state_of(root)
    assert (state.root, state.commit, state.dirty) == (str(root.resolve()), head, False)


@needs_git
def test_remote_credentials_are_stripped(repo: Path) -> None:
    git(repo, "remote", "add", "upstream", "https://ghp_secrettoken@example.org/up/repo.git")
    assert state_of(repo).remote_url == "https://example.org/up/repo.git"
    git(repo, "remote", "add", "origin", "https://alice:s3cret@example.org/lab/repo.git")
    state = state_of(repo)
    assert state.remote_url == "https://example.org/lab/repo.git"
    assert "s3cret" not in repr(state)


@needs_git
def test_remote_url_read_as_git_reads_it(repo: Path) -> None:
    with open(repo / ".git" / "config", "a") as config:
        config.write('[remote "lab"]\n\turl = "ssh://git@example.org/a b.git" ; a comment\n')
    expected = git(repo, "remote", "get-url", "lab")
    assert state_of(repo).remote_url == expected == "ssh://git@example.org/a b.git"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@example.org/x.git", "https://example.org/x.git"),
        ("http://token@example.org:8080/x.git", "http://example.org:8080/x.git"),
        ("HTTPS://u:p@example.org", "HTTPS://example.org"),
        ("https://example.org/x.git", "https://example.org/x.git"),
        ("ssh://git:pw@example.org/x.git", "ssh://git@example.org/x.git"),
        ("ssh://git@example.org/x.git", "ssh://git@example.org/x.git"),
        ("git@example.org:lab/x.git", "git@example.org:lab/x.git"),
        ("/srv/git/x.git", "/srv/git/x.git"),
        ("file:///srv/git/x.git", "file:///srv/git/x.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


@needs_git
def test_oversized_diff_is_flagged_not_kept(repo: Path) -> None:
    commit(repo, "table.csv", "".join(f"{i},a\n" for i in range(10_000)))
    (repo / "table.csv").write_text("".join(f"{i},b\n" for i in range(10_000)))
    state = state_of(repo)
    assert (state.dirty, state.diff, state.diff_too_large) == (True, None, True)
    assert len(git(repo, "diff", "HEAD")) > MAX_DIFF_BYTES


@needs_git
def test_no_commit_yet(tmp_path: Path) -> None:
    root = init(tmp_path / "new")
    state = state_of(root)
    assert (state.commit, state.branch, state.dirty, state.diff) == (None, "main", False, None)
    (root / "step.py").write_text("")
    assert state_of(root).dirty is True


def test_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    assert git_state(tmp_path / "plain") is None


@needs_git
def test_without_git_binary_dirty_is_unknown(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-such-bin"))
    state = state_of(repo)
    assert state.commit == git(repo, "rev-parse", "HEAD")
    assert (state.dirty, state.diff) == (None, None)


@needs_git
def test_diff_false_starts_no_git(repo: Path) -> None:
    (repo / "step.py").write_text("changed\n")
    state = state_of(repo, diff=False)
    assert state.commit is not None
    assert (state.dirty, state.diff) == (None, None)


@needs_git
@pytest.mark.skipif(os.name != "posix", reason="a shell script stands in for git")
def test_git_past_its_time_limit_is_stopped(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    # A child that keeps git's stdout open: stopping git alone would leave the read waiting.
    (bin_ / "git").write_text("#!/bin/sh\nsleep 30\n")
    (bin_ / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    state = state_of(repo, timeout=0.2)
    assert time.monotonic() - started < 10
    assert state.commit is not None
    assert state.dirty is None


# --- environment -------------------------------------------------------------------------------

FINGERPRINT = "from biolake.tracking.environment import fingerprint; print(fingerprint())"


def fingerprint_in_process(extra_path: Path, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(extra_path)}
    done = subprocess.run(
        [sys.executable, "-c", FINGERPRINT],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


def test_fingerprint_stable_across_processes_and_changed_by_a_package(tmp_path: Path) -> None:
    site, cwd = tmp_path / "site", tmp_path / "cwd"
    site.mkdir()
    cwd.mkdir()
    first = fingerprint_in_process(site, cwd)
    assert first.startswith("blake3:")
    assert fingerprint_in_process(site, cwd) == first
    (site / "foo-1.0.dist-info").mkdir()
    with_foo = fingerprint_in_process(site, cwd)
    assert with_foo != first
    (site / "foo-1.0.dist-info").rename(site / "foo-1.1.dist-info")
    upgraded = fingerprint_in_process(site, cwd)
    assert upgraded not in (first, with_foo)
    (site / "foo-1.1.dist-info").rmdir()
    assert fingerprint_in_process(site, cwd) == first


def test_fingerprint_reads_the_version_of_an_unversioned_egg_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    egg_info = tmp_path / "foo.egg-info"
    egg_info.mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    (egg_info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: foo\nVersion: 1.0\n\n")
    before = fingerprint()
    assert fingerprint() == before
    (egg_info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: foo\nVersion: 2.0\n\n")
    assert fingerprint() != before


def test_package_list() -> None:
    lines = package_list().splitlines()
    assert lines[0] == (
        f"# python {platform.python_version()} "
        f"({sys.implementation.name}{getattr(sys, 'abiflags', '')}, "
        f"{sys.platform} {platform.machine()})"
    )
    assert lines[1] == f"# executable {sys.executable}"
    packages = lines[2:]
    names = [line.partition("==")[0] for line in packages]
    assert names == sorted(set(names))
    assert f"pytest=={importlib.metadata.version('pytest')}" in packages
    # biolake itself is an editable install: it counts by its dist-info.
    assert f"biolake=={importlib.metadata.version('biolake')}" in packages


def test_package_list_normalises_names_and_skips_empty_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty-1.0.dist-info").mkdir()
    real = tmp_path / "Foo_Bar-2.0.dist-info"
    real.mkdir()
    (real / "METADATA").write_text("Metadata-Version: 2.1\nName: Foo_Bar\nVersion: 2.0\n\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    packages = package_list().splitlines()
    assert "foo-bar==2.0" in packages
    assert not any(line.startswith("empty") for line in packages)


# --- scheduler ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"HOME": "/home/me", "SLURM_JOB_ID": ""}, None),
        (
            {"SLURM_JOB_ID": "77", "SLURM_JOB_NAME": "qc", "SLURM_CLUSTER_NAME": "hpc"},
            {
                "scheduler": "slurm",
                "job_id": "77",
                "job_name": "qc",
                "cluster": "hpc",
                "group": "slurm:77",
            },
        ),
        (
            {
                "SLURM_JOB_ID": "123",
                "SLURM_ARRAY_JOB_ID": "120",
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_JOB_NAME": "sweep",
                "SLURM_PROCID": "0",
                "SLURM_JOB_PARTITION": "gpu",
            },
            {
                "scheduler": "slurm",
                "job_id": "123",
                "array_job_id": "120",
                "array_task_id": "3",
                "job_name": "sweep",
                "partition": "gpu",
                "proc_id": "0",
                "group": "slurm:120",
            },
        ),
        (
            {"SLURM_JOBID": "5"},
            {"scheduler": "slurm", "job_id": "5", "group": "slurm:5"},
        ),
        (
            {"PBS_JOBID": "77.server", "PBS_JOBNAME": "qc", "PBS_QUEUE": "batch"},
            {
                "scheduler": "pbs",
                "job_id": "77.server",
                "job_name": "qc",
                "queue": "batch",
                "group": "pbs:77.server",
            },
        ),
        (
            {"PBS_JOBID": "123[4].server", "PBS_ARRAY_ID": "123[].server", "PBS_ARRAY_INDEX": "4"},
            {
                "scheduler": "pbs",
                "job_id": "123[4].server",
                "array_job_id": "123[].server",
                "array_task_id": "4",
                "group": "pbs:123[].server",
            },
        ),
        (
            {"PBS_JOBID": "123[4].torque", "PBS_ARRAYID": "4"},
            {
                "scheduler": "pbs",
                "job_id": "123[4].torque",
                "array_task_id": "4",
                "array_job_id": "123[].torque",
                "group": "pbs:123[].torque",
            },
        ),
    ],
)
def test_scheduler_context(environ: dict[str, str], expected: dict[str, str] | None) -> None:
    assert scheduler_context(environ) == expected


def test_tasks_of_one_array_share_a_group() -> None:
    tasks = [
        {"SLURM_JOB_ID": str(121 + i), "SLURM_ARRAY_JOB_ID": "120", "SLURM_ARRAY_TASK_ID": str(i)}
        for i in range(3)
    ]
    contexts = [scheduler_context(environ) for environ in tasks]
    assert {context["group"] for context in contexts if context} == {"slurm:120"}
    assert len({context["job_id"] for context in contexts if context}) == 3
