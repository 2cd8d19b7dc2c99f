"""The footage store: session segments and evidence packages as content-addressed objects (the
name of an object is the SHA-256 of its bytes, the hash the venue's journal sealed), behind one
interface with two backends:

* `PosixStore`: a directory — local disk, CephFS or NFS shared by every worker. Objects live at
  ``objects/ab/cd/<sha256>`` (two levels of 256 folders: no folder grows past a few thousand
  entries in 15 years of a province). A file enters by being written and fsynced under a
  temporary name in the same folder, renamed into place (atomic), and the folder fsynced.
* `S3Store`: any S3 API object store (boto3), keys ``<prefix>objects/ab/cd/<sha256>``; a single
  PUT carries the object's SHA-256 (``ChecksumSHA256``), a multipart upload (above 64 MiB) a
  SHA-256 per part, so the store itself refuses damaged bytes; the size is checked afterwards.

Putting an object that is there already is a no-op (same name, same bytes). Reading takes a
byte range (the pages stream footage with HTTP range requests). `digest` re-reads an object
whole for the scrub. A writer killed mid-put (kill -9, a lost machine) leaves a temporary file or
an unfinished multipart upload, never a half object under its name; `sweep` removes such
leftovers once they are older than any put could still be running. Nothing here decides what may be deleted: retention and legal holds are in
the database (`center.scrub`).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import re
import shutil
import time
import uuid
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from center.config import FootageConfig

BLOCK = 1 << 20
SHA256 = re.compile(r"[0-9a-f]{64}")
SWEEP_AFTER_S = 6 * 3600  # no put of one segment or package runs this long


class StoreFull(OSError):
    """The store has no room (ENOSPC, or the object store refused for quota)."""


class StoreError(OSError):
    """The store cannot be reached or refused an operation."""


def _check(sha256: str) -> str:
    if not SHA256.fullmatch(sha256):
        raise ValueError("an object's name is a lowercase hex SHA-256")
    return sha256


def shard(sha256: str) -> str:
    return f"objects/{sha256[:2]}/{sha256[2:4]}/{_check(sha256)}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


class FootageStore(Protocol):
    name: str

    def put_file(self, sha256: str, source: Path) -> None:
        """Take ``source`` (already checked to hash to ``sha256``) into the store; the source
        is consumed (moved or deleted)."""

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int: ...

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (None: to the end), in blocks."""

    def digest(self, sha256: str) -> str:
        """The SHA-256 of the bytes stored under this name now (the scrub)."""

    def delete(self, sha256: str) -> None: ...

    def sweep(self, older_than_s: float = SWEEP_AFTER_S) -> int:
        """Remove what killed writers left (never an object); the number removed."""


class PosixStore:
    name = "posix"

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "objects").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / shard(sha256)

    def put_file(self, sha256: str, source: Path) -> None:
        final = self.path(sha256)
        if final.exists() and final.stat().st_size == source.stat().st_size and file_sha256(final) == sha256:
            source.unlink(missing_ok=True)  # held whole already (a damaged copy is replaced by this good one)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{sha256}.{uuid.uuid4().hex}.tmp")
        try:
            try:
                os.link(source, tmp)  # the same filesystem (tus staging inside the store): no copy
            except OSError:
                shutil.copyfile(source, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFull(exc.errno, f"the footage store is full: {exc}") from exc
            raise
        source.unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self.path(sha256).stat().st_size

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        with open(self.path(sha256), "rb") as f:
            f.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                block = f.read(BLOCK if left is None else min(BLOCK, left))
                if not block:
                    return
                if left is not None:
                    left -= len(block)
                yield block

    def digest(self, sha256: str) -> str:
        return file_sha256(self.path(sha256))

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def sweep(self, older_than_s: float = SWEEP_AFTER_S) -> int:
        cutoff, removed = time.time() - older_than_s, 0
        for tmp in (self.root / "objects").glob("*/*/.*.tmp"):
            try:
                if tmp.stat().st_mtime <= cutoff:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:  # its writer finished (renamed it) or another sweep took it
                pass
        return removed


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Store:
    name = "s3"

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str | None = None, prefix: str = "",
                 client: Any = None) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        self.client = client or boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60,
                          request_checksum_calculation="when_required", response_checksum_validation="when_required"))
        self.transfer = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20, max_concurrency=4)

    def key(self, sha256: str) -> str:
        return self.prefix + shard(sha256)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("QuotaExceeded", "EntityTooLarge", "InsufficientStorage", "XMinioStorageFull"):
                raise StoreFull(errno.ENOSPC, f"the object store refused {what}: {code}") from exc
            if code in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(errno.ENOENT, f"{what}: no such object") from exc
            raise StoreError(errno.EIO, f"the object store refused {what}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(errno.EIO, f"the object store cannot be reached ({what}): {exc}") from exc

    def put_file(self, sha256: str, source: Path) -> None:
        if self.exists(sha256):
            source.unlink(missing_ok=True)
            return
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        size = source.stat().st_size
        if size < self.transfer.multipart_threshold:
            with open(source, "rb") as f:  # one PUT carrying the object's SHA-256: the store checks it
                self._call("a put", self.client.put_object, Bucket=self.bucket, Key=self.key(sha256), Body=f,
                           ChecksumSHA256=checksum, ContentType="application/octet-stream")
        else:
            self._call("a multipart put", self.client.upload_file, str(source), self.bucket, self.key(sha256),
                       Config=self.transfer, ExtraArgs={"ChecksumAlgorithm": "SHA256"})  # each part checked by the store
        if self.size(sha256) != size:
            raise StoreError(errno.EIO, f"object {sha256} is not the size sent")
        source.unlink(missing_ok=True)

    def exists(self, sha256: str) -> bool:
        try:
            self._call("a lookup", self.client.head_object, Bucket=self.bucket, Key=self.key(sha256))
        except FileNotFoundError:
            return False
        return True

    def size(self, sha256: str) -> int:
        head = self._call("a lookup", self.client.head_object, Bucket=self.bucket, Key=self.key(sha256))
        return int(head["ContentLength"])

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        rng = f"bytes={start}-{'' if end is None else end}"
        answer = self._call("a read", self.client.get_object, Bucket=self.bucket, Key=self.key(sha256), Range=rng)
        body = answer["Body"]
        try:
            yield from body.iter_chunks(BLOCK)
        finally:
            body.close()

    def digest(self, sha256: str) -> str:
        digest = hashlib.sha256()
        for block in self.read(sha256):
            digest.update(block)
        return digest.hexdigest()

    def delete(self, sha256: str) -> None:
        self._call("a delete", self.client.delete_object, Bucket=self.bucket, Key=self.key(sha256))

    def sweep(self, older_than_s: float = SWEEP_AFTER_S) -> int:
        cutoff, removed = datetime.now(timezone.utc) - timedelta(seconds=older_than_s), 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix + "objects/")
        for page in self._call("a listing", list, pages):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] <= cutoff:
                    self._call("an abort", self.client.abort_multipart_upload, Bucket=self.bucket, Key=upload["Key"],
                               UploadId=upload["UploadId"])
                    removed += 1
        return removed


def open_store(config: FootageConfig) -> FootageStore:
    if config.backend == "s3":
        return S3Store(config.bucket, endpoint_url=config.endpoint_url, region=config.region, prefix=config.prefix)
    return PosixStore(config.path)
