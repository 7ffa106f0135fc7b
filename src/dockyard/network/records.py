"""Network definitions and their endpoints, one JSON file per network written atomically."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..util import fields
from ..util.atomic import write_json_atomic

BRIDGE_NAME_OPT = "com.docker.network.bridge.name"


@dataclass
class Endpoint:
    """A container's place on a network: asked for at create/connect, live while it runs."""

    container_id: str
    name: str  # container name, no leading "/"
    endpoint_id: str = ""
    aliases: list[str] = field(default_factory=list)
    static_ip: str = ""  # --ip
    static_ip6: str = ""  # --ip6
    link_local_ips: list[str] = field(default_factory=list)  # echoed as asked, as dockerd keeps them
    driver_opts: dict[str, str] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)  # "container:alias", resolvable by this container only
    hostname: str = ""  # the container's, which the embedded DNS answers too
    mac_wanted: str = ""  # --mac-address: the interface gets it instead of the one derived from the address
    # live part (empty while the container is stopped)
    address: str = ""  # "172.18.0.2/16"
    address6: str = ""  # "fd00:1::2/64" on an IPv6 network
    mac: str = ""
    ifname: str = ""
    host_end: str = ""
    ports: list[dict[str, Any]] = field(default_factory=list)  # published: proto, port, host_ip, host_port


@dataclass
class Network:
    id: str
    name: str
    created: str
    driver: str = "bridge"
    scope: str = "local"
    internal: bool = False
    attachable: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    subnet: str = ""
    gateway: str = ""
    ip_range: str = ""
    bridge: str = ""
    # what bringing the network up changed on the host, so removing it takes away that and no more:
    # an adopted bridge (one that existed) is never deleted, nor its other addresses touched
    bridge_created: bool = False
    gateway_added: bool = False
    ipam_options: dict[str, str] = field(default_factory=dict)
    user_subnet: bool = False  # --subnet given (IPAM Config shows it as given)
    subnet6: str = ""  # set on an EnableIPv6 network
    gateway6: str = ""
    # IPAM Config shows the IPv6 gateway only when it was asked for or the subnet came from a pool, as dockerd
    gateway6_given: bool = False
    gateway6_added: bool = False
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def predefined(self) -> bool:
        return self.name in ("bridge", "host", "none")

    @property
    def user_defined(self) -> bool:
        return not self.predefined

    def save(self, directory: str) -> None:
        write_json_atomic(os.path.join(directory, self.id + ".json"), asdict(self))

    def delete(self, directory: str) -> None:
        try:
            os.unlink(os.path.join(directory, self.id + ".json"))
        except FileNotFoundError:
            pass

    @classmethod
    def load(cls, path: str) -> "Network":
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        data["endpoints"] = {k: Endpoint(**v) for k, v in (data.get("endpoints") or {}).items()}
        # records from before these were kept: only a br-<id> bridge is certainly the daemon's own
        own = data.get("bridge") == "br-" + str(data.get("id", ""))[:12]
        data.setdefault("bridge_created", own)
        data.setdefault("gateway_added", own)
        n = cls(**data)
        fields.check(n)  # TypeError: the loader skips and logs a record that would break `network ls`
        return n
