"""Fixtures: a dockyardd serving the CRI on its exec root's cri.sock, and gRPC stubs talking to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from cri_api.v1 import api_pb2_grpc

from conftest import Daemon, make_daemon


@dataclass
class Cri:
    """The CRI's two services over one channel, as a kubelet holds them."""

    channel: grpc.Channel
    runtime: api_pb2_grpc.RuntimeServiceStub
    images: api_pb2_grpc.ImageServiceStub


def connect(socket_path: str) -> Cri:
    channel = grpc.insecure_channel(f"unix://{socket_path}")
    return Cri(channel, api_pb2_grpc.RuntimeServiceStub(channel), api_pb2_grpc.ImageServiceStub(channel))


def cri_socket(daemon: Daemon) -> str:
    return str(Path(daemon.exec_root) / "cri.sock")


@pytest.fixture(scope="module")
def cni_conf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The daemon's CNI configuration directory, empty until a test writes a conflist."""
    return tmp_path_factory.mktemp("net.d")


@pytest.fixture(scope="module")
def cri_daemon(tmp_path_factory: pytest.TempPathFactory, cni_conf_dir: Path) -> Iterator[Daemon]:
    d = make_daemon(tmp_path_factory.mktemp("dockyardd-cri"), ["--cni-conf-dir", str(cni_conf_dir)])
    d.start()
    yield d
    d.teardown()


@pytest.fixture(scope="module")
def cri(cri_daemon: Daemon) -> Iterator[Cri]:
    client = connect(cri_socket(cri_daemon))
    yield client
    client.channel.close()
