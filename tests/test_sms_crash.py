"""A worker SIGKILLed in the middle of 500 sends: every text reaches the carrier exactly once.

Texts the dead worker had claimed are reconciled, never blindly resent: a send the carrier
took is found by its delivery id; one it certainly never took (the worker died before the
call) is sent then, for the first time."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from courier.models.delivery import SandboxRecord
from tests.sms_support import Courier, doc, new_org, until

TEXTS = 500


def carrier_messages(database_url: str, sender: str) -> Counter[str]:
    """The sandbox carrier's messages from ``sender``, counted per delivery id."""

    async def read() -> Counter[str]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    select(SandboxRecord.data).where(
                        SandboxRecord.kind == "sms", SandboxRecord.collection == "messages"
                    )
                )
                return Counter(
                    str(data["delivery-id"]) for (data,) in rows if data.get("from") == sender
                )
        finally:
            await engine.dispose()

    return asyncio.run(read())


@pytest.fixture
def courier(database_url: str, data_dir: Path, tmp_path: Path) -> Iterator[Courier]:
    started = Courier(
        database_url,
        data_dir,
        tmp_path,
        {"job_lease_seconds": "3", "delivery_grace_seconds": "20"},
    )
    started.serve()
    yield started
    started.stop()


def test_sigkill_mid_sends_leaves_each_text_sent_once(courier: Courier) -> None:
    database_url = courier.database_url  # the processes' database
    provisioner = courier.worker(concurrency=2)
    with httpx.Client(base_url=courier.base, timeout=60) as http:
        admin = new_org(http)
        headers = {"Authorization": admin["Authorization"]}
        assert (
            http.post(
                "/v1/text-accounts/", json=doc("text-accounts", {}), headers=headers
            ).status_code
            == 201
        )
        number = http.post(
            "/v1/text-account-numbers/",
            json=doc("text-account-numbers", {"area-code": "617", "rate-per-second": 1000}),
            headers=headers,
        ).json()["data"]

        def active() -> str | None:
            got = http.get(f"/v1/text-account-numbers/{number['id']}/", headers=headers).json()
            phone: str | None = got["data"]["attributes"]["phone-number"]
            return phone if got["data"]["attributes"]["status"] == "active" else None

        phone = until(active, "the number")
        provisioner.send_signal(signal.SIGTERM)
        provisioner.wait(timeout=60)

        for index in range(TEXTS):
            sent = http.post(
                "/v1/texts/",
                json=doc("texts", {"target": "+14155552671", "message": f"Reminder {index}"}),
                headers=headers,
            )
            assert sent.status_code == 201, sent.text

    victim = courier.worker(concurrency=8)
    until(lambda: sum(carrier_messages(database_url, phone).values()) >= TEXTS // 5, "sends")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    killed_at = sum(carrier_messages(database_url, phone).values())
    assert killed_at < TEXTS, "the worker finished before it was killed"

    courier.worker(concurrency=8)
    until(
        lambda: sum(carrier_messages(database_url, phone).values()) >= TEXTS,
        "every text to reach the carrier\n" + courier.logs_text(),
        deadline=1500,
    )
    time.sleep(3)  # late duplicates would show up here
    sent = carrier_messages(database_url, phone)
    assert len(sent) == TEXTS
    assert set(sent.values()) == {1}, [k for k, v in sent.items() if v > 1]
