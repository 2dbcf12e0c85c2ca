"""The plugin manager: registries, every hook, third-party loading, and failure isolation."""

from __future__ import annotations

import inspect
import json
import os
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import click
import pytest
from click.testing import CliRunner

from kadrio_core import hookspecs
from kadrio_core.cli import cli
from kadrio_core.errors import PluginError, ProviderUnavailable
from kadrio_core.hookspecs import hookimpl
from kadrio_core.models import Message, Moment, SelectionRequest, Transcript, Word
from kadrio_core.pipeline import Pipeline
from kadrio_core.plugins import get_plugin_manager, registry
from kadrio_core.providers import Notifier, Selector, Storage, Transcriber
from kadrio_core.settings import Settings
from kadrio_plugins.renderers.ffmpeg import FfmpegRenderer
from kadrio_plugins.storage.local import LocalStorage

from .conftest import FIXTURES, run_kadrio
from .test_bad_input import assert_one_line_error

ROOT = Path(__file__).parent.parent


@pytest.fixture
def register_plugin() -> Iterator:
    """Register objects as plugins for one test and unregister them after it."""
    pm = get_plugin_manager()
    names: list[str] = []

    def register(name: str, **hooks: object) -> None:
        pm.register(SimpleNamespace(**hooks), name=name)
        names.append(name)

    yield register
    for name in names:
        pm.unregister(name=name)


def script_transcript(duration: float) -> Transcript:
    """Words of the fixture script spread evenly over the audio: a transcriber without a model."""
    text = (FIXTURES / "talk.txt").read_text().split()
    step = duration / len(text)
    words = [Word(text=t, start=i * step, end=(i + 0.8) * step) for i, t in enumerate(text)]
    return Transcript(language="en", duration=duration, words=words, provider="script")


class ScriptTranscriber(Transcriber):
    name = "script"
    calls: ClassVar[list[Path]] = []

    def transcribe(self, audio_path, options, progress=lambda _: None):  # type: ignore[no-untyped-def]
        import av

        with av.open(str(audio_path)) as c:  # the pipeline hands over real 16 kHz mono audio
            stream = c.streams.audio[0]
            assert (stream.rate, stream.channels) == (16_000, 1)
            duration = float(c.duration / 1_000_000)
        ScriptTranscriber.calls.append(audio_path)
        return script_transcript(duration)


class FirstSecondsSelector(Selector):
    name = "first-seconds"

    def select(self, transcript, request, progress=lambda _: None):  # type: ignore[no-untyped-def]
        return [Moment(start=0.0, end=request.min_seconds, score=42, title="The opening")]


class SmallRenderer(FfmpegRenderer):
    name = "small"
    rendered: ClassVar[list[int]] = []

    def render(self, source, plan, progress=lambda _: None):  # type: ignore[no-untyped-def]
        SmallRenderer.rendered.append(plan.index)
        plan = plan.model_copy(
            update={"output": plan.output.model_copy(update={"width": 180, "height": 320})}
        )
        return super().render(source, plan, progress)


def test_builtin_providers_are_registered() -> None:
    assert {"whisper"} <= set(registry("transcriber").names())
    assert {"local"} <= set(registry("selector").names())
    assert {"ffmpeg"} <= set(registry("renderer").names())
    assert {"local"} <= set(registry("storage").names())
    assert {"outbox"} <= set(registry("notifier").names())
    assert {"robokassa"} <= set(registry("payments").names())


def test_plugins_replace_every_media_stage(register_plugin, tmp_path: Path) -> None:
    """register_transcribers, register_selectors and register_renderers, through the pipeline."""
    register_plugin(
        "t", register_transcribers=hookimpl(lambda register: register(ScriptTranscriber))
    )
    register_plugin(
        "s", register_selectors=hookimpl(lambda register: register(FirstSecondsSelector))
    )
    register_plugin("r", register_renderers=hookimpl(lambda register: register(SmallRenderer)))
    ScriptTranscriber.calls.clear()
    SmallRenderer.rendered.clear()
    settings = Settings(
        transcriber="script",
        selector="first-seconds",
        renderer="small",
        min_seconds=8,
        max_seconds=12,
    )
    manifest = Pipeline(settings).clip(FIXTURES / "talk-audio.m4a", tmp_path / "out")
    assert len(ScriptTranscriber.calls) == 1 and SmallRenderer.rendered == [1]
    assert manifest.providers == {
        "transcriber": "script",
        "selector": "first-seconds",
        "renderer": "small",
    }
    assert [c.title for c in manifest.clips] == ["The opening"]
    assert (manifest.clips[0].width, manifest.clips[0].height) == (180, 320)
    import av

    with av.open(str(tmp_path / "out" / "clip-01.mp4")) as c:
        assert (
            c.streams.video[0].codec_context.width,
            c.streams.video[0].codec_context.height,
        ) == (180, 320)


def test_a_storage_plugin_is_created_from_settings(register_plugin, tmp_path: Path) -> None:
    class ScratchStorage(LocalStorage):
        name = "scratch"

    register_plugin("st", register_storages=hookimpl(lambda register: register(ScratchStorage)))
    settings = Settings(providers={"scratch": {"root": str(tmp_path / "objects")}})
    storage = registry("storage").create("scratch", settings)
    assert isinstance(storage, Storage)
    src = tmp_path / "a.txt"
    src.write_text("hello")
    storage.put("jobs/1/a.txt", src)
    assert (tmp_path / "objects" / "jobs" / "1" / "a.txt").read_text() == "hello"


def test_a_notifier_plugin_receives_messages(register_plugin) -> None:
    sent: list[Message] = []

    class ListNotifier(Notifier):
        name = "list"

        def send(self, message: Message) -> str:
            sent.append(message)
            return str(len(sent))

    register_plugin("n", register_notifiers=hookimpl(lambda register: register(ListNotifier)))
    notifier = registry("notifier").create("list", Settings())
    assert notifier.send(Message(to="a@example.org", subject="Hi", text="Body")) == "1"
    assert sent[0].subject == "Hi"


def test_a_payments_plugin_is_found_by_name(register_plugin) -> None:
    from kadrio_core.models import Invoice, PaymentNotice
    from kadrio_core.providers import Payments

    class FreePayments(Payments):
        name = "free"

        def checkout_url(self, invoice: Invoice) -> str:
            return f"https://pay.invalid/{invoice.number}"

        def verify_notification(self, params) -> PaymentNotice:  # type: ignore[no-untyped-def]
            return PaymentNotice(number=int(params["n"]), amount=0, provider=self.name)

    register_plugin("p", register_payments=hookimpl(lambda register: register(FreePayments)))
    payments = registry("payments").create("free", Settings())
    assert payments.acknowledge(payments.verify_notification({"n": "3"})) == "OK"
    assert "robokassa" in registry("payments").names()


def test_a_plugin_adds_a_command(register_plugin) -> None:
    def add(cli: click.Group) -> None:
        @cli.command(name="hello-plugin")
        @click.argument("who")
        def hello(who: str) -> None:
            click.echo(f"hello {who}")

    register_plugin("c", register_commands=hookimpl(add))
    result = CliRunner().invoke(cli, ["hello-plugin", "world"])
    assert result.exit_code == 0 and result.output == "hello world\n"
    assert "hello-plugin" in CliRunner().invoke(cli, ["--help"]).output


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(PluginError, match=r"unknown selector 'nope'; available: (\w+, )*local\b"):
        registry("selector").get("nope")


def test_a_duplicate_name_names_both_plugins(register_plugin) -> None:
    class AnotherLocal(FirstSecondsSelector):
        name = "local"

    register_plugin(
        "impostor", register_selectors=hookimpl(lambda register: register(AnotherLocal))
    )
    with pytest.raises(
        PluginError, match=r"'local' is registered twice.*selectors\.local.*impostor"
    ):
        registry("selector")


def test_registration_order_does_not_choose_the_provider(register_plugin) -> None:
    register_plugin(
        "s", register_selectors=hookimpl(lambda register: register(FirstSecondsSelector))
    )
    settings = Settings(selector="local")
    assert type(registry("selector").create("local", settings)).__name__ == "LocalSelector"


def test_fallback_chain_records_the_failed_provider(register_plugin) -> None:
    class DownSelector(Selector):
        name = "down"

        def select(self, transcript, request, progress=lambda _: None):  # type: ignore[no-untyped-def]
            raise ProviderUnavailable("HTTP 503 from the provider")

    register_plugin("d", register_selectors=hookimpl(lambda register: register(DownSelector)))
    register_plugin(
        "s", register_selectors=hookimpl(lambda register: register(FirstSecondsSelector))
    )
    pipeline = Pipeline(Settings(selector="down,first-seconds"))
    moments = pipeline.select(
        script_transcript(40), SelectionRequest(min_seconds=10, max_seconds=20)
    )
    assert [m.title for m in moments] == ["The opening"]
    assert [(a.provider, a.ok) for a in pipeline.attempts] == [
        ("down", False),
        ("first-seconds", True),
    ]
    assert "503" in (pipeline.attempts[0].error or "")


def test_options_are_validated_by_the_provider() -> None:
    settings = Settings(providers={"local": {"pause_seconds": -1}})
    with pytest.raises(PluginError, match="pause_seconds"):
        registry("selector").create("local", settings)


# -- third-party plugins from entry points, in a real `kadrio` process ----------------------


def make_distribution(site: Path, dist: str, module: str, source: str) -> None:
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[kadrio]\n{module} = {module}\n")


GOOD = """
    from kadrio_core.hookspecs import hookimpl
    from kadrio_core.providers import Selector

    class EverySelector(Selector):
        name = "every"
        description = "test plugin"

        def select(self, transcript, request, progress=lambda _: None):
            return []

    @hookimpl
    def register_selectors(register):
        register(EverySelector)
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "kadrio-every", "kadrio_every", GOOD)
    return site


def plugins_json(site: Path, **env: str) -> tuple[list[dict], str, int]:
    result = run_kadrio("plugins", "--json", env={"PYTHONPATH": str(site), **env})
    rows = json.loads(result.stdout) if result.code == 0 else []
    return rows, result.stderr, result.code


def test_third_party_plugin_is_listed_with_its_package(site: Path) -> None:
    rows, stderr, code = plugins_json(site)
    assert code == 0 and stderr == ""
    every = next(r for r in rows if r["name"] == "every")
    assert (every["kind"], every["package"], every["version"]) == (
        "selector",
        "kadrio-every",
        "1.2.3",
    )
    assert {"name": "whisper", "kind": "transcriber", "package": "kadrio"}.items() <= next(
        r for r in rows if r["name"] == "whisper"
    ).items()


def test_allow_list(site: Path) -> None:
    rows, _, _ = plugins_json(site, KADRIO_LOAD_PLUGINS="")
    assert "every" not in {r["name"] for r in rows}
    rows, _, _ = plugins_json(site, KADRIO_LOAD_PLUGINS="kadrio_every")
    assert "every" in {r["name"] for r in rows}
    rows, _, _ = plugins_json(site, KADRIO_LOAD_PLUGINS="kadrio-every")  # by distribution
    assert "every" in {r["name"] for r in rows}
    rows, _, _ = plugins_json(site, KADRIO_LOAD_PLUGINS="something_else")
    assert "every" not in {r["name"] for r in rows}


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("raise ImportError('needs a missing SDK')\n", "failed to load: ImportError"),
        (
            "from kadrio_core.hookspecs import hookimpl\n"
            "@hookimpl\ndef register_selectorz(register):\n    pass\n",
            "unknown hook",
        ),
        (
            "from kadrio_core.hookspecs import hookimpl\n"
            "@hookimpl\ndef register_selectors(register):\n    raise RuntimeError('boom')\n",
            "failed in register_selectors: RuntimeError: boom",
        ),
    ],
)
def test_a_broken_plugin_only_warns(site: Path, source: str, why: str, tmp_path: Path) -> None:
    make_distribution(site, "kadrio-broken", "kadrio_broken", source)
    rows, stderr, code = plugins_json(site)
    assert code == 0
    assert {"every", "local", "whisper"} <= {r["name"] for r in rows}
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kadrio: warning: plugin 'kadrio_broken'"), (
        stderr
    )
    assert why in lines[0]
    # the main job still runs with a broken plugin installed
    result = run_kadrio(
        "select",
        tmp_path / "missing.json",
        "-o",
        tmp_path / "m.json",
        env={"PYTHONPATH": str(site)},
    )
    assert result.code == 2 and "file not found" in result.stderr


def test_third_party_selector_runs_through_the_cli(site: Path, tmp_path: Path) -> None:
    transcript = tmp_path / "t.json"
    transcript.write_text(script_transcript(60).model_dump_json())
    result = run_kadrio(
        "select",
        transcript,
        "-o",
        tmp_path / "m.json",
        "--selector",
        "every",
        env={"PYTHONPATH": str(site)},
    )
    assert result.code == 0, result.stderr
    assert json.loads((tmp_path / "m.json").read_text()) == []
    hidden = run_kadrio(
        "select",
        transcript,
        "-o",
        tmp_path / "m.json",
        "--selector",
        "every",
        env={"PYTHONPATH": str(site), "KADRIO_LOAD_PLUGINS": ""},
    )
    assert_one_line_error(hidden, "unknown selector 'every'")


# -- every hook is tested and documented ----------------------------------------------------


def hook_names() -> list[str]:
    return [
        n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "kadrio_spec")
    ]


def test_every_hook_has_a_test() -> None:
    source = Path(__file__).read_text()
    body = source.split("# -- every hook is tested and documented")[0]
    assert hook_names()
    for name in hook_names():
        assert re.search(rf"\b{name}=hookimpl\(", body), f"no test registers {name}"


def test_every_hook_is_documented_with_its_signature() -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name in hook_names():
        fn = getattr(hookspecs, name)
        signature = str(inspect.signature(fn)).replace("'", "")
        assert f"def {name}{signature}" in docs, f"{name}{signature} missing from docs/plugins.md"
        assert fn.__doc__ and fn.__doc__.strip()


def test_help_lists_the_commands() -> None:
    result = run_kadrio("--help")
    assert result.code == 0
    for command in ("clip", "transcribe", "select", "render", "plugins"):
        assert command in result.stdout


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from kadrio_core.cli import cli; from click.testing import CliRunner;"
        "CliRunner().invoke(cli, ['--help']);"
        "heavy = {'faster_whisper', 'av', 'numpy', 'ctranslate2', 'rich.progress'};"
        "heavy &= set(sys.modules);"
        "print(sorted(heavy))"
    )
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
