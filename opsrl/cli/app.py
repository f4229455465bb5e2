"""The ``opsrl`` command: wires the commands together and turns user errors into one line.

Commands import their heavy dependencies inside their own bodies, so ``opsrl --help`` is fast.
"""

from __future__ import annotations

import os
import sys

import typer

from opsrl.cli.bench import bench
from opsrl.cli.generate import generate
from opsrl.cli.label import label
from opsrl.cli.list_cmd import list_
from opsrl.cli.lotsizing import lotsizing_app
from opsrl.cli.milp import milp_app
from opsrl.cli.report import report
from opsrl.cli.solve import solve
from opsrl.cli.train import train

app = typer.Typer(
    name="opsrl",
    help="opsrl: solve, benchmark and learn combinatorial optimization and operations planning problems.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("solve")(solve)
app.command("generate")(generate)
app.command("bench", context_settings={"allow_extra_args": True})(bench)
app.command("list")(list_)
app.command("report")(report)
app.command("label")(label)
app.command("train")(train)
app.add_typer(milp_app, name="milp")
app.add_typer(lotsizing_app, name="lotsizing")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI: usage errors exit 2, bad input exits 1, each with one line on stderr."""
    try:  # typer >= 0.22 vendors click; older typer uses click itself
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover
        from click import exceptions as click

    from opsrl.core.errors import OpsrlError

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="opsrl", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        sys.stdout.write(exc.ctx.get_help() + "\n") if exc.ctx else None
        code = 0
    except click.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx else "opsrl"
        sys.stderr.write(f"opsrl: error: {exc.format_message()} (see {cmd} --help)\n")
        code = 2
    except typer.Abort:
        sys.stderr.write("opsrl: interrupted\n")
        code = 130
    except KeyboardInterrupt:
        sys.stderr.write("opsrl: interrupted\n")
        code = 130
    except OpsrlError as exc:
        sys.stderr.write(f"opsrl: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}\n")
        code = exc.exit_code
    except click.ClickException as exc:
        sys.stderr.write(f"opsrl: error: {exc.format_message()}\n")
        code = exc.exit_code
    except Exception as exc:  # a bug, not a user error: one line, traceback on request
        if os.environ.get("OPSRL_DEBUG"):
            raise
        sys.stderr.write(f"opsrl: internal error: {type(exc).__name__}: {exc} (set OPSRL_DEBUG=1 for the traceback)\n")
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
