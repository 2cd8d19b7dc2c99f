"""Recordings up with tuspy (the tus 1.0 client), signed and resumable.

tuspy sends its requests through module-level ``requests`` calls with fixed headers; every
request to the center must carry its own RFC 9421 signature (a nonce, a Content-Digest), so the
uploader here routes tuspy's creation, offset and PATCH requests through the agent's signed
session (which also holds the pinned CA). Everything else is tuspy's: the chunk loop, the
checksum header (``sha256``), the URL store and fingerprint interfaces.

* Fingerprint: the segment's sealed SHA-256 (``sha256:<hex>``), known from the journal, so a
  resumed upload finds its URL without rereading the file.
* URL store: the ``tus_uploads`` table of the site's database, written in a durable
  transaction, so a URL survives a kill -9 or a power cut; an upload the center no longer
  knows (404, or 410 once expired) starts afresh.
"""

from __future__ import annotations

import hashlib
from typing import Any

import requests
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.fingerprint.interface import Fingerprint
from tusclient.request import TusRequest
from tusclient.storage.interface import Storage
from tusclient.uploader import Uploader

from appliance.clock import utc_timestamp
from appliance.segments import recordings_dir
from sync.errors import SyncError

CHUNK = 4 << 20  # 4 MiB a PATCH: few round trips, little lost when a link drops mid-chunk
TIMEOUT_S = 60


class SqliteUrlStore(Storage):
    def __init__(self, site: Any) -> None:
        self.site = site

    def get_item(self, key: str) -> str | None:
        row = self.site.store.reader().execute("SELECT url FROM tus_uploads WHERE fingerprint = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_item(self, key: str, url: str | None) -> None:
        if url is None:
            return self.remove_item(key)
        with self.site.store.transaction() as conn:
            conn.execute("""INSERT INTO tus_uploads (fingerprint, url, created) VALUES (?, ?, ?)
                            ON CONFLICT(fingerprint) DO UPDATE SET url = excluded.url""",
                         (key, url, utc_timestamp(self.site.clock.now())))

    def remove_item(self, key: str) -> None:
        with self.site.store.transaction() as conn:
            conn.execute("DELETE FROM tus_uploads WHERE fingerprint = ?", (key,))


class SealedFingerprint(Fingerprint):
    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256

    def get_fingerprint(self, fs: Any) -> str:
        return f"sha256:{self.sha256}"


class _SignedPatch(TusRequest):
    def __init__(self, uploader: "SignedUploader") -> None:
        super().__init__(uploader)
        self.http = uploader.http

    def perform(self) -> None:
        chunk = self.file.read(self._content_length)
        self.add_checksum(chunk)
        try:
            resp = self.http.patch(self._url, data=chunk, headers=self._request_headers, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise TusUploadFailed(exc) from exc
        self.status_code = resp.status_code
        self.response_content = resp.content
        self.response_headers = {k.lower(): v for k, v in resp.headers.items()}


class SignedUploader(Uploader):
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)

    def __init__(self, *args: Any, http: requests.Session, **kwargs: Any) -> None:
        self.http = http  # before tuspy's constructor: it may already ask for the offset
        super().__init__(*args, **kwargs)

    def create_url(self) -> str:
        try:
            resp = self.http.post(self.client.url, headers=self.get_url_creation_headers(), timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise TusCommunicationError(exc) from exc
        location = resp.headers.get("location")
        if resp.status_code != 201 or location is None:
            raise TusCommunicationError(f"upload not created: {resp.status_code} {resp.text[:200]}", resp.status_code, resp.content)
        return requests.compat.urljoin(self.client.url, location)

    def get_offset(self) -> int:
        try:
            resp = self.http.head(self.url, headers=self.get_headers(), timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            raise TusCommunicationError(exc) from exc
        offset = resp.headers.get("upload-offset")
        if offset is None:
            raise TusCommunicationError(f"no offset: {resp.status_code}", resp.status_code, resp.content)
        return int(offset)

    def _do_request(self) -> None:
        self.request = _SignedPatch(self)
        try:
            self.request.perform()
            if not 200 <= self.request.status_code < 300:
                raise TusUploadFailed("", self.request.status_code, self.request.response_content)
        except TusUploadFailed as error:
            self._retry_or_cry(error)


def upload_segment(agent: Any, segment: dict[str, Any]) -> None:
    """Send one sealed segment (resuming where the center has it); raises SyncError when the
    link or the center fails, leaving the URL stored for the next round."""
    path = recordings_dir(agent.site) / segment["path"]
    client = TusClient(f"{agent.base}/media/uploads")
    store = SqliteUrlStore(agent.site)
    fingerprint = SealedFingerprint(segment["sha256"])
    options = dict(file_path=str(path), client=client, chunk_size=CHUNK, store_url=True, url_storage=store,
                   fingerprinter=fingerprint, upload_checksum=True, retries=0, http=agent.http,
                   metadata={"seq": str(segment["seq"]), "sha256": segment["sha256"], "filename": path.name})
    try:
        try:
            uploader = SignedUploader(**options)
        except TusCommunicationError as exc:
            if exc.status_code not in (404, 410):
                raise
            store.remove_item(fingerprint.get_fingerprint(None))  # the center forgot it (expired): afresh
            uploader = SignedUploader(**options)
        uploader.upload()
    except (TusCommunicationError, TusUploadFailed) as exc:
        if getattr(exc, "status_code", None) in (404, 410):  # the center forgot the upload: start over next time
            store.remove_item(fingerprint.get_fingerprint(None))
        code = "unreachable" if getattr(exc, "status_code", None) is None else "media_refused"
        raise SyncError(f"segment {segment['id']}: upload failed: {exc} {getattr(exc, 'response_content', '') or ''}"[:300],
                        code) from exc
    store.remove_item(fingerprint.get_fingerprint(None))
