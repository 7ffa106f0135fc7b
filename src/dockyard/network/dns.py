"""The embedded DNS server: 127.0.0.11:53 inside each container's namespace on a user-defined network.

Each listener is a UDP socket created inside the container's namespace (so it
needs no NAT rule) and served by one daemon thread. Names of containers,
aliases and short IDs on the asker's networks are answered here; the rest is
forwarded to the upstream servers from the daemon's own namespace.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import selectors
import socket
import threading
from typing import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from . import netns

log = logging.getLogger("dockyard.network.dns")

ADDRESS = "127.0.0.11"
TTL = 600
# container id, lower-case name -> IPv4 and IPv6 addresses (None: not ours, forward it; []: no such name)
Resolve = Callable[[str, str], list[str] | None]
Upstreams = Callable[[str], list[str]]


class DnsServer:
    def __init__(self, resolve: Resolve, upstreams: Upstreams) -> None:
        self._resolve = resolve
        self._upstreams = upstreams
        self._sel = selectors.DefaultSelector()
        self._socks: dict[str, socket.socket] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="dns-forward")
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="dns", daemon=True)
        self._thread.start()

    def listen(self, container_id: str, ns_path: str) -> None:
        with self._lock:
            if container_id in self._socks:
                return
        with netns.entered(ns_path):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((ADDRESS, 53))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        with self._lock:
            self._socks[container_id] = sock
            self._sel.register(sock, selectors.EVENT_READ, container_id)
        os.write(self._wake_w, b"x")

    def close_listener(self, container_id: str) -> None:
        with self._lock:
            sock = self._socks.pop(container_id, None)
            if sock is not None:
                self._sel.unregister(sock)
                sock.close()

    def listeners(self) -> int:
        return len(self._socks)

    def close(self) -> None:
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        with self._lock:
            for sock in self._socks.values():
                sock.close()
            self._socks.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _serve(self) -> None:
        while not self._closed:
            for key, _ in self._sel.select(1.0):
                if key.data is None:
                    os.read(self._wake_r, 512)
                    continue
                try:
                    data, peer = key.fileobj.recvfrom(4096)  # type: ignore[union-attr]
                except OSError:
                    continue
                self._answer(key.fileobj, key.data, data, peer)  # type: ignore[arg-type]

    def _answer(self, sock: socket.socket, container_id: str, data: bytes, peer: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        if not query.question:
            return
        q = query.question[0]
        name = q.name.to_text(omit_final_dot=True).lower()
        addresses = self._resolve(container_id, name)
        if addresses is None:
            self._pool.submit(self._forward, sock, container_id, data, peer, query)
            return
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA | dns.flags.RA
        if not addresses:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif q.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            # a name known here without an address of the kind asked: NOERROR and no answer, as libnetwork's
            v6 = q.rdtype == dns.rdatatype.AAAA
            wanted = [a for a in addresses if (":" in a) == v6]
            if wanted:
                reply.answer.append(dns.rrset.from_text_list(q.name, TTL, "IN", "AAAA" if v6 else "A", wanted))
        _send(sock, reply.to_wire(), peer)

    def _forward(self, sock: socket.socket, container_id: str, data: bytes, peer: tuple[str, int],
                 query: dns.message.Message) -> None:
        for server in self._upstreams(container_id):
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.settimeout(2.0)
            try:
                up.sendto(data, (server, 53))
                answer, _ = up.recvfrom(65535)
                _send(sock, answer, peer)
                return
            except OSError:
                continue
            finally:
                up.close()
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.SERVFAIL)
        _send(sock, reply.to_wire(), peer)


def _send(sock: socket.socket, data: bytes, peer: tuple[str, int]) -> None:
    try:
        sock.sendto(data, peer)
    except OSError:
        pass  # the container went away


def host_nameservers(path: str = "/etc/resolv.conf") -> list[str]:
    out = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if parts[:1] == ["nameserver"] and len(parts) > 1 and ":" not in parts[1]:
                    out.append(parts[1])
    except OSError:
        pass
    return out
