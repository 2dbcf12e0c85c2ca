"""The clip pipeline: probe, extract audio, transcribe, select, render, write the manifest.

Checkpoints live in the output folder: a ``transcript.json`` made from the same source is reused,
and so is a ``moments.json`` made from the same transcript with the same request, and a clip
whose files exist for the same moment and render settings. A rerun after a crash therefore
neither transcribes nor renders again what was already done.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from . import __version__
from .captions import caption_style
from .errors import BadInput, ProviderError, ProviderUnavailable, first_problem
from .media import extract_audio, fingerprint, probe
from .models import (
    ClipEntry,
    ClipPlan,
    Manifest,
    MediaInfo,
    Moment,
    ProviderAttempt,
    Publication,
    RenderedClip,
    SelectionRequest,
    SourceRef,
    Transcript,
    TranscriptionRequest,
)
from .plugins import registry
from .providers import Progress, Provider, Renderer, Selector, Storage, Transcriber
from .rendering import Timeline
from .settings import Settings
from .words import snap_to_words

T = TypeVar("T")
P = TypeVar("P", bound=Provider)
MOMENTS = TypeAdapter(list[Moment])
CHECKPOINT = ".kadrio-checkpoint.json"
CLIP_FILE = re.compile(r"^clip-(\d{2,})\.(mp4|srt|vtt|jpg)$")
PUBLISHED_JSON = ("transcript.json", "moments.json", "manifest.json")
SECRET_WORDS = ("key", "secret", "password", "token", "database_url", "queue_url")


class Reporter(Protocol):
    """Where the pipeline reports progress: rich bars in the CLI, job rows in the service."""

    def stage(self, name: str, label: str) -> contextlib.AbstractContextManager[Progress]: ...

    def info(self, text: str) -> None: ...


class NullReporter:
    def stage(self, name: str, label: str) -> contextlib.AbstractContextManager[Progress]:
        return contextlib.nullcontext(lambda _: None)

    def info(self, text: str) -> None:
        return None


def clip_stem(out_dir: Path, index: int) -> Path:
    return out_dir / f"clip-{index:02d}"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a crash never leaves a half-written checkpoint."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]


def redact(data: Any) -> Any:
    """Settings as recorded in a manifest: anything that looks like a secret is masked."""
    if isinstance(data, dict):
        return {
            k: "***" if any(w in k.lower() for w in SECRET_WORDS) and v else redact(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def read_transcript(path: Path) -> Transcript:
    try:
        return Transcript.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise BadInput(f"file not found: {path}") from None
    except (ValidationError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} is not a Kadrio transcript: {_first_error(exc)}") from None


def read_moments(path: Path) -> list[Moment]:
    try:
        return MOMENTS.validate_json(path.read_bytes())
    except FileNotFoundError:
        raise BadInput(f"file not found: {path}") from None
    except (ValidationError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path} is not a list of moments: {_first_error(exc)}") from None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return first_problem(exc)
    return str(exc).splitlines()[0]


class Pipeline:
    def __init__(self, settings: Settings, reporter: Reporter | None = None) -> None:
        self.settings = settings
        self.reporter: Reporter = reporter or NullReporter()
        self.attempts: list[ProviderAttempt] = []
        self.used: dict[str, str] = {}
        self.timings: dict[str, float] = {}

    # -- providers ---------------------------------------------------------------------------

    def check_providers(self) -> None:
        """Fail early, before any work, on an unknown provider name or invalid options."""
        for kind, names in (
            ("transcriber", self.settings.transcriber),
            ("selector", self.settings.selector),
            ("renderer", self.settings.renderer),
        ):
            reg = registry(kind)
            for name in names:
                provider = reg.create(name, self.settings)
                provider.check()
                if isinstance(provider, Transcriber):
                    provider.check_language(self.settings.language)
        caption_style(self.settings.caption_style)

    def _chain(self, kind: str, names: list[str], call: Callable[[Any], T]) -> T:
        """Run ``call`` with each provider of a fallback chain until one succeeds."""
        reg = registry(kind)
        failures: list[str] = []
        for name in names:
            provider = reg.create(name, self.settings)
            try:
                result = call(provider)
            except ProviderUnavailable as exc:
                self.attempts.append(
                    ProviderAttempt(stage=kind, provider=name, ok=False, error=str(exc))
                )
                failures.append(f"{name}: {exc}")
                if name != names[-1]:
                    self.reporter.info(f"{kind} {name!r} failed ({exc}); trying the next one")
                continue
            self.attempts.append(ProviderAttempt(stage=kind, provider=name, ok=True))
            self.used[kind] = name
            return result
        raise ProviderError(f"{kind} failed: " + "; ".join(failures))

    @contextlib.contextmanager
    def _timed(self, stage: str, label: str) -> Iterator[Progress]:
        started = time.perf_counter()
        with self.reporter.stage(stage, label) as progress:
            yield progress
        self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - started, 3)

    # -- stages ------------------------------------------------------------------------------

    def transcribe(self, source: Path, media: MediaInfo | None = None) -> Transcript:
        media = media or probe(source)
        if not media.has_audio:
            return Transcript(
                language=self.settings.language or "und",
                duration=media.duration,
                words=[],
                provider="none",
                source=fingerprint(source),
            )
        ref = fingerprint(source)
        with tempfile.TemporaryDirectory(prefix="kadrio-audio-") as tmp:
            with self._timed("extract_audio", "Extracting audio"):
                audio = extract_audio(source, Path(tmp) / "audio.wav")
            request = TranscriptionRequest(language=self.settings.language, duration=media.duration)
            with self._timed("transcribe", "Transcribing") as progress:
                transcript = self._chain(
                    "transcriber",
                    self.settings.transcriber,
                    lambda p: _as(p, Transcriber).transcribe(audio, request, progress),
                )
        return transcript.model_copy(update={"source": ref})

    def select(self, transcript: Transcript, request: SelectionRequest) -> list[Moment]:
        with self._timed("select", "Selecting moments") as progress:
            moments = self._chain(
                "selector",
                self.settings.selector,
                lambda p: _as(p, Selector).select(transcript, request, progress),
            )
        snapped = [snap_to_words(m, transcript.words, transcript.duration) for m in moments]
        picked = [m for m in snapped if m is not None][: request.max_clips]
        if request.order == "time":
            picked.sort(key=lambda m: m.start)
        return picked

    def plan(
        self, index: int, moment: Moment, media: MediaInfo, words: list, out_dir: Path
    ) -> ClipPlan:
        inside = [w for w in words if w.end > moment.start and w.start < moment.end]
        return ClipPlan(
            index=index,
            moment=moment,
            words=inside,
            media=media,
            output=self.settings.output,
            stem=clip_stem(out_dir, index),
            caption_style=self.settings.caption_style,
            layout=self.settings.layout,
        )

    def render(self, source: Path, plan: ClipPlan) -> RenderedClip:
        label = f"Rendering clip {plan.index:02d}"
        with self._timed("render", label) as progress:
            return self._chain(
                "renderer",
                self.settings.renderer,
                lambda p: _as(p, Renderer).render(source, plan, progress),
            )

    # -- the whole job -----------------------------------------------------------------------

    def clip(
        self, source: Path, out_dir: Path, request: SelectionRequest | None = None
    ) -> Manifest:
        request = request or self.settings.selection_request()
        self.check_providers()
        started = time.perf_counter()
        media = probe(source)
        self.timings["probe"] = round(time.perf_counter() - started, 3)
        if media.duration < request.min_seconds:
            raise BadInput(
                f"{source.name} is {media.duration:.1f} s long, shorter than the minimum clip "
                f"length of {request.min_seconds:g} s (set --min-seconds lower)"
            )
        self.check_storage()
        created = prepare_output(out_dir)
        try:
            manifest = self._clip(source, out_dir, request, media)
            return self.publish(out_dir, manifest)
        except BaseException:
            if created and not any(out_dir.iterdir()):
                out_dir.rmdir()
            raise

    def _clip(
        self, source: Path, out_dir: Path, request: SelectionRequest, media: MediaInfo
    ) -> Manifest:
        ref = fingerprint(source)
        state = _load_state(out_dir / CHECKPOINT, ref)
        transcript_path = out_dir / "transcript.json"
        transcript = _reusable_transcript(transcript_path, ref, self.settings.language)
        if transcript is not None:
            self.reporter.info("Reusing transcript.json from an earlier run of the same source")
            self.used["transcriber"] = transcript.provider
        else:
            transcript = self.transcribe(source, media)
            write_json(transcript_path, transcript.model_dump(mode="json"))
            state = {"source": ref.fingerprint}
        if not transcript.words:
            _remove_stale_clips(out_dir, keep=0)
            (out_dir / "moments.json").unlink(missing_ok=True)
            write_json(out_dir / CHECKPOINT, state)
            message = f"no speech found in {source.name}; no clips made"
            return self._manifest(out_dir, new_manifest(ref, media, [], message))

        moments_path = out_dir / "moments.json"
        key = _digest(
            [
                transcript.model_dump(mode="json"),
                self.settings.selector,
                self.settings.providers,
                request.model_dump(mode="json"),
            ]
        )
        if state.get("moments") == key and moments_path.is_file():
            moments = read_moments(moments_path)
            self.reporter.info("Reusing moments.json from an earlier run")
            self.used.setdefault("selector", state.get("selector", "unknown"))
        else:
            moments = self.select(transcript, request)
            write_json(moments_path, MOMENTS.dump_python(moments, mode="json"))
            state.update(moments=key, selector=self.used.get("selector"), clips={})
            write_json(out_dir / CHECKPOINT, state)

        message = None
        if not moments:
            message = (
                f"no moment of {request.min_seconds:g}-{request.max_seconds:g} s on sentence "
                "boundaries found; no clips made"
            )
        return self.render_moments(source, media, transcript, moments, out_dir, state, message)

    def check_storage(self) -> None:
        """A wrong storage option fails now, not after the renders."""
        if self.settings.storage != "local":
            registry("storage").create(self.settings.storage, self.settings)

    def publish(self, out_dir: Path, manifest: Manifest) -> Manifest:
        """Upload the folder's outputs to the configured storage under ``clips/<fingerprint>/``.

        With the ``local`` storage the folder itself is the output: nothing is uploaded.
        manifest.json, which records the prefix and the keys, goes last; objects left under the
        prefix by an earlier run with more clips are deleted. A storage failure is a clear error
        (the files stay in the folder) and is recorded in the local manifest.
        """
        name = self.settings.storage
        if name == "local":
            return manifest
        storage = _as(registry("storage").create(name, self.settings), Storage)
        prefix = f"clips/{manifest.source.fingerprint}/"
        files = sorted(
            p
            for p in out_dir.iterdir()
            if p.is_file() and (CLIP_FILE.match(p.name) or p.name in PUBLISHED_JSON)
        )
        files = [p for p in files if p.name != "manifest.json"] + [out_dir / "manifest.json"]
        published = Publication(storage=name, prefix=prefix, keys=[prefix + p.name for p in files])
        try:
            with self._timed("publish", f"Uploading to {name}") as progress:
                for done, path in enumerate(files[:-1], 1):
                    storage.put(prefix + path.name, path)
                    progress(done / len(files))
                for key in set(storage.list(prefix)) - set(published.keys):
                    storage.delete(key)
            self.attempts.append(ProviderAttempt(stage="storage", provider=name, ok=True))
            self.used["storage"] = name
            manifest = self._manifest(out_dir, manifest, published)
            storage.put(prefix + "manifest.json", out_dir / "manifest.json")
        except ProviderError as exc:
            if self.used.pop("storage", None):  # the manifest upload itself failed
                self.attempts.pop()
            self.attempts.append(
                ProviderAttempt(stage="storage", provider=name, ok=False, error=str(exc))
            )
            self._manifest(out_dir, manifest, None)
            raise ProviderError(f"storage failed: {exc}; the files are in {out_dir}") from None
        return manifest

    def render_moments(
        self,
        source: Path,
        media: MediaInfo,
        transcript: Transcript,
        moments: list[Moment],
        out_dir: Path,
        state: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> Manifest:
        """Render the moments and write the folder's manifest."""
        rendered = self.render_all(source, media, transcript, moments, out_dir, state)
        entries = [clip_entry(c, m) for c, m in zip(rendered, moments, strict=True)]
        return self._manifest(out_dir, new_manifest(fingerprint(source), media, entries, message))

    def _manifest(
        self,
        out_dir: Path,
        manifest: Manifest,
        published: Publication | None = None,
    ) -> Manifest:
        """Write the folder's manifest with the providers, attempts and timings so far."""
        manifest = manifest.model_copy(
            update={
                "settings": redact(self.settings.model_dump(mode="json")),
                "providers": dict(self.used),
                "attempts": list(self.attempts),
                "timings": dict(self.timings),
                "published": published,
            }
        )
        write_json(out_dir / "manifest.json", manifest.model_dump(mode="json"))
        return manifest

    def render_all(
        self,
        source: Path,
        media: MediaInfo,
        transcript: Transcript,
        moments: list[Moment],
        out_dir: Path,
        state: dict[str, Any] | None = None,
    ) -> list[RenderedClip]:
        """Render every moment; reuse a clip already rendered for the same plan."""
        state = state if state is not None else {}
        done: dict[str, Any] = state.setdefault("clips", {})
        _remove_stale_clips(out_dir, keep=len(moments))
        out: list[RenderedClip] = []
        for index, moment in enumerate(moments, 1):
            plan = self.plan(index, moment, media, transcript.words, out_dir)
            # the key leaves out the folder: a moved output folder is still reusable
            key = _digest([plan.model_dump(mode="json", exclude={"stem"}), self.settings.renderer])
            previous = done.get(str(index))
            if previous and previous.get("key") == key and _files_exist(out_dir, previous["clip"]):
                clip = _in_folder(RenderedClip.model_validate(previous["clip"]), out_dir)
                self.used.setdefault("renderer", clip.renderer)
            else:
                clip = self.render(source, plan)
                relative = _in_folder(clip, Path())
                done[str(index)] = {"key": key, "clip": relative.model_dump(mode="json")}
                if "source" in state:
                    write_json(out_dir / CHECKPOINT, state)
            out.append(clip)
        return out


def _as(provider: Provider, kind: type[P]) -> P:
    if not isinstance(provider, kind):
        raise ProviderError(f"{provider!r} is not a {kind.__name__}")
    return provider


def new_manifest(
    source: SourceRef, media: MediaInfo, clips: list[ClipEntry], message: str | None
) -> Manifest:
    """A manifest before the run's settings, providers and timings are filled in."""
    return Manifest(
        kadrio_version=__version__,
        source=source,
        media=media,
        settings={},
        providers={},
        clips=clips,
        message=message,
    )


def clip_entry(clip: RenderedClip, moment: Moment) -> ClipEntry:
    files = {"mp4": clip.mp4, "srt": clip.srt, "vtt": clip.vtt, "jpg": clip.jpg}
    return ClipEntry(
        index=clip.index,
        files={k: p.name for k, p in files.items()},
        start=clip.start,
        end=clip.end,
        duration=round(Timeline.of(moment).duration, 3),
        score=moment.score,
        title=moment.title,
        size=clip.mp4.stat().st_size,
        width=clip.width,
        height=clip.height,
        plan=clip.plan,
    )


def prepare_output(out_dir: Path) -> bool:
    """Make sure the output folder can be written; return whether it was created here."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput(f"output path exists and is not a folder: {out_dir}")
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".kadrio-write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise BadInput(f"cannot write to output folder {out_dir}: {reason}") from None
    return created


def _load_state(path: Path, ref: SourceRef) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {"source": ref.fingerprint}
    if not isinstance(state, dict) or state.get("source") != ref.fingerprint:
        return {"source": ref.fingerprint}
    return state


def _reusable_transcript(path: Path, ref: SourceRef, language: str | None) -> Transcript | None:
    if not path.is_file():
        return None
    try:
        transcript = Transcript.model_validate_json(path.read_bytes())
    except (ValidationError, UnicodeDecodeError):
        return None
    if transcript.source is None or transcript.source.fingerprint != ref.fingerprint:
        return None
    if language and transcript.language != language:
        return None
    return transcript


def _files_exist(out_dir: Path, clip: dict[str, Any]) -> bool:
    return all((out_dir / Path(clip[k]).name).is_file() for k in ("mp4", "srt", "vtt", "jpg"))


def _in_folder(clip: RenderedClip, folder: Path) -> RenderedClip:
    return clip.model_copy(
        update={k: folder / getattr(clip, k).name for k in ("mp4", "srt", "vtt", "jpg")}
    )


def _remove_stale_clips(out_dir: Path, keep: int) -> None:
    """Remove clip files of an earlier run that made more clips than this one."""
    for path in out_dir.iterdir():
        match = CLIP_FILE.match(path.name)
        if match and int(match.group(1)) > keep:
            path.unlink()
