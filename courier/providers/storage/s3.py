"""S3-compatible storage through boto3 (AWS S3, MinIO, Ceph, Cloudflare R2, moto ...).

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``,
profiles, instance roles). Uploads are S3 presigned POSTs whose policy fixes the key and the
size range; downloads are presigned GETs that set the response's content type and disposition.
boto3 is synchronous: every call that may touch the network runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from courier.providers.storage.base import (
    CHUNK_SIZE,
    ObjectInfo,
    PresignedUpload,
    StorageError,
    check_key,
    content_disposition,
)

_MISSING = {"404", "NoSuchKey", "NotFound"}


def make_client(
    *, endpoint_url: str | None, region: str | None, path_style: bool
) -> Any:  # a botocore S3 client (untyped)
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config
    )


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return str(error.get("Code", "")) in _MISSING or status == "404"


class S3Storage:
    name = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _call(self, method: str, **params: Any) -> Any:
        try:
            return await asyncio.to_thread(getattr(self.client, method), **params)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(params.get("Key", "")) from exc
            raise StorageError(f"S3 {method} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {method} failed: {exc}") from exc

    async def presign_upload(
        self, key: str, *, expires_in: timedelta, max_size: int
    ) -> PresignedUpload:
        seconds = int(expires_in.total_seconds())
        expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
        post = await self._call(
            "generate_presigned_post",
            Bucket=self.bucket,
            Key=self._key(key),
            Conditions=[["content-length-range", 1, max_size]],
            ExpiresIn=seconds,
        )
        fields = {str(name): str(value) for name, value in post["fields"].items()}
        return PresignedUpload(
            url=str(post["url"]), fields=fields, expires_at=expires_at, max_size=max_size
        )

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            found = await self._call("head_object", Bucket=self.bucket, Key=self._key(key))
        except FileNotFoundError:
            return None
        return ObjectInfo(key, int(found["ContentLength"]), found.get("ETag"))

    async def read(self, key: str, *, max_bytes: int | None = None) -> bytes:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if max_bytes is not None:
            if max_bytes <= 0:
                return b""
            params["Range"] = f"bytes=0-{max_bytes - 1}"
        try:
            found = await self._call("get_object", **params)
        except StorageError as exc:
            # A range on an empty object is "not satisfiable": the object is simply empty.
            cause = exc.__cause__
            if (
                isinstance(cause, ClientError)
                and cause.response.get("Error", {}).get("Code") == "InvalidRange"
            ):
                return b""
            raise
        body = found["Body"]
        try:
            data: bytes = await asyncio.to_thread(body.read)
        finally:
            body.close()
        return data

    async def stream(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
        found = await self._call("get_object", Bucket=self.bucket, Key=self._key(key))
        body = found["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, chunk_size):
                yield chunk
        finally:
            body.close()

    async def write(self, key: str, data: bytes, *, content_type: str) -> None:
        await self._call(
            "put_object",
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )

    async def delete(self, key: str) -> None:
        try:  # S3 answers 204 for a missing key; some compatible services answer 404
            await self._call("delete_object", Bucket=self.bucket, Key=self._key(key))
        except FileNotFoundError:
            return

    async def presign_download(
        self,
        key: str,
        *,
        expires_in: timedelta,
        content_type: str | None = None,
        filename: str | None = None,
        inline: bool = False,
    ) -> str:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if content_type:
            params["ResponseContentType"] = content_type
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename, inline=inline)
        url = await self._call(
            "generate_presigned_url",
            ClientMethod="get_object",
            Params=params,
            ExpiresIn=int(expires_in.total_seconds()),
        )
        return str(url)
