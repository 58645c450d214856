"""Tunnels to RDS endpoints that are not reachable directly (params `rds[].tunnel_command`).

In production a drill's restored instance gets a new endpoint that no standing tunnel
points at. When params give a tunnel command, for example

    aws ssm start-session --target i-0bastion --document-name AWS-StartPortForwardingSessionToRemoteHost
        --parameters host={host},portNumber={port},localPortNumber={local_port}

opsbook runs it with the endpoint and a free local port filled in, waits until the
local port accepts connections, and connects there. Tunnels are shared per endpoint and
closed when the process exits (or by `close_all()`).
"""

from __future__ import annotations

import atexit
import contextlib
import shlex
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from opsbook.errors import OpsbookError
from opsbook.net import free_port

_OPEN: dict[tuple[str, int], Tunnel] = {}
_LOCK = threading.Lock()


@dataclass
class Tunnel:
    host: str
    port: int
    local_port: int
    process: subprocess.Popen

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def open_tunnel(command: str, host: str, port: int, timeout: float = 30) -> Tunnel:
    """The tunnel to host:port (reused if open), ready to accept connections on 127.0.0.1."""
    with _LOCK:
        tunnel = _OPEN.get((host, port))
        if tunnel is not None and tunnel.process.poll() is None:
            return tunnel
        local_port = free_port()
        argv = shlex.split(command.format(host=host, port=port, local_port=local_port))
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise OpsbookError(f"cannot start the tunnel command {argv[0]!r} (params rds[].tunnel_command): {exc}",
                               remedy=f"install {argv[0]} (or put it on PATH), or fix rds[].tunnel_command") from None
        tunnel = Tunnel(host, port, local_port, process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = (process.stderr.read() or b"").decode(errors="replace")[-500:] if process.stderr else ""
                raise OpsbookError(f"the tunnel to {host}:{port} exited with code {process.returncode}: {err.strip()}",
                                   remedy="fix rds[].tunnel_command, or the access it needs, after the "
                                          "command's own error above")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local_port), timeout=1):
                _OPEN[(host, port)] = tunnel
                return tunnel
            time.sleep(0.2)
        tunnel.close()
        raise OpsbookError(f"the tunnel to {host}:{port} did not open 127.0.0.1:{local_port} within {timeout:.0f}s",
                           remedy="check rds[].tunnel_command and that your session may start it")


def close_all() -> None:
    with _LOCK:
        tunnels = list(_OPEN.values())
        _OPEN.clear()
    for tunnel in tunnels:
        tunnel.close()


atexit.register(close_all)
