"""The `sam2` command: Typer subcommands taking YOLO-style key=value arguments.

    sam2 predict model=sam2.1_b.pt source=img.jpg points=[[400,370]] labels=[1]
    sam2 info model=sam2.1_t.pt
    sam2 cfg

Errors print one line on stderr and exit 2 (usage) or 1 (runtime); verbose=True shows tracebacks.
"""

import difflib
import logging
import sys
import traceback
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape

from sam2cli import __version__
from sam2cli.errors import SAM2Error, UsageError
from .args import command_options, format_defaults

console = Console(stderr=True, soft_wrap=True)  # logs, progress and summaries: stdout stays clean for pipes
EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="SAM 2 / SAM 2.1 from the command line. Arguments are key=value; 'sam2 cfg' lists them all.")


@app.command(context_settings=EXTRA)
def predict(ctx: typer.Context):
    """Segment images, folders, globs, lists or videos: from points/bboxes/masks, or everything."""
    from sam2cli.engine.options import PredictOptions
    from sam2cli.engine.predict import run_predict
    raise typer.Exit(run_predict(command_options(PredictOptions, ctx.args, ctx.info_name), console))


@app.command(context_settings=EXTRA)
def track(ctx: typer.Context):
    """Track prompted objects through a video (file, frame folder, webcam or stream) with memory."""
    from sam2cli.engine.options import TrackOptions
    from sam2cli.engine.track import run_track
    raise typer.Exit(run_track(command_options(TrackOptions, ctx.args, ctx.info_name), console))


@app.command(context_settings=EXTRA)
def benchmark(ctx: typer.Context):
    """Time models (embed, decode, everything, tracking), optionally against the reference."""
    from sam2cli.engine.benchmark.job import run_benchmark
    from sam2cli.engine.options import BenchmarkOptions
    raise typer.Exit(run_benchmark(command_options(BenchmarkOptions, ctx.args, ctx.info_name), console))


@app.command(context_settings=EXTRA)
def annotate(ctx: typer.Context):
    """Auto-annotate an image dataset: detector boxes -> SAM 2 masks -> YOLO segmentation labels."""
    from sam2cli.engine.annotate.job import run_annotate
    from sam2cli.engine.options import AnnotateOptions
    opts = command_options(AnnotateOptions, ctx.args, ctx.info_name)  # imgsz= is the detector's (640 unless given)
    raise typer.Exit(run_annotate(opts, console))


@app.command(context_settings=EXTRA)
def train(ctx: typer.Context):
    """Fine-tune SAM 2 on your masks (YOLO-seg, COCO or DAVIS data), or train a config from scratch."""
    from sam2cli.train.options import TrainOptions
    from sam2cli.train.trainer import run_train
    opts = command_options(TrainOptions, ctx.args, ctx.info_name)
    raise typer.Exit(run_train(opts, console))  # at the model's own input size unless imgsz=


@app.command(context_settings=EXTRA)
def export(ctx: typer.Context):
    """Export a model to ONNX (format=onnx): four graphs and sam2.yaml, checked against PyTorch."""
    from sam2cli.engine.export.job import run_export
    from sam2cli.engine.options import ExportOptions
    raise typer.Exit(run_export(command_options(ExportOptions, ctx.args, ctx.info_name), console))


@app.command(context_settings=EXTRA)
def val(ctx: typer.Context):
    """Evaluate a model on your data: DAVIS J&F on videos; click/box mIoU or NoC@90 (task=interactive) on images."""
    from sam2cli.engine.val.job import run_val
    from sam2cli.engine.options import ValOptions
    raise typer.Exit(run_val(command_options(ValOptions, ctx.args, ctx.info_name), console))


@app.command(name="app", context_settings=EXTRA)
def app_(ctx: typer.Context):
    """Serve a local web page to annotate a video or images with clicks: track, correct, export."""
    from sam2cli.engine.app import run_app
    from sam2cli.engine.options import AppOptions
    raise typer.Exit(run_app(command_options(AppOptions, ctx.args, ctx.info_name), console))


@app.command(context_settings=EXTRA)
def info(ctx: typer.Context):
    """Describe a model: variant, version, parameters, file size, device."""
    from sam2cli.engine.options import ModelOptions
    from sam2cli.engine.sam import SAM
    net = command_options(ModelOptions, ctx.args, ctx.info_name)
    model = SAM(net.model, device=net.device, half=net.half, imgsz=net.imgsz)
    model.info(verbose=True)


@app.command()
def cfg():
    """Print every argument with its default and a one-line description."""
    sys.stdout.write(format_defaults())


@app.command(name="help")
def help_(ctx: typer.Context, command: Optional[str] = typer.Argument(None, help="A command to describe.")):
    """Show this help, or one command's: sam2 help predict."""
    if command is None:
        typer.echo(ctx.parent.get_help())
        return
    _check_command(command)
    cmd = ctx.parent.command.get_command(ctx.parent, command)
    typer.echo(cmd.get_help(type(ctx)(cmd, info_name=command, parent=ctx.parent)))


@app.callback(invoke_without_command=True)
def _root(version: Optional[bool] = typer.Option(None, "--version", help="Print the version and exit.")):
    if version:
        typer.echo(f"sam2cli {__version__}")
        raise typer.Exit(0)


def _commands() -> List[str]:
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)


def _check_command(name: str) -> None:
    """An unknown subcommand is a usage error with the close matches, like an unknown key."""
    commands = _commands()
    if name in commands:
        return
    close = difflib.get_close_matches(name, commands, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"the commands are: {', '.join(commands)}"
    raise UsageError(f"no command '{name}'; {hint}")


def _usage_error_types() -> tuple:
    """Click's UsageError, and the copy of click that recent Typer versions bundle."""
    import click
    return tuple({click.exceptions.UsageError,
                  *(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")})


def _wants_traceback(argv: List[str]) -> bool:
    return any(a.replace(" ", "").lower() in ("verbose=true", "verbose=1") for a in argv)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    verbose = _wants_traceback(argv)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        stream=sys.stderr)
    try:
        if not argv[0].startswith("-"):
            _check_command(argv[0])
        rc = app(args=argv, prog_name="sam2", standalone_mode=False)
        return rc if isinstance(rc, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except SAM2Error as e:
        if verbose:
            traceback.print_exc()
        console.print(f"[red]error:[/] {escape(str(e))}", highlight=False, markup=True, soft_wrap=True)
        return e.exit_code
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except Exception as e:  # click usage errors and anything unexpected
        if isinstance(e, _usage_error_types()):  # e.g. an option like --foo, or an extra argument
            msg = e.format_message()
            console.print(f"[red]error:[/] {escape(msg[:1].lower() + msg[1:])}; see 'sam2 help'",
                          highlight=False, soft_wrap=True)
            return 2
        if isinstance(e, typer.Abort):
            return 130
        if verbose:
            traceback.print_exc()
        console.print(f"[red]error:[/] {type(e).__name__}: {e} (run with verbose=True for the traceback)",
                      soft_wrap=True)
        return 1


def entry() -> None:
    sys.exit(main())
