"""The S3 storage against a real SeaweedFS on 127.0.0.1 (started once per test session)."""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kadrio_core.errors import BadInput, PluginError, ProviderError, ProviderUnavailable
from kadrio_core.plugins import registry
from kadrio_core.settings import Settings

from .fakes.seaweedfs import SeaweedFS, free_ports


def s3(seaweedfs: SeaweedFS, bucket: str, **options: object):  # type: ignore[no-untyped-def]
    settings = Settings(providers={"s3": seaweedfs.options(bucket, **options)})
    return registry("storage").create("s3", settings)


def fetch(url: str) -> tuple[int, bytes]:
    """A plain HTTP GET, as a browser or a phone would fetch a clip."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_put_get_list_url_delete(seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path) -> None:
    storage = s3(seaweedfs, s3_bucket, prefix="kadrio/")
    clip = tmp_path / "clip-01.mp4"
    clip.write_bytes(os.urandom(150_000))
    srt = tmp_path / "clip-01.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nПривет\n")
    storage.put("jobs/a1/clip-01.mp4", clip)
    storage.put("jobs/a1/clip-01.srt", srt)
    storage.put("jobs/b2/clip-01.mp4", clip)

    assert list(storage.list("jobs/a1/")) == ["jobs/a1/clip-01.mp4", "jobs/a1/clip-01.srt"]
    assert list(storage.list()) == [
        "jobs/a1/clip-01.mp4",
        "jobs/a1/clip-01.srt",
        "jobs/b2/clip-01.mp4",
    ]
    # the prefix option is where the objects really are in the bucket
    raw = seaweedfs.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert sorted(o["Key"] for o in raw)[0] == "kadrio/jobs/a1/clip-01.mp4"
    head = seaweedfs.client().head_object(Bucket=s3_bucket, Key="kadrio/jobs/a1/clip-01.mp4")
    assert head["ContentType"] == "video/mp4"

    back = storage.get("jobs/a1/clip-01.mp4", tmp_path / "back" / "clip.mp4")
    assert back.read_bytes() == clip.read_bytes()

    url = storage.url("jobs/a1/clip-01.srt", expires=60)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    assert fetch(url) == (200, srt.read_bytes())
    tampered = url.replace("clip-01.srt", "clip-01.mp4")
    assert fetch(tampered)[0] == 403  # a URL opens one object only

    assert storage.delete("jobs/a1/") == 2
    assert list(storage.list()) == ["jobs/b2/clip-01.mp4"]
    assert fetch(url)[0] == 404
    assert storage.delete("jobs/b2/clip-01.mp4") == 1
    assert storage.delete("jobs/b2/clip-01.mp4") == 0
    assert list(storage.list()) == []
    with pytest.raises(FileNotFoundError):
        storage.get("jobs/b2/clip-01.mp4", tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        storage.url("jobs/b2/clip-01.mp4")


def test_presigned_urls_expire(seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path) -> None:
    storage = s3(seaweedfs, s3_bucket, url_seconds=1)
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 preview")
    storage.put("a.jpg", tmp_path / "a.jpg")
    url = storage.url("a.jpg", expires=3600)
    assert "X-Amz-Expires=1&" in url  # capped by url_seconds
    assert fetch(url)[0] == 200
    time.sleep(2.1)
    assert fetch(url)[0] == 403


def test_a_large_file_goes_up_in_parts(
    seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    big = tmp_path / "talk.mp4"
    with big.open("wb") as f:
        for _ in range(24):
            f.write(os.urandom(1024 * 1024))
    storage = s3(seaweedfs, s3_bucket, multipart_threshold_mb=8, multipart_chunk_mb=8)
    storage.put("uploads/talk.mp4", big)
    head = seaweedfs.client().head_object(Bucket=s3_bucket, Key="uploads/talk.mp4")
    assert head["ContentLength"] == 24 * 1024 * 1024
    assert head["ETag"].strip('"').endswith("-3")  # three parts of 8 MB
    back = storage.get("uploads/talk.mp4", tmp_path / "back.mp4")
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
    url = storage.url("uploads/talk.mp4", expires=30)
    status, body = fetch(url)
    assert status == 200 and len(body) == 24 * 1024 * 1024


def test_delete_of_a_prefix_with_many_objects(
    seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    storage = s3(seaweedfs, s3_bucket)
    small = tmp_path / "s.txt"
    small.write_text("x")
    for i in range(25):
        storage.put(f"clips/job/{i:03d}.txt", small)
    storage.put("clips/jobless.txt", small)
    assert storage.delete("clips/job/") == 25
    assert list(storage.list()) == ["clips/jobless.txt"]


def test_wrong_credentials_are_a_clear_error(
    seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "a").write_text("a")
    storage = s3(seaweedfs, s3_bucket, secret_access_key="not-the-secret")
    with pytest.raises(ProviderError, match="credentials refused") as caught:
        storage.put("a", tmp_path / "a")
    assert not isinstance(caught.value, ProviderUnavailable)


def test_a_missing_bucket_is_a_clear_error(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    storage = s3(seaweedfs, "no-such-bucket-here")
    with pytest.raises(ProviderError, match="no-such-bucket-here"):
        list(storage.list())


def test_an_unreachable_endpoint_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    options = {
        "bucket": "kadrio",
        "endpoint_url": f"http://127.0.0.1:{free_ports(1)[0]}",
        "region": "ru-1",
        "access_key_id": "k",
        "secret_access_key": "s",
        "retries": 0,
        "timeout": 2,
    }
    storage = registry("storage").create("s3", Settings(providers={"s3": options}))
    with pytest.raises(ProviderUnavailable, match="s3 upload of a"):
        storage.put("a", tmp_path / "a")


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a/../../x", "", "a/.hidden", "a/"])
def test_keys_are_checked(seaweedfs: SeaweedFS, s3_bucket: str, key: str, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadInput, match="invalid storage key"):
        s3(seaweedfs, s3_bucket).put(key, tmp_path / "f")


def test_a_bucket_is_required() -> None:
    with pytest.raises(PluginError, match="bucket"):
        registry("storage").create("s3", Settings())


def test_selectel_settings_build_a_client_for_its_endpoint() -> None:
    options = {
        "bucket": "kadrio-media",
        "endpoint_url": "https://s3.ru-1.storage.selcloud.ru",
        "region": "ru-1",
        "access_key_id": "k",
        "secret_access_key": "s",
    }
    storage = registry("storage").create("s3", Settings(providers={"s3": options}))
    client = storage._client()
    assert client.meta.endpoint_url == "https://s3.ru-1.storage.selcloud.ru"
    assert client.meta.region_name == "ru-1"
    assert client.meta.config.request_checksum_calculation == "when_required"
    assert client.meta.config.response_checksum_validation == "when_required"
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "kadrio-media", "Key": "a.mp4"}, ExpiresIn=60
    )
    assert url.startswith("https://s3.ru-1.storage.selcloud.ru/kadrio-media/a.mp4?")
    assert "ru-1%2Fs3%2Faws4_request" in url
