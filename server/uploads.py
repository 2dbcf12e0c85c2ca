"""Reading a multipart upload from ``request.stream()`` into a temporary file, with a byte cap.

Starlette's ``request.form()`` spools whole files and has no cap; here the body goes through
python-multipart's streaming parser chunk by chunk, so memory stays flat whatever the size.
Send the small fields (``consent``, ``options``) before ``file``: a missing consent is then
known before the file arrives, and its bytes are discarded instead of written.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from .errors import ApiError

FIELDS = ("file", "consent", "consent_version", "options")
FIELD_LIMIT = 64 * 1024


@dataclass
class Upload:
    path: Path | None = None
    filename: str = ""
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def remove_stale_uploads(tmp_dir: Path, older_than: float = 6 * 3600) -> int:
    """Remove uploads a crashed server left half-written; return how many."""
    import time

    removed = 0
    for path in tmp_dir.glob("upload-*"):
        with contextlib.suppress(OSError):
            if time.time() - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
    return removed


def too_large(cap: int) -> ApiError:
    return ApiError(413, "too_large", f"the upload is larger than the limit of {cap} bytes")


class _Receiver:
    """python-multipart callbacks: the file part goes to disk, small fields to memory."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.upload = Upload()
        self._headers: dict[str, str] = {}
        self._header_field = b""
        self._header_value = b""
        self._name = ""
        self._value = bytearray()
        self._file: IO[bytes] | None = None
        self._refused = False  # consent was not given: file bytes are dropped, not stored

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = ""
        self._value = bytearray()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._headers[name] = self._header_value.decode("utf-8", "replace")
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get("content-disposition", ""))
        if disposition != b"form-data" or b"name" not in params:
            raise ApiError(400, "bad_request", "each multipart part needs a form-data name")
        self._name = params[b"name"].decode("utf-8", "replace")
        if self._name not in FIELDS:
            raise ApiError(
                400, "bad_request", f"unknown field {self._name!r}; fields: {', '.join(FIELDS)}"
            )
        if self._name == "file":
            if self.upload.path is not None or self._file is not None:
                raise ApiError(400, "bad_request", "send one file per job")
            filename = params.get(b"filename", b"").decode("utf-8", "replace")
            self.upload.filename = Path(filename.replace("\\", "/")).name
            if not self._refused:
                self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in _part_end)
                    dir=self.tmp_dir, prefix="upload-", delete=False
                )
                self.upload.path = Path(self._file.name)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._name == "file":
            self.upload.size += end - start
            if self._file is not None:
                self._file.write(memoryview(data)[start:end])  # no copy of the chunk
            return
        self._value += data[start:end]
        if len(self._value) > FIELD_LIMIT:
            raise ApiError(400, "bad_request", f"field {self._name!r} is too long")

    def _part_end(self) -> None:
        if self._name == "file":
            if self._file is not None:
                self._file.close()
                self._file = None
            return
        value = self._value.decode("utf-8", "replace")
        self.upload.fields[self._name] = value
        if self._name == "consent" and value.strip().lower() != "true":
            self._refused = True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@contextlib.asynccontextmanager
async def receive(request: Request, cap: int, tmp_dir: Path) -> AsyncIterator[Upload]:
    """The parsed upload; its temporary file is removed when the block ends."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "unsupported_media_type", "send the job as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise too_large(cap)
    receiver = _Receiver(tmp_dir)
    parser = MultipartParser(params[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > cap:
                    raise too_large(cap)
                parser.write(chunk)
            parser.finalize()
        except ClientDisconnect:
            raise ApiError(400, "bad_request", "the upload was interrupted") from None
        except ApiError:
            raise
        except Exception as exc:  # python-multipart's parse errors
            raise ApiError(400, "bad_request", f"malformed multipart body: {exc}") from None
        finally:
            receiver.close()
        yield receiver.upload
    finally:
        receiver.upload.discard()
