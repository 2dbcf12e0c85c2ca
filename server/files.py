"""Delivering stored files to their owner.

Only the Storage interface is used: ``storage.url(key, expires)``. A ``file://`` URL (local
storage) means the bytes are on this machine: the app serves them itself, with HTTP Range
support, behind the route's ownership check. Any other URL (S3) is a short-lived presigned URL:
clients get it directly, and the file route redirects to a fresh one; the app never proxies the
bytes.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from starlette.responses import FileResponse, RedirectResponse, Response

from .errors import not_found
from .service import Service

MEDIA_TYPES = {
    "mp4": "video/mp4",
    "jpg": "image/jpeg",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "json": "application/json",
}


def storage_url(service: Service, key: str) -> str | None:
    """The storage's own URL for ``key``, or None when the object is missing."""
    try:
        return service.storage.url(key, expires=service.settings.service.url_expires)
    except FileNotFoundError:
        return None


def is_local(url: str) -> bool:
    return url.startswith("file:")


def local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def public_url(service: Service, key: str, app_route: str) -> str | None:
    """What a client is given: the presigned URL itself, or the app's route for local files."""
    url = storage_url(service, key)
    if url is None:
        return None
    return app_route if is_local(url) else url


def file_response(service: Service, key: str, download_name: str) -> Response:
    """The file itself (Range requests answered 206) or a redirect to a presigned URL."""
    url = storage_url(service, key)
    if url is None:
        raise not_found("file")
    if not is_local(url):
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    path = local_path(url)
    if not path.is_file():
        raise not_found("file")
    ext = Path(key).suffix.lstrip(".")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(ext, "application/octet-stream"),
        filename=download_name,
        content_disposition_type="inline",
        headers={"Cache-Control": "private, max-age=300"},
    )
