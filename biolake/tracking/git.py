"""Where a run's code comes from: the git commit, branch, remote and uncommitted changes.

Commit, branch and remote come from the repository's own files (``HEAD``, loose refs,
``packed-refs``, ``config``): a few file reads, no process. Only the uncommitted changes need
git itself: one local ``git diff HEAD`` with no external diff, text conversion, colour, prompt or
optional lock, under a time limit. It never reaches the network.

- The repository is the first folder at or above ``start`` that holds ``.git``: a folder, or a
  file ``gitdir: <path>`` (worktrees, submodules, ``--separate-git-dir``). A worktree keeps its
  own ``HEAD``; its refs and config are in the main repository, named by its ``commondir`` file.
- ``dirty`` means ``git diff HEAD`` is not empty: staged or unstaged changes to tracked files.
  Untracked files do not count (as in ``git describe --dirty``). It is None when git is missing,
  fails (a repository owned by another user, say) or runs past the time limit.
- ``diff`` is that output when it is at most :data:`MAX_DIFF_BYTES`; a larger one is not kept
  (``diff_too_large``), and git is stopped as soon as it passes the limit.
- A repository with no commit yet has ``commit=None`` and no diff, and is dirty when its work tree
  holds anything besides ``.git`` or something was staged.
- ``remote_url`` is that of ``origin``, else of the first remote in ``config``. An http(s) URL
  loses its user info (``user:token@``); any other URL keeps its user but loses a password.
  ``url.<base>.insteadOf`` rewrites and ``[include]`` files are not followed.
- Repositories whose refs are in a reftable (``git init --ref-format=reftable``) have no ref files
  to read: commit, branch and dirty are None there.
"""

from __future__ import annotations

import os
import re
import signal
import stat
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import subprocess

__all__ = ["MAX_DIFF_BYTES", "GitState", "git_state", "start_git_state", "strip_credentials"]

MAX_DIFF_BYTES = 64 * 1024
"""The largest diff kept; a larger one is recorded only as ``diff_too_large``."""

_DIFF = ("git", "diff", "HEAD", "--no-ext-diff", "--no-textconv", "--no-color")
# The user's git variables could point git at another repository than the one read from files.
_REPO_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE")
_SECTION = re.compile(r'\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]')
_ESCAPES = {"n": "\n", "t": "\t", "b": "\b"}
_HEX = frozenset("0123456789abcdef")


class GitState(NamedTuple):  # a NamedTuple, not a dataclass: a third of the import time
    """The state of the git repository a run's code lives in."""

    root: str  # the top folder of the work tree
    commit: str | None  # the full hash of HEAD; None before the first commit
    branch: str | None  # None when HEAD is detached
    remote_url: str | None  # of origin, else of the first remote; without credentials
    dirty: bool | None  # None when git could not tell
    diff: str | None  # the uncommitted changes, when there are some and they are small
    diff_too_large: bool = False  # True when the changes exceed MAX_DIFF_BYTES


class _Repo(NamedTuple):
    root: str
    git_dir: str  # HEAD and the index; a worktree's own folder
    common_dir: str  # refs, packed-refs and config


def git_state(
    start: str | os.PathLike[str], *, diff: bool = True, timeout: float = 2.0
) -> GitState | None:
    """The git state of the repository holding ``start`` (a file or folder), or None.

    ``diff=False`` skips the one git process: ``diff`` and, once there is a commit, ``dirty``
    are then None. ``timeout`` bounds that process, in seconds.

    Example::

        >>> state = git_state("analysis/preprocess.py")
        >>> state.branch, state.dirty
        ('main', False)
    """
    return start_git_state(start, diff=diff, timeout=timeout)()


def start_git_state(
    start: str | os.PathLike[str], *, diff: bool = True, timeout: float = 2.0
) -> Callable[[], GitState | None]:
    """``git_state`` in two steps, so that the caller works while git runs: the files are read
    and ``git diff`` is started now; the function returned waits for git (at most ``timeout``
    seconds from when it is called) and returns the state."""
    repo = _find_repo(start)
    if repo is None:
        return lambda: None
    remote = _remote_url(repo.common_dir)
    if os.path.isdir(os.path.join(repo.common_dir, "reftable")):
        return lambda: GitState(repo.root, None, None, remote, None, None)
    commit, branch = _head(repo)
    if commit is None:
        unborn = GitState(repo.root, None, branch, remote, _unborn_dirty(repo), None)
        return lambda: unborn
    if not diff:
        return lambda: GitState(repo.root, commit, branch, remote, None, None)
    pending = _start_diff(repo.root)

    def result() -> GitState:
        dirty, text, too_large = _read_diff(pending, timeout)
        return GitState(repo.root, commit, branch, remote, dirty, text, too_large)

    return result


def strip_credentials(url: str) -> str:
    """``url`` without a password, and for http(s) without any user info (often a token).

    Example::

        >>> strip_credentials("https://user:token@example.org/lab/repo.git")
        'https://example.org/lab/repo.git'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:  # scp-like "git@host:lab/repo.git" or a local path: no password is possible
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    if scheme.lower() in ("http", "https"):
        return f"{scheme}://{host}{slash}{path}"
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}@{host}{slash}{path}"


def _find_repo(start: str | os.PathLike[str]) -> _Repo | None:
    # The physical path, as git sees it: a symlinked script belongs to its target's repository.
    folder = os.path.realpath(start)
    if not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    while True:
        git_dir = _git_dir_at(folder)
        if git_dir is not None:
            return _Repo(folder, git_dir, _common_dir(git_dir))
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _git_dir_at(folder: str) -> str | None:
    dot_git = os.path.join(folder, ".git")
    try:
        mode = os.stat(dot_git).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        git_dir = dot_git
    else:
        text = _read(dot_git) or ""
        if not text.startswith("gitdir:"):
            return None
        # A relative gitdir (submodules write one) is relative to the folder holding .git.
        git_dir = os.path.normpath(os.path.join(folder, text[len("gitdir:") :].strip()))
    return git_dir if os.path.isfile(os.path.join(git_dir, "HEAD")) else None


def _common_dir(git_dir: str) -> str:
    common = _read(os.path.join(git_dir, "commondir"))
    return os.path.normpath(os.path.join(git_dir, common.strip())) if common else git_dir


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _head(repo: _Repo) -> tuple[str | None, str | None]:
    """(commit, branch) of HEAD, following symbolic refs as git does (at most 5 deep)."""
    ref = "HEAD"
    for _ in range(5):
        value = _ref_value(repo, ref)
        branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
        if value is None:  # a branch with no commit yet
            return None, branch
        if not value.startswith("ref:"):
            return (value if _is_hash(value) else None), branch
        ref = value[len("ref:") :].strip()
        if not ref.startswith("refs/"):  # never read a file outside the refs folders
            return None, None
    return None, None


def _ref_value(repo: _Repo, ref: str) -> str | None:
    # A worktree's HEAD (and its bisect refs) are its own; branches are shared.
    for folder in dict.fromkeys((repo.git_dir, repo.common_dir)):
        text = _read(os.path.join(folder, *ref.split("/")))
        if text is not None:
            return text.strip()
    return _packed_refs(repo.common_dir).get(ref)


def _packed_refs(common_dir: str) -> dict[str, str]:
    refs = {}
    for line in (_read(os.path.join(common_dir, "packed-refs")) or "").splitlines():
        if line and line[0] not in "#^":  # a header, or the peeled commit of the tag above
            hash_, _, name = line.partition(" ")
            refs[name.strip()] = hash_
    return refs


def _is_hash(value: str) -> bool:
    return len(value) in (40, 64) and _HEX.issuperset(value)  # SHA-1 or SHA-256 repositories


def _remote_url(common_dir: str) -> str | None:
    urls = _remote_urls(_read(os.path.join(common_dir, "config")) or "")
    url = urls.get("origin") or next(iter(urls.values()), None)
    return strip_credentials(url) if url else None


def _remote_urls(config: str) -> dict[str, str]:
    """The first ``url`` of each ``[remote "name"]`` section, in the order of the file."""
    urls: dict[str, str] = {}
    remote = None
    for line in config.splitlines():
        header = _SECTION.match(line)
        if header:
            section, subsection = header.group(1).lower(), header.group(2)
            if section == "remote":
                remote = subsection
            else:  # the old spelling [remote.origin]
                remote = section[len("remote.") :] if section.startswith("remote.") else None
            continue
        key, sep, value = line.partition("=")
        if remote is not None and sep and key.strip().lower() == "url":
            urls.setdefault(remote, _config_value(value))
    return urls


def _config_value(raw: str) -> str:
    """A config value as git reads it: quotes removed, escapes decoded, comments cut."""
    out, quoted = [], False
    chars = iter(raw.strip())
    for char in chars:
        if char == '"':
            quoted = not quoted
        elif char == "\\":
            escaped = next(chars, "")
            out.append(_ESCAPES.get(escaped, escaped))
        elif char in "#;" and not quoted:
            break
        else:
            out.append(char)
    return "".join(out).strip()


def _unborn_dirty(repo: _Repo) -> bool | None:
    """Before the first commit: dirty when anything was staged or the work tree is not empty."""
    if os.path.exists(os.path.join(repo.git_dir, "index")):
        return True
    try:
        with os.scandir(repo.root) as entries:
            return any(entry.name != ".git" for entry in entries)
    except OSError:
        return None


def _start_diff(root: str) -> subprocess.Popen[bytes] | None:
    """``git diff HEAD`` in ``root``, started; None when there is no git on PATH."""
    import subprocess  # only inside a repository

    env = {key: value for key, value in os.environ.items() if key not in _REPO_VARIABLES}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
    try:
        return subprocess.Popen(
            _DIFF,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=os.name == "posix",  # so that a kill reaches git's own children
        )
    except OSError:
        return None


def _read_diff(
    proc: subprocess.Popen[bytes] | None, timeout: float
) -> tuple[bool | None, str | None, bool]:
    """(dirty, diff, too_large) from a started ``git diff HEAD``, waiting at most ``timeout``."""
    if proc is None:
        return None, None, False
    stdout = proc.stdout
    assert stdout is not None  # stdout=PIPE
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        _kill(proc)  # the read below then ends: git's end of the pipe is closed

    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        out = stdout.read(MAX_DIFF_BYTES + 1)  # never hold more than the limit in memory
        too_large = len(out) > MAX_DIFF_BYTES
        if too_large:
            _kill(proc)
        code = proc.wait()
    finally:
        timer.cancel()
        stdout.close()
    if too_large:
        return True, None, True
    if code != 0 or expired.is_set():
        return None, None, False
    return bool(out), out.decode("utf-8", "replace") or None, False


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:  # it has ended already
        pass
