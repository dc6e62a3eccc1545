"""The ``biolake`` command line: a thin layer over the public Python API.

Only click and biolake's lazy top-level package are imported here, so ``biolake --help``
starts fast; a command loads biolake's database layer when it first uses ``ln``. Errors biolake
raises on purpose become one line on stderr and exit code 1 (see :class:`_Group`); anything else
is a bug and keeps its traceback.

Each process picks its instance as the Python API does: ``--instance`` on the command line, else
``BIOLAKE_INSTANCE``, else the default instance. ``biolake connect`` prints the ``export`` line
that makes a shell (and every program it starts) use an instance.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import click

import biolake as ln
from biolake.errors import BiolakeError


class _Group(click.Group):
    """Turns every ``BiolakeError`` into a clean exit, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BiolakeError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="biolake")
@click.option(
    "--instance",
    "-i",
    metavar="DIR_OR_NAME",
    help="Instance to use (storage folder or name); default: $BIOLAKE_INSTANCE.",
)
@click.pass_context
def cli(ctx: click.Context, instance: str | None) -> None:
    """Findable, versioned, traceable data for biology and ML labs.

    \b
    Example:
      biolake init --storage ./mydata
      eval "$(biolake connect ./mydata)"
      biolake info
    """
    ctx.obj = {"instance": instance}


def _use_instance(ctx: click.Context) -> None:
    """Connect to the instance chosen with ``--instance``; otherwise the API decides."""
    choice = ctx.find_root().obj["instance"]
    if choice is not None:
        ln.setup.connect(choice)


def _export_line(root: Any) -> str:
    return f"export BIOLAKE_INSTANCE={shlex.quote(str(root))}"


@cli.command()
@click.option(
    "--storage",
    required=True,
    metavar="DIR",
    help="Folder for the instance's data (created if missing).",
)
@click.option(
    "--db",
    metavar="URL",
    help="postgresql://user@host:port/dbname; default: SQLite inside the storage folder.",
)
@click.option("--name", help="Name to connect by; default: the folder's name.")
def init(storage: str, db: str | None, name: str | None) -> None:
    """Create an instance (or connect to the one already there).

    \b
    Example:
      biolake init --storage ./mydata
      biolake init --storage /data/lab --db postgresql://me@dbhost:5432/lab --name lab
    """
    instance = ln.setup.init(storage=storage, db=db, name=name)
    click.echo(f"Instance {instance.name!r} at {instance.root} (db: {instance.db.safe_url}).")
    click.echo(f"Use it in this shell and the programs it starts: {_export_line(instance.root)}")


@cli.command()
@click.argument("dir_or_name")
def connect(dir_or_name: str) -> None:
    """Check an instance and print the line that makes a shell use it.

    Each biolake process chooses its instance from BIOLAKE_INSTANCE, so this prints
    `export BIOLAKE_INSTANCE=<storage folder>` on stdout: eval it to switch the shell.

    \b
    Example:
      eval "$(biolake connect mydata)"
      biolake --instance mydata info    # or choose it for one command
    """
    instance = ln.setup.connect(dir_or_name)
    click.echo(_export_line(instance.root))
    click.echo(
        f"Instance {instance.name!r} at {instance.root} is ready. To use it: "
        f'eval "$(biolake connect {shlex.quote(dir_or_name)})"',
        err=True,
    )


def _counts() -> dict[str, int]:
    """Rows per registry (trash excluded), for every registry of the public API."""
    counts = {}
    for name in ln.__all__:
        value = getattr(ln, name)
        if (
            isinstance(value, type)
            and issubclass(value, ln.Registry)
            and value is not ln.Registry
            and hasattr(value, "__table__")
        ):
            counts[name] = value.filter().count()
    return counts


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the information as JSON.")
@click.pass_context
def info(ctx: click.Context, as_json: bool) -> None:
    """Show the current instance: storage, database, user and row counts.

    \b
    Example:
      biolake info
      BIOLAKE_INSTANCE=/data/lab biolake info --json
    """
    _use_instance(ctx)
    instance = ln.settings.instance
    data: dict[str, Any] = {
        "instance": instance.name,
        "storage": str(instance.root),
        "db": instance.db.safe_url,
        "user": ln.settings.user.handle,
        "counts": _counts(),
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key in ("instance", "storage", "db", "user"):
        click.echo(f"{key + ':':<10} {data[key]}")
    click.echo("counts:")
    for name, count in data["counts"].items():
        click.echo(f"  {name:<12} {count}")


@cli.command()
@click.option("--rehash", is_flag=True, help="Hash every stored object again (resumable).")
@click.option("--restart", is_flag=True, help="With --rehash: start over, not where it stopped.")
@click.option("--repair", is_flag=True, help="Fix what is safe to fix.")
@click.option("--yes", is_flag=True, help="With --repair: also delete unreferenced data.")
@click.option("--workers", type=click.IntRange(min=1), help="Threads for --rehash.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def check(
    ctx: click.Context,
    rehash: bool,
    restart: bool,
    repair: bool,
    yes: bool,
    workers: int | None,
    as_json: bool,
) -> None:
    """Reconcile the database and the storage; exit code 1 while problems remain.

    Reports rows whose object is missing, objects no row references, temp files of killed
    saves, objects whose bytes no longer match their hash (--rehash), broken links between
    rows, and keys with no latest version or several. --repair fixes what is safe; deleting
    unreferenced objects or orphaned feature values needs --yes too.

    \b
    Example:
      biolake check
      biolake check --rehash --json > check.json
      biolake check --repair --yes
    """
    _use_instance(ctx)
    report = ln.check(rehash=rehash, repair=repair, yes=yes, resume=not restart, workers=workers)
    if as_json:
        click.echo(report.to_json())
    else:
        click.echo(report.describe(return_str=True), nl=False)
    sys.exit(0 if report.ok else 1)


def main() -> None:
    """Entry point of the ``biolake`` script."""
    cli(prog_name="biolake")
