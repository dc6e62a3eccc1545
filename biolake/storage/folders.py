"""Reading a folder to store it, without ever reading outside it.

What a folder holds (also in the hashing docstring and ``docs/artifacts.md``):

- its regular files, at every depth;
- symlinks to regular files inside the folder: the target's bytes, under the link's path;
- nothing else. A symlink that points outside the folder, to a folder (inside or not), to
  nothing, or into a loop is refused, naming the link and its target, as are FIFOs, sockets
  and devices.

The check and the read cannot be told apart by a program that swaps a link in between: every
file is opened by the real path of its bytes inside the folder, one component at a time from
a descriptor of the folder, with ``O_NOFOLLOW``, so no symlink is ever followed while opening.
A link swapped after the check makes the save fail (a component is now a link) or read the
file the check approved, never the link's new target. Files are opened with ``O_NONBLOCK``,
so a FIFO swapped in never blocks, and checked to be regular once open.

Example::

    with open_folder("data.zarr") as folder:
        for member in folder.members:
            fd = folder.open(member)
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from biolake.errors import StorageError, ValidationError

__all__ = ["Folder", "Member", "open_folder"]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC


class Member(NamedTuple):
    """A file of the folder: where it is stored (``relpath``), where its bytes are
    (``source``, the same unless it is a link), and its size when listed (a hint only)."""

    relpath: str
    source: str
    size: int


class Folder:
    """An open folder: its members, sorted by the UTF-8 bytes of their paths (the order of the
    folder hash), each opened beneath the folder.

    Not for use from several threads at once (it keeps the last directory it opened).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)
        self.real_root = os.path.realpath(self.root)
        self._fd = os.open(self.real_root, _DIR_FLAGS & ~_NOFOLLOW)
        self._dir: tuple[str, int] | None = None  # the last parent directory opened
        try:
            self.members = self._walk()
        except BaseException:
            self.close()
            raise
        self._forget_dir()  # the reads start from the folder again, as they may come later

    def _forget_dir(self) -> None:
        if self._dir is not None:
            os.close(self._dir[1])
            self._dir = None

    def path(self, member: Member) -> str:
        """The member's path as the user sees it (for messages)."""
        return os.path.join(self.root, member.relpath)

    def open(self, member: Member) -> int:
        """A read-only descriptor of the member's bytes, reached without following links."""
        parent, _, name = member.source.rpartition("/")
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self._dir_fd(parent))
        except OSError as exc:
            raise _changed(self.path(member), exc) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO or device since listed
            os.close(fd)
            raise _not_regular(self.path(member))
        return fd

    def opener(self, member: Member) -> Callable[[str, int], int]:
        """``open(path, opener=folder.opener(member))``: a file object over ``open(member)``."""
        return lambda _path, _flags: self.open(member)

    def close(self) -> None:
        self._forget_dir()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Folder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- opening beneath the folder -----------------------------------------------------------

    def _dir_fd(self, relpath: str) -> int:
        """A descriptor of the directory ``relpath`` ("" is the folder), opened one component
        at a time without following links; the last one is kept, as members come in order."""
        if not relpath:
            return self._fd
        if self._dir is not None and self._dir[0] == relpath:
            return self._dir[1]
        fd = self._fd
        try:
            for part in relpath.split("/"):
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                if fd != self._fd:
                    os.close(fd)
                fd = next_fd
        except BaseException:
            if fd != self._fd:
                os.close(fd)
            raise
        self._forget_dir()
        self._dir = (relpath, fd)
        return fd

    # --- listing ------------------------------------------------------------------------------

    def _walk(self) -> list[Member]:
        members = []
        pending = [""]  # directories still to list: "" (the folder) or "sub/dir/"
        while pending:
            prefix = pending.pop()
            try:
                fd = self._dir_fd(prefix.rstrip("/"))
            except OSError as exc:
                raise _changed(os.path.join(self.root, prefix), exc) from None
            with os.scandir(fd) as entries:
                for entry in entries:
                    relpath = prefix + entry.name
                    if entry.is_symlink():
                        members.append(self._link(relpath))
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append(relpath + "/")
                    elif entry.is_file(follow_symlinks=False):
                        size = entry.stat(follow_symlinks=False).st_size
                        members.append(Member(relpath, relpath, size))
                    else:
                        raise _not_regular(os.path.join(self.root, relpath))
        return sorted(members, key=lambda m: m.relpath.encode("utf-8", "surrogateescape"))

    def _link(self, relpath: str) -> Member:
        """The member a link stands for, if it points to a regular file inside the folder."""
        link = os.path.join(self.root, relpath)
        real_link = os.path.join(self.real_root, relpath)
        try:
            target = os.path.realpath(real_link, strict=True)
            st = os.stat(target)
        except OSError as exc:
            raise _bad_link(link, real_link, exc) from None
        inside = os.path.relpath(target, self.real_root)
        if inside == ".." or inside.startswith("../"):
            raise ValidationError(
                f"The symlink {link!r} points outside the folder, to {target!r}. Copy the "
                "target into the folder instead, so that the folder's hash covers its content."
            )
        if stat.S_ISDIR(st.st_mode) and _contains(target, real_link):
            raise ValidationError(
                f"The symlink {link!r} is a loop: it points to {target!r}, a folder that "
                "contains it. Remove it before saving."
            )
        if stat.S_ISDIR(st.st_mode):
            raise ValidationError(
                f"The symlink {link!r} points to the folder {target!r}: links to folders are "
                "not followed (their files would be stored twice). Remove the link, or replace "
                "it with a copy of the folder."
            )
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(target, link)
        return Member(relpath, inside, st.st_size)


def _contains(folder: str, path: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # changed again meanwhile
        return "?"


def _bad_link(link: str, real_link: str, exc: OSError) -> Exception:
    if exc.errno == errno.ELOOP:
        return ValidationError(
            f"The symlink {link!r} (to {_readlink(real_link)!r}) is a loop: following it "
            "never ends. Fix or remove it before saving."
        )
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return FileNotFoundError(
            f"The symlink {link!r} (to {_readlink(real_link)!r}) points to nothing; fix or "
            "remove it."
        )
    return exc


def _not_regular(path: str, link: str | None = None) -> ValidationError:
    what = f"The symlink {link!r} points to {path!r}, which" if link else f"{path!r}"
    return ValidationError(
        f"{what} is not a regular file but a FIFO, socket or device, whose bytes may never end "
        "or wait for a writer. Remove it from the folder before saving."
    )


def _changed(path: str, exc: OSError) -> Exception:
    """A part of ``path`` became a link or a file, or went away, since the folder was listed."""
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
        return exc
    return StorageError(
        f"{path!r} changed while the folder was being saved (a part of its path is now a "
        "link or a file, or is gone). Wait until the program changing the folder has "
        "finished, then save it again."
    )


def open_folder(root: str | os.PathLike[str]) -> Folder:
    """List the folder ``root`` and keep it open for reading its members (a context manager).

    Raises FileNotFoundError or NotADirectoryError when ``root`` is missing or not a folder,
    ValidationError for content a folder cannot hold (see the module docstring).
    """
    top = Path(root)
    if not top.is_dir():
        error = NotADirectoryError if top.exists() else FileNotFoundError
        raise error(f"{os.fspath(root)!r} is not a folder.")
    return Folder(top)
