"""Objects in an S3 bucket (boto3): Selectel, AWS, SeaweedFS, MinIO and other S3-compatible stores.

Settings ``providers.s3``: ``bucket``, ``endpoint_url`` (Selectel:
``https://s3.ru-1.storage.selcloud.ru``), ``region`` (Selectel: ``ru-1``), ``access_key_id`` and
``secret_access_key`` (default: boto3's chain, e.g. ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``), ``prefix`` inside the bucket. Big files go up in parts (multipart
upload). Content is delivered with presigned GET URLs that live ``url_seconds`` at most.

boto3 1.36+ adds CRC checksums to every upload by default, which several S3-compatible stores
reject or mangle; checksums are therefore sent and validated only where the API requires them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from kadrio_core.errors import ProviderError, ProviderUnavailable
from kadrio_core.hookspecs import hookimpl
from kadrio_core.providers import ProviderOptions, Storage
from kadrio_core.remote import configured_secret, first_line

from .local import check_key

MB = 1024 * 1024
AUTH_ERRORS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
}


class S3Options(ProviderOptions):
    bucket: str = Field(min_length=3, max_length=63)
    endpoint_url: str | None = Field(default=None, description="default: AWS")
    region: str | None = Field(default=None, description="e.g. ru-1 for Selectel")
    access_key_id: str | None = Field(default=None, description="default: boto3's credentials")
    secret_access_key: str | None = None
    prefix: str = Field(default="", description="key prefix inside the bucket, e.g. kadrio/")
    addressing_style: Literal["auto", "path", "virtual"] | None = Field(
        default=None, description="default: path with a custom endpoint, else auto"
    )
    multipart_threshold_mb: int = Field(default=16, ge=5, description="upload in parts above")
    multipart_chunk_mb: int = Field(default=16, ge=5)
    max_concurrency: int = Field(default=4, ge=1, le=32)
    url_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600, description="URL lifetime cap")
    timeout: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)


class S3Storage(Storage):
    name = "s3"
    description = "S3 bucket: Selectel, AWS, SeaweedFS (presigned URLs)"
    Options: ClassVar[type[ProviderOptions]] = S3Options
    options: S3Options

    @classmethod
    def credentials_status(cls) -> str | None:
        if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
            return "set"
        return configured_secret(cls.name, "secret_access_key")

    # -- the client ------------------------------------------------------------------------

    def _client(self) -> Any:
        client = getattr(self, "_s3", None)
        if client is None:
            import boto3
            from botocore.config import Config

            o = self.options
            style = o.addressing_style or ("path" if o.endpoint_url else "auto")
            config = Config(
                region_name=o.region,
                signature_version="s3v4",
                s3={"addressing_style": style},
                retries={"max_attempts": o.retries + 1, "mode": "standard"},
                connect_timeout=o.timeout,
                read_timeout=o.timeout,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=o.endpoint_url,
                aws_access_key_id=o.access_key_id,
                aws_secret_access_key=o.secret_access_key,
                config=config,
            )
            self._s3 = client
        return client

    def _key(self, key: str, prefix: bool = False) -> str:
        check_key(key, prefix=prefix)
        return f"{self.options.prefix}{key}"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a boto3 call; turn its failures into Kadrio's errors (404 -> FileNotFoundError)."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = self._translate(what, exc)
            if error is None:
                raise
            raise error from None

    def _translate(self, what: str, exc: BaseException) -> Exception | None:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError):
            return self._translate(what, exc.__context__)
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            detail = f"{code or status}: {first_line(error.get('Message', ''))}".rstrip(": ")
            if code in ("NoSuchKey", "404", "NotFound"):
                return FileNotFoundError(what)
            if code in AUTH_ERRORS or status in (401, 403):
                return ProviderError(f"s3 {what}: credentials refused ({detail})")
            if code == "NoSuchBucket":
                return ProviderError(f"s3: bucket {self.options.bucket!r} does not exist")
            if status >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable"):
                return ProviderUnavailable(f"s3 {what}: {detail}")
            return ProviderError(f"s3 {what}: {detail}")
        if isinstance(exc, NoCredentialsError):
            return ProviderError(
                "s3: no credentials: set providers.s3.access_key_id and secret_access_key "
                "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )
        if isinstance(exc, (BotoCoreError, S3UploadFailedError)):  # network, timeouts
            return ProviderUnavailable(f"s3 {what}: {first_line(exc)}")
        return None

    # -- the Storage interface -------------------------------------------------------------

    def put(self, key: str, path: Path) -> None:
        from boto3.s3.transfer import TransferConfig

        o = self.options
        transfer = TransferConfig(
            multipart_threshold=o.multipart_threshold_mb * MB,
            multipart_chunksize=o.multipart_chunk_mb * MB,
            max_concurrency=o.max_concurrency,
        )
        self._call(
            f"upload of {key}",
            self._client().upload_file,
            str(path),
            o.bucket,
            self._key(key),
            ExtraArgs={"ContentType": content_type(key)},
            Config=transfer,
        )

    def get(self, key: str, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            self._call(
                key, self._client().download_file, self.options.bucket, self._key(key), str(tmp)
            )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest

    def url(self, key: str, expires: int = 3600) -> str:
        full = self._key(key)
        self._call(key, self._client().head_object, Bucket=self.options.bucket, Key=full)
        return self._call(
            f"URL of {key}",
            self._client().generate_presigned_url,
            "get_object",
            Params={"Bucket": self.options.bucket, "Key": full},
            ExpiresIn=max(1, min(int(expires), self.options.url_seconds)),
        )

    def delete(self, key_or_prefix: str) -> int:
        o = self.options
        if not key_or_prefix.endswith("/"):
            full = self._key(key_or_prefix)
            try:
                self._call(key_or_prefix, self._client().head_object, Bucket=o.bucket, Key=full)
            except FileNotFoundError:
                return 0
            self._call(
                f"delete of {key_or_prefix}",
                self._client().delete_object,
                Bucket=o.bucket,
                Key=full,
            )
            return 1
        keys = [self._key(k) for k in self.list(key_or_prefix)]
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            reply = self._call(
                f"delete under {key_or_prefix}",
                self._client().delete_objects,
                Bucket=o.bucket,
                Delete={"Objects": batch, "Quiet": True},
            )
            if reply.get("Errors"):
                first = reply["Errors"][0]
                raise ProviderError(f"s3 delete of {first.get('Key')}: {first.get('Code')}")
        return len(keys)

    def list(self, prefix: str = "") -> Iterator[str]:
        if prefix:
            check_key(prefix, prefix=True)
        full = f"{self.options.prefix}{prefix}"
        paginator = self._client().get_paginator("list_objects_v2")
        pages = self._call(
            f"listing of {prefix or '/'}",
            lambda: list(paginator.paginate(Bucket=self.options.bucket, Prefix=full)),
        )
        skip = len(self.options.prefix)
        keys = [obj["Key"][skip:] for page in pages for obj in page.get("Contents", [])]
        return iter(sorted(keys))


def content_type(key: str) -> str:
    import mimetypes

    return mimetypes.guess_type(key)[0] or "application/octet-stream"


@hookimpl
def register_storages(register):  # type: ignore[no-untyped-def]
    register(S3Storage)
