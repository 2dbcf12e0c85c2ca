"""The ``kadrio`` command line; heavy modules are imported inside commands so --help is fast."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from .providers import Progress
    from .settings import Settings

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _fail(message: str, code: int) -> None:
    click.echo(f"kadrio: error: {message}", err=True)
    sys.exit(code)


class KadrioGroup(click.Group):
    """Maps Kadrio's errors to one line on stderr and an exit code; loads plugin commands."""

    def _load_plugin_commands(self) -> None:
        from .plugins import get_plugin_manager

        # re-run each time: add_command replaces by name, and plugins may come and go in tests
        get_plugin_manager().hook.register_commands(cli=self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from .errors import BadInput, KadrioError

        try:
            return super().invoke(ctx)
        except BadInput as exc:
            _fail(str(exc), EXIT_BAD_INPUT)
        except KadrioError as exc:
            _fail(str(exc), EXIT_FAILED)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("KADRIO_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (KADRIO_DEBUG=1 for details)", 1)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    click.echo(f"kadrio: warning: {message}", err=True)


@click.group(cls=KadrioGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kadrio")
def cli() -> None:
    """Kadrio turns long talk videos into short vertical clips with captions.

    Start with: kadrio clip talk.mp4 -o clips/
    """


class RichReporter:
    """Progress bars on stderr, one per stage."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet

    @contextlib.contextmanager
    def stage(self, name: str, label: str) -> Iterator[Progress]:
        if self.quiet:
            yield lambda _: None
            return
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn

        columns = (
            "[progress.description]{task.description}",
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(label, total=1.0)
            yield lambda fraction: bar.update(task, completed=max(0.0, min(1.0, fraction)))
            bar.update(task, completed=1.0)

    def info(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, markup=False, highlight=False)


def _pipeline(settings: Settings, quiet: bool):  # type: ignore[no-untyped-def]
    from rich.console import Console

    from .pipeline import Pipeline

    return Pipeline(settings, RichReporter(Console(stderr=True), quiet=quiet))


def _settings(**overrides: Any) -> Settings:
    from .settings import load_settings

    aspect = overrides.pop("aspect", None)
    if aspect:
        overrides["output"] = {"aspect": aspect}
    return load_settings(**overrides)


def selection_options(f):  # type: ignore[no-untyped-def]
    for option in reversed(
        [
            click.option("--max-clips", type=click.IntRange(1, 100), help="At most N clips."),
            click.option("--min-seconds", type=click.FloatRange(min=1), help="Shortest clip."),
            click.option("--max-seconds", type=click.FloatRange(min=1), help="Longest clip."),
            click.option("--prompt", help="Topic keywords or a sentence to bias the choice."),
            click.option(
                "--order",
                type=click.Choice(["score", "time"]),
                help="Number clips best first (default) or in timeline order.",
            ),
        ]
    ):
        f = option(f)
    return f


def output_option(text: str, dest: str = "output"):  # type: ignore[no-untyped-def]
    return click.option(
        "-o", "--output", dest, type=click.Path(path_type=Path), required=True, help=text
    )


quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
language_option = click.option("--language", help="Spoken language, e.g. en or ru.")


@cli.command()
@click.argument("video", type=click.Path(path_type=Path))
@output_option("Folder for the clips (created if missing).", "out_dir")
@selection_options
@language_option
@click.option("--transcriber", help="Transcriber name, or a fallback chain a,b.")
@click.option("--selector", help="Selector name, or a fallback chain a,b.")
@click.option("--renderer", help="Renderer name.")
@click.option("--caption-style", help="Caption preset (bold, karaoke, minimal).")
@click.option("--layout", type=click.Choice(["auto", "track", "fit"]), help="Vertical framing.")
@click.option("--aspect", type=click.Choice(["9:16", "1:1", "4:5", "16:9"]), help="Output shape.")
@quiet_option
def clip(video: Path, out_dir: Path, quiet: bool, prompt: str | None, **overrides: Any) -> None:
    """Turn VIDEO into short vertical clips in the output folder."""
    settings = _settings(**overrides)
    request = settings.selection_request(prompt=prompt)
    manifest = _pipeline(settings, quiet).clip(video, out_dir, request)
    if manifest.message:
        click.echo(f"kadrio: {manifest.message}", err=True)
    for entry in manifest.clips:
        click.echo(
            f"{out_dir / entry.files['mp4']}  {entry.duration:5.1f} s  "
            f"score {entry.score:3.0f}  {entry.title}"
        )
    if manifest.clips:
        click.echo(
            f"{len(manifest.clips)} clip(s), manifest: {out_dir / 'manifest.json'}", err=True
        )
    if manifest.published:
        where = f"{manifest.published.storage}:{manifest.published.prefix}"
        click.echo(f"uploaded {len(manifest.published.keys)} file(s) to {where}", err=True)


@cli.command()
@click.argument("video", type=click.Path(path_type=Path))
@output_option("Where to write transcript.json.")
@language_option
@click.option("--transcriber", help="Transcriber name, or a fallback chain a,b.")
@quiet_option
def transcribe(video: Path, output: Path, quiet: bool, **overrides: Any) -> None:
    """Transcribe VIDEO into a transcript.json with word timings."""
    from .media import probe
    from .pipeline import write_json

    settings = _settings(**overrides)
    pipeline = _pipeline(settings, quiet)
    pipeline.check_providers()
    media = probe(video)
    _check_writable_file(output)
    transcript = pipeline.transcribe(video, media)
    write_json(output, transcript.model_dump(mode="json"))
    if not transcript.words:
        click.echo(f"kadrio: no speech found in {video.name}", err=True)
    click.echo(f"{len(transcript.words)} words, language {transcript.language} -> {output}")


@cli.command()
@click.argument("transcript_file", type=click.Path(path_type=Path))
@output_option("Where to write moments.json.")
@selection_options
@click.option("--selector", help="Selector name, or a fallback chain a,b.")
@quiet_option
def select(
    transcript_file: Path, output: Path, quiet: bool, prompt: str | None, **overrides: Any
) -> None:
    """Pick moments from a transcript.json into a moments.json you can edit."""
    from .pipeline import MOMENTS, read_transcript, write_json

    settings = _settings(**overrides)
    pipeline = _pipeline(settings, quiet)
    pipeline.check_providers()
    transcript = read_transcript(transcript_file)
    _check_writable_file(output)
    moments = pipeline.select(transcript, settings.selection_request(prompt=prompt))
    write_json(output, MOMENTS.dump_python(moments, mode="json"))
    click.echo(f"{len(moments)} moment(s) -> {output}")


@cli.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.argument("moments_file", type=click.Path(path_type=Path))
@output_option("Folder for the clips.", "out_dir")
@click.option(
    "--transcript",
    "transcript_file",
    type=click.Path(path_type=Path),
    help="Transcript for the captions (default: transcript.json beside the moments).",
)
@click.option("--renderer", help="Renderer name.")
@click.option("--caption-style", help="Caption preset (bold, karaoke, minimal).")
@click.option("--layout", type=click.Choice(["auto", "track", "fit"]), help="Vertical framing.")
@click.option("--aspect", type=click.Choice(["9:16", "1:1", "4:5", "16:9"]), help="Output shape.")
@quiet_option
def render(
    video: Path,
    moments_file: Path,
    out_dir: Path,
    transcript_file: Path | None,
    quiet: bool,
    **overrides: Any,
) -> None:
    """Render the moments of MOMENTS_FILE from VIDEO again, without transcribing."""
    from .errors import BadInput
    from .media import probe
    from .pipeline import prepare_output, read_moments, read_transcript
    from .words import snap_to_words

    settings = _settings(**overrides)
    pipeline = _pipeline(settings, quiet)
    pipeline.check_providers()
    pipeline.check_storage()
    media = probe(video)
    moments = read_moments(moments_file)
    transcript_file = transcript_file or moments_file.with_name("transcript.json")
    if not transcript_file.is_file():
        raise BadInput(f"no transcript for the captions at {transcript_file}; pass --transcript")
    transcript = read_transcript(transcript_file)
    for m in moments:
        if m.start >= media.duration:
            raise BadInput(
                f"moment {m.start:.1f}-{m.end:.1f} s starts after the end of {video.name} "
                f"({media.duration:.1f} s)"
            )
    snapped = [snap_to_words(m, transcript.words, media.duration) for m in moments]
    moments = [m for m in snapped if m is not None]
    prepare_output(out_dir)
    manifest = pipeline.render_moments(video, media, transcript, moments, out_dir)
    manifest = pipeline.publish(out_dir, manifest)
    for entry in manifest.clips:
        click.echo(f"{out_dir / entry.files['mp4']}  {entry.duration:5.1f} s  {entry.title}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List the installed providers: name, kind, version, package."""
    import json

    rows = plugin_rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "kind", "version", "package", "credentials", "description")
    for r in rows:
        table.add_row(
            r["name"],
            r["kind"],
            r["version"],
            r["package"],
            r["credentials"] or "-",
            r["description"],
        )
    Console().print(table)


def plugin_rows() -> list[dict[str, Any]]:
    from .plugins import HOOK_FOR_KIND, distribution_of, registry

    rows = []
    for kind in HOOK_FOR_KIND:
        reg = registry(kind)
        for name in reg.names():
            cls = reg.providers[name]
            package, version = distribution_of(reg.plugins[name], cls.__module__)
            rows.append(
                {
                    "name": name,
                    "kind": kind,
                    "version": version,
                    "package": package,
                    "plugin": reg.plugins[name],
                    "credentials": cls.credentials_status(),
                    "description": cls.description,
                }
            )
    return rows


@cli.command("eval-selector")
@click.argument("name")
@click.option(
    "--dataset",
    type=click.Path(path_type=Path),
    help="Labelled sets: a dataset root with parts, one part, or one set (default: datasets/).",
)
@click.option("--k", type=click.IntRange(1, 100), default=5, show_default=True, help="Clips/set.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), help="JSON out ('-': stdout).")
def eval_selector(name: str, dataset: Path | None, k: int, json_out: Path | None) -> None:
    """Measure selector NAME on a labelled dataset: precision@k, recall, boundary errors."""
    from rich.console import Console

    from . import evaluation
    from .pipeline import write_json

    if dataset is None and not evaluation.DEFAULT_DATASET.is_dir():
        raise click.UsageError("no bundled dataset in this installation; pass --dataset DIR")
    report = evaluation.evaluate(name, dataset or evaluation.DEFAULT_DATASET, k, _settings())
    if json_out is not None and str(json_out) == "-":
        click.echo(report.model_dump_json(indent=2))
        return
    if json_out is not None:
        _check_writable_file(json_out)
        write_json(json_out, report.model_dump(mode="json"))
    evaluation.print_report(report, Console())


def _check_writable_file(path: Path) -> None:
    from .errors import BadInput

    if path.is_dir():
        raise BadInput(f"output is a folder, not a file: {path}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise BadInput(f"cannot write to {parent}")


# -- the hosted service (kadrio_server, from the `server` extra) ------------------------------


def _server_commands():  # type: ignore[no-untyped-def]
    from .errors import BadInput

    try:
        from kadrio_server import commands
    except ModuleNotFoundError as exc:
        raise BadInput(
            f"the service needs the server extra ({exc.name} is missing): "
            "pip install 'kadrio[server]'"
        ) from None
    return commands


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--with-worker", is_flag=True, help="Also run a queue worker in this process.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, with_worker: bool, threads: int) -> None:
    """Run the web service (API); --with-worker for a one-machine setup."""
    _server_commands().serve(host, port, with_worker, threads)


@cli.command()
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64))
def worker(threads: int) -> None:
    """Run a queue worker: transcribes, selects and renders jobs."""
    _server_commands().worker(threads)


@cli.group()
def db() -> None:
    """The service's database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations not applied yet (safe to run again)."""
    _server_commands().db_upgrade()


@cli.group()
def users() -> None:
    """Accounts of the service."""


@users.command("create")
@click.argument("email")
@click.option("--plan", default="free", show_default=True)
@click.option("--language", default="en", show_default=True, help="Emails in en or ru.")
def users_create(email: str, plan: str, language: str) -> None:
    """Create the account EMAIL."""
    _server_commands().users_create(email, plan, language)


@users.command("delete")
@click.argument("email")
def users_delete(email: str) -> None:
    """Close the account EMAIL now (sign-in and tokens stop); its data is erased by the next
    purge, within 30 days. A confirmation email is sent."""
    _server_commands()
    from kadrio_server import admin

    admin.users_delete(email)


@cli.command()
@click.option("--at", metavar="ISO_TIME", help="Act as if it were this time (UTC if no zone).")
@click.option("--dry-run", is_flag=True, help="Only report what would be deleted or moved.")
def purge(at: str | None, dry_run: bool) -> None:
    """Apply retention: delete expired jobs, end paid periods, purge 30-day-old technical logs,
    erase closed accounts, send pending billing emails (the worker runs this hourly)."""
    _server_commands()
    from kadrio_server import admin

    admin.purge(at, dry_run)


@cli.group()
def policy() -> None:
    """The privacy policy and consents."""


@policy.command("notify")
@click.option("--change", required=True, help="What changed (new third parties, new purposes).")
@click.option("--change-ru", help="The same in Russian, for users who read Russian.")
def policy_notify(change: str, change_ru: str | None) -> None:
    """Email every user about a material change of the privacy policy (once per change)."""
    _server_commands()
    from kadrio_server import admin

    admin.policy_notify(change, change_ru)


@cli.group()
def tokens() -> None:
    """API tokens (Authorization: Bearer ...)."""


@tokens.command("create")
@click.argument("email")
def tokens_create(email: str) -> None:
    """Create an API token for EMAIL; the token is the last line printed."""
    _server_commands().tokens_create(email)


@tokens.command("revoke")
@click.argument("token_or_id")
def tokens_revoke(token_or_id: str) -> None:
    """Revoke a token, given the token itself or its id."""
    _server_commands().tokens_revoke(token_or_id)


def main() -> None:
    warnings.showwarning = _one_line_warning
    cli(prog_name="kadrio")


if __name__ == "__main__":
    main()
