"""A loopback TCP proxy in front of the real MariaDB that plays one RDS instance's endpoint.

Each sandbox RDS instance gets one proxy. In the MySQL handshake it renames the client's
user and database to that instance's physical ones (`app_user` -> `ob1a2b3c_u2`,
`appdb` -> `ob1a2b3c_i1`), and it does the same for `COM_INIT_DB` (`USE appdb`).
The password scramble does not cover either name, so authentication is MariaDB's own.
TLS and compression are taken out of the server's greeting so the stream stays readable.

Every `CREATE TABLE` a client sends gets `WITH SYSTEM VERSIONING` appended: RDS keeps
every table's changes for point-in-time restore (binary logs), and MariaDB keeps a
table's history only when it is system-versioned, so the sandbox's point-in-time method
(see `dataplane`) covers tables that clients create, such as a drill's canary table.

`refuse_for(seconds)` drops every open connection and closes new ones at once for a
while: what a Multi-AZ failover looks like from a client.

Known gaps (fine for drills): names qualified in SQL (`appdb.orders`) are not
rewritten, and `SELECT DATABASE()` shows the physical name.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time

log = logging.getLogger(__name__)

CLIENT_CONNECT_WITH_DB = 0x00000008
CLIENT_COMPRESS = 0x00000020
CLIENT_SSL = 0x00000800
CLIENT_SECURE_CONNECTION = 0x00008000
CLIENT_PLUGIN_AUTH_LENENC = 0x00200000
COM_INIT_DB = 0x02
COM_QUERY = 0x03
# plain CREATE TABLE statements (not TEMPORARY, not ... LIKE / ... SELECT) without versioning
_CREATE_TABLE = re.compile(rb"^\s*CREATE\s+TABLE\s(?!.*\b(?:SELECT|LIKE|SYSTEM\s+VERSIONING)\b)", re.I | re.S)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return bytes(data)


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    header = _read_exact(sock, 4)
    size = int.from_bytes(header[:3], "little")
    return header[3], _read_exact(sock, size)


def packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def _lenenc(data: bytes, pos: int) -> tuple[int, int]:
    """(value, bytes used) of a length-encoded integer at `pos`."""
    first = data[pos]
    if first < 0xFB:
        return first, 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(data[pos + 1:pos + 1 + size], "little"), 1 + size


def strip_greeting(payload: bytes) -> bytes:
    """The server greeting without the SSL and compression capability bits."""
    pos = payload.index(b"\0", 1) + 1 + 4 + 8 + 1  # version, connection id, scramble part 1, filler
    caps = int.from_bytes(payload[pos:pos + 2], "little") & ~(CLIENT_SSL | CLIENT_COMPRESS) & 0xFFFF
    return payload[:pos] + caps.to_bytes(2, "little") + payload[pos + 2:]


def versioned(query: bytes) -> bytes:
    """A CREATE TABLE statement with `WITH SYSTEM VERSIONING` added; other statements unchanged."""
    if not _CREATE_TABLE.match(query):
        return query
    return query.rstrip().rstrip(b";") + b" WITH SYSTEM VERSIONING"


def rewrite_login(payload: bytes, users: dict[str, str], databases: dict[str, str]) -> bytes:
    """A HandshakeResponse41 with user and database renamed (other fields kept byte for byte)."""
    caps = int.from_bytes(payload[:4], "little")
    pos = 32
    end = payload.index(b"\0", pos)
    user = payload[pos:end].decode()
    pos = end + 1
    if caps & CLIENT_PLUGIN_AUTH_LENENC:
        size, used = _lenenc(payload, pos)
        auth_end = pos + used + size
    elif caps & CLIENT_SECURE_CONNECTION:
        auth_end = pos + 1 + payload[pos]
    else:
        auth_end = payload.index(b"\0", pos) + 1
    auth = payload[pos:auth_end]
    pos = auth_end
    db_part = b""
    if caps & CLIENT_CONNECT_WITH_DB:
        end = payload.index(b"\0", pos)
        db = payload[pos:end].decode()
        db_part = databases.get(db, db).encode() + b"\0"
        pos = end + 1
    return payload[:32] + users.get(user, user).encode() + b"\0" + auth + db_part + payload[pos:]


class MySQLProxy:
    """One instance's endpoint: 127.0.0.1:<port> -> MariaDB, with user/database renaming."""

    def __init__(self, name: str, upstream: tuple[str, int], users: dict[str, str],
                 databases: dict[str, str]) -> None:
        self.name = name
        self.upstream = upstream
        self.users = users  # the instance's own, live: users added later are seen by new connections
        self.databases = databases
        self.refuse_until = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.5)
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"mysql-proxy-{name}", daemon=True)
        self._thread.start()

    def refuse_for(self, seconds: float) -> None:
        """Drop open connections and refuse new ones for `seconds`."""
        self.refuse_until = time.monotonic() + seconds
        self._drop_all()

    @property
    def refusing(self) -> bool:
        return time.monotonic() < self.refuse_until

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self._listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.refusing:
                with contextlib.suppress(OSError):
                    client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, *socks: socket.socket, add: bool = True) -> None:
        with self._lock:
            for sock in socks:
                (self._open.add if add else self._open.discard)(sock)

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        self._track(client, server)
        try:
            seq, greeting = read_packet(server)
            client.sendall(packet(seq, strip_greeting(greeting) if greeting[:1] == b"\x0a" else greeting))
            seq, login = read_packet(client)
            if len(login) <= 32:  # an SSLRequest: TLS was not offered, refuse
                return
            server.sendall(packet(seq, rewrite_login(login, self.users, self.databases)))
            pump = threading.Thread(target=self._pump, args=(server, client), daemon=True)
            pump.start()
            self._client_to_server(client, server)
            pump.join()
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            self._track(client, server, add=False)
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.close()

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while True:
                seq, payload = read_packet(client)
                if seq == 0 and payload[:1] == bytes([COM_INIT_DB]):
                    db = payload[1:].decode()
                    payload = bytes([COM_INIT_DB]) + self.databases.get(db, db).encode()
                elif seq == 0 and payload[:1] == bytes([COM_QUERY]):
                    payload = bytes([COM_QUERY]) + versioned(payload[1:])
                server.sendall(packet(seq, payload))
        except (ConnectionError, OSError):
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)
