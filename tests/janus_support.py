"""A private Janus WebRTC server for the tests, and WebRTC peers (aiortc) that join its rooms.

:func:`start_janus` writes a configuration of its own to a temporary directory (janus.jcfg,
the HTTP transport, the VideoRoom plugin with ``string_ids``, the ``sampleevh`` event handler
posting to a URL of the test's) and runs ``janus -F <dir>`` on free loopback ports. Its WebRTC
media stays on 127.0.0.1 too: Janus 1.1 never gathers ICE candidates on an interface flagged
loopback, so it runs with :data:`LOOPBACK_SHIM` preloaded (compiled with the system's C
compiler), which shows it the loopback interface as an ordinary one, and
``ice_enforce_list`` keeps it to 127.0.0.1; aiortc gathers on 127.0.0.1 only
(:func:`local_ice`). No STUN or TURN server, no 1:1 NAT mapping. Without the ``janus``
binary (.ci/run's ``ensure_janus`` installs Debian's) the Janus tests skip; without aiortc or
a C compiler the media tests skip; each says so.

:class:`Peer` is what a patient's app does with the credentials Courier granted: a Janus
session, the VideoRoom ``join`` as a publisher with the token, pin and participant id, and an
``RTCPeerConnection`` publishing a synthetic audio track.
"""

from __future__ import annotations

import asyncio
import glob
import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from courier.providers.video.base import Grant

JANUS_MISSING = (
    "the janus binary is not installed (Debian: apt-get install janus; .ci/run's "
    "ensure_janus does it in CI)"
)
EVENTS_USER = "janus"
MEDIA_ADDRESS = "127.0.0.1"

LOOPBACK_SHIM = r"""
/* Preloaded into the tests' Janus: every interface getifaddrs() reports loses IFF_LOOPBACK, so
   Janus (src/ice.c skips loopback interfaces) gathers ICE candidates on 127.0.0.1, which the
   configuration's ice_enforce_list names as the only address to use. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>

int getifaddrs(struct ifaddrs **list) {
    int (*real)(struct ifaddrs **) = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int result = real(list);
    if (result == 0)
        for (struct ifaddrs *entry = *list; entry != NULL; entry = entry->ifa_next)
            entry->ifa_flags &= ~IFF_LOOPBACK;
    return result;
}
"""


@dataclass
class JanusServer:
    url: str
    admin_key: str
    events_secret: str
    directory: Path
    process: subprocess.Popen[bytes]
    no_media: str | None = None  # why WebRTC media cannot run here (None: it can)

    def log(self) -> str:
        path = self.directory / "janus.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _lib_dir() -> str:
    found = sorted(glob.glob("/usr/lib/*/janus")) + sorted(glob.glob("/usr/lib/janus"))
    if not found:
        pytest.skip("janus is installed but its plugin folder (/usr/lib/*/janus) is not")
    return found[0]


def _libs(lib: str, folder: str, keep: str) -> str:
    """The other modules of ``folder``, to disable (only ``keep`` is loaded)."""
    names = [os.path.basename(p) for p in glob.glob(f"{lib}/{folder}/*.so")]
    return ",".join(sorted(n for n in names if n != keep))


def write_config(directory: Path, *, http_port: int, events_url: str, events_secret: str,
                 admin_key: str) -> None:  # fmt: skip
    lib = _lib_dir()
    rtp = _free_port(socket.SOCK_DGRAM)
    (directory / "janus.jcfg").write_text(
        f"""
general: {{
    configs_folder = "{directory}"
    plugins_folder = "{lib}/plugins"
    transports_folder = "{lib}/transports"
    events_folder = "{lib}/events"
    loggers_folder = "{lib}/loggers"
    log_to_stdout = false
    log_to_file = "{directory}/janus.log"
    debug_level = 4
    server_name = "courier-test"
    session_timeout = 60
    protected_folders = ["/etc", "/usr"]
}}
media: {{
    ipv6 = false
    rtp_port_range = "{rtp}-{rtp + 200}"
}}
nat: {{
    ice_enforce_list = "{MEDIA_ADDRESS}"
    ignore_mdns = true
    full_trickle = false
}}
plugins: {{
    disable = "{_libs(lib, "plugins", "libjanus_videoroom.so")}"
}}
transports: {{
    disable = "{_libs(lib, "transports", "libjanus_http.so")}"
}}
loggers: {{
    disable = "{_libs(lib, "loggers", "")}"
}}
events: {{
    broadcast = true
    disable = "{_libs(lib, "events", "libjanus_sampleevh.so")}"
}}
"""
    )
    (directory / "janus.transport.http.jcfg").write_text(
        f"""
general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {http_port}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
    admin_https = false
}}
"""
    )
    (directory / "janus.plugin.videoroom.jcfg").write_text(
        f"""
general: {{
    admin_key = "{admin_key}"
    string_ids = true
    events = true
}}
"""
    )
    (directory / "janus.eventhandler.sampleevh.jcfg").write_text(
        f"""
general: {{
    enabled = true
    events = "plugins"
    grouping = true
    json = "plain"
    backend = "{events_url}"
    backend_user = "{EVENTS_USER}"
    backend_pwd = "{events_secret}"
    max_retransmissions = 5
    retransmissions_backoff = 100
}}
"""
    )


def loopback_shim(directory: Path) -> Path | str:
    """:data:`LOOPBACK_SHIM` compiled into ``directory``; or, without a C compiler, why not."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return (
            "no C compiler (cc) to build the shim that lets Janus use loopback for media "
            "(Debian: apt-get install gcc; .ci/run's ensure_janus does it in CI)"
        )
    source, library = directory / "loopback.c", directory / "loopback.so"
    source.write_text(LOOPBACK_SHIM)
    built = subprocess.run(
        [compiler, "-shared", "-fPIC", "-Wall", "-Werror", "-o", str(library), str(source), "-ldl"],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise RuntimeError(f"the loopback shim did not compile:\n{built.stderr}")
    return library


def start_janus(directory: Path, events_url: str) -> Iterator[JanusServer]:
    """Run a private Janus (a generator for pytest fixtures); skip when it is not installed."""
    binary = shutil.which("janus")
    if binary is None:
        pytest.skip(JANUS_MISSING)
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = JanusServer(
        url=f"http://127.0.0.1:{port}/janus",
        admin_key=secrets.token_hex(8),
        events_secret=secrets.token_hex(16),
        directory=directory,
        process=None,  # type: ignore[arg-type]
    )
    write_config(
        directory,
        http_port=port,
        events_url=events_url,
        events_secret=server.events_secret,
        admin_key=server.admin_key,
    )
    environment = dict(os.environ)
    shim = loopback_shim(directory)
    if isinstance(shim, Path):
        environment["LD_PRELOAD"] = str(shim)
    else:
        server.no_media = shim
    server.process = subprocess.Popen(
        [binary, "-F", str(directory), "-C", str(directory / "janus.jcfg"), "-N"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=directory,
        env=environment,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                info = httpx.get(server.url + "/info", timeout=1, trust_env=False)
                if info.status_code == 200 and "janus.plugin.videoroom" in info.text:
                    break
            except httpx.HTTPError:
                pass
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Janus did not start:\n{server.log()[-3000:]}")
            time.sleep(0.1)
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def local_ice(monkeypatch: pytest.MonkeyPatch, janus: JanusServer) -> None:
    """aiortc's ICE gathers a host candidate on 127.0.0.1 only (it skips loopback otherwise);
    no STUN or TURN server is configured, so no other candidate exists. Skips where Janus
    cannot use loopback for media (no C compiler for its shim) or aiortc is missing."""
    if janus.no_media is not None:
        pytest.skip(janus.no_media)
    pytest.importorskip("aiortc", reason="aiortc is not installed (pip install aiortc)")
    import aioice.ice

    monkeypatch.setattr(
        aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: [MEDIA_ADDRESS]
    )


@dataclass
class Peer:
    """A client app in a Janus video room, with the credentials Courier granted."""

    url: str
    grant: Grant
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(trust_env=False))
    session: int | None = None
    handle: int | None = None
    pc: Any = None
    _keepalive: asyncio.Task[None] | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(
            self.url + path, json={**body, "transaction": uuid.uuid4().hex}, timeout=10
        )
        answer: dict[str, Any] = response.json()
        assert answer.get("janus") != "error", answer
        return answer

    async def _event(self) -> dict[str, Any]:
        while True:
            response = await self.http.get(
                f"{self.url}/{self.session}", params={"maxev": "1"}, timeout=40
            )
            answer: dict[str, Any] = response.json()
            if answer.get("janus") == "event":
                return answer

    async def _message(self, body: dict[str, Any], jsep: dict[str, Any] | None = None
                       ) -> dict[str, Any]:  # fmt: skip
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        await self._post(f"/{self.session}/{self.handle}", message)
        return await self._event()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(20)
            await self._post(f"/{self.session}", {"janus": "keepalive"})

    async def join(self) -> dict[str, Any]:
        """VideoRoom ``join`` as a publisher; the plugin's answer (``joined`` or an error)."""
        self.session = int((await self._post("", {"janus": "create"}))["data"]["id"])
        self._keepalive = asyncio.create_task(self._keep_alive())
        attached = await self._post(
            f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}
        )
        self.handle = int(attached["data"]["id"])
        extra = self.grant.extra
        answer = await self._message(
            {
                "request": "join",
                "ptype": "publisher",
                "room": extra["room"],
                "pin": extra["pin"],
                "id": extra["participant-id"],
                "display": extra["display"],
                "token": self.grant.token,
            }
        )
        data: dict[str, Any] = answer["plugindata"]["data"]
        return data

    async def publish_audio(self) -> dict[str, Any]:
        """Publish a synthetic audio track over a real PeerConnection; the plugin's answer.
        Waits until ICE and DTLS are up (Janus reports ``webrtcup``)."""
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
        from aiortc.mediastreams import AudioStreamTrack

        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(AudioStreamTrack())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"type": "offer", "sdp": self.pc.localDescription.sdp}
        answer = await self._message({"request": "publish", "audio": True}, offer)
        data: dict[str, Any] = answer["plugindata"]["data"]
        if "jsep" in answer:
            sdp = answer["jsep"]["sdp"]
            # Janus offers only host candidates on loopback: media never leaves 127.0.0.1.
            addresses = {
                line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")
            }
            assert addresses == {MEDIA_ADDRESS}, sdp
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=sdp, type=answer["jsep"]["type"])
            )
            for _ in range(300):
                if self.pc.connectionState == "connected":
                    break
                await asyncio.sleep(0.1)
            assert self.pc.connectionState == "connected", self.pc.connectionState
        return data

    async def leave(self) -> None:
        """The app closes: the PeerConnection and the Janus session go."""
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self.pc is not None:
            await self.pc.close()
        if self.session is not None:
            await self._post(f"/{self.session}", {"janus": "destroy"})
            self.session = None
        await self.http.aclose()
