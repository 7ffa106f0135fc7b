"""The CRI's ImageService over the engine's image store: what `docker images` lists, the kubelet sees.

Images are named as containerd names them, fully qualified (``docker.io/library/busybox:latest``),
where the Docker API shows the familiar form of the same references.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

import grpc
from cri_api.v1 import api_pb2 as cri
from cri_api.v1 import api_pb2_grpc

from .. import errors
from ..distribution.auth import AuthConfig
from ..images.store import Image
from ..util import reference as refs
from ..util.du import tree_usage
from .backend import Backend
from .status import rpc, unimplemented_answered



@unimplemented_answered(api_pb2_grpc.ImageServiceServicer)
class ImageService(api_pb2_grpc.ImageServiceServicer):
    def __init__(self, engine: Backend) -> None:
        self.engine = engine
        self.layer_usage = LayerUsage()

    @rpc
    async def ListImages(self, request: cri.ListImagesRequest,
                         context: grpc.aio.ServicerContext) -> cri.ListImagesResponse:
        wanted = request.filter.image.image if request.HasField("filter") else ""
        if wanted:
            image = await asyncio.to_thread(self._find, wanted)
            images = [image] if image is not None else []
        else:
            images = await asyncio.to_thread(self.engine.images.list)
        return cri.ListImagesResponse(images=[to_cri(i) for i in images])

    @rpc
    async def ImageStatus(self, request: cri.ImageStatusRequest,
                          context: grpc.aio.ServicerContext) -> cri.ImageStatusResponse:
        image = await asyncio.to_thread(self._find, _name_of(request.image))
        # an image that is not there is an empty answer, not an error: the kubelet asks before it pulls
        if image is None:
            return cri.ImageStatusResponse()
        info = {}
        if request.verbose:
            info["info"] = json.dumps({"chainID": image.top_layer or "", "imageSpec": image.config})
        return cri.ImageStatusResponse(image=to_cri(image), info=info)

    @rpc
    async def PullImage(self, request: cri.PullImageRequest,
                        context: grpc.aio.ServicerContext) -> cri.PullImageResponse:
        ref = refs.parse(_name_of(request.image))
        auth = auth_config(request.auth) if request.HasField("auth") else AuthConfig()
        cancel = threading.Event()
        try:
            await asyncio.to_thread(self.engine.distribution.pull, ref, None, auth, _no_progress, cancel)
        except asyncio.CancelledError:
            cancel.set()  # the kubelet gave up (its pull deadline): the download stops too
            raise
        image = await asyncio.to_thread(self.engine.images.resolve, str(ref))
        return cri.PullImageResponse(image_ref=image.id)

    @rpc
    async def RemoveImage(self, request: cri.RemoveImageRequest,
                          context: grpc.aio.ServicerContext) -> cri.RemoveImageResponse:
        await asyncio.to_thread(self._remove, _name_of(request.image))
        return cri.RemoveImageResponse()

    @rpc
    async def ImageFsInfo(self, request: cri.ImageFsInfoRequest,
                          context: grpc.aio.ServicerContext) -> cri.ImageFsInfoResponse:
        used, inodes = await asyncio.to_thread(self._usage)
        mountpoint = os.path.join(self.engine.config.data_root, self.engine.storage_driver_name())
        usage = cri.FilesystemUsage(timestamp=time.time_ns(), fs_id=cri.FilesystemIdentifier(mountpoint=mountpoint),
                                    used_bytes=cri.UInt64Value(value=used), inodes_used=cri.UInt64Value(value=inodes))
        return cri.ImageFsInfoResponse(image_filesystems=[usage])

    # -- in threads ------------------------------------------------------------------
    def _find(self, name: str) -> Image | None:
        try:
            return self.engine.images.resolve(name)
        except errors.NotFound:
            return None

    def _remove(self, name: str) -> None:
        """Every reference of the image and the image go, as containerd removes one; an image that is
        already gone is removed (the kubelet's image GC may race with a user's `docker rmi`)."""
        try:
            image = self.engine.images.resolve(name)
            self.engine.images.delete(image.id, force=True)
        except errors.NotFound:
            pass
        except errors.Conflict:
            # a running container holds it (a pod's, or a docker user's): containerd removes the image
            # record and the container keeps its snapshot; here the references go, the layers stay
            # until the container does, as `docker rmi -f` of a name leaves them
            for ref in [*image.repo_tags, *image.repo_digests]:
                try:
                    self.engine.images.delete(ref, force=True)
                except errors.NotFound:
                    pass

    def _usage(self) -> tuple[int, int]:
        layers = {d for image in self.engine.images.list(all_images=True)
                  for d in self.engine.images.layer_chain(image.id)}
        return self.layer_usage.total(layers)


def _no_progress(message: dict[str, object]) -> None:
    """The CRI's pull answers once, at the end: there is nobody to show progress to."""


def _name_of(spec: cri.ImageSpec) -> str:
    if not spec.image:
        raise errors.InvalidParameter("image.image: an image reference or ID is required")
    return spec.image


def to_cri(image: Image) -> cri.Image:
    user = str((image.config.get("config") or {}).get("User") or "")
    uid, username = user_of(user)
    out = cri.Image(id=image.id, repo_tags=[_qualified(r) for r in image.repo_tags],
                    repo_digests=[_qualified(r) for r in image.repo_digests], size=image.size,
                    username=username, spec=cri.ImageSpec(image=image.id), pinned=False)
    if uid is not None:
        out.uid.value = uid
    return out


def user_of(user: str) -> tuple[int | None, str]:
    """The image's ``User`` as the CRI wants it: a numeric uid, or a name, or neither when unset;
    a group after ``:`` is not the CRI's business (containerd's getUserFromImage)."""
    name = user.split(":", 1)[0]
    if not name:
        return None, ""
    return (int(name), "") if name.isdigit() else (None, name)


def _qualified(familiar: str) -> str:
    return str(refs.parse(familiar, default_tag=False))


def auth_config(auth: cri.AuthConfig) -> AuthConfig:
    """The kubelet's credentials in the Docker API's form (``auth`` is base64 ``user:password``)."""
    return AuthConfig.from_dict({"username": auth.username, "password": auth.password, "auth": auth.auth,
                                 "serveraddress": auth.server_address, "identitytoken": auth.identity_token,
                                 "registrytoken": auth.registry_token})


class LayerUsage:
    """Bytes and inodes of the image layers. A committed layer never changes, so each is walked once and
    remembered until it is gone: the kubelet asks every ten seconds for its eviction manager."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def total(self, layer_dirs: set[str]) -> tuple[int, int]:
        with self._lock:
            for gone in set(self._known) - layer_dirs:
                del self._known[gone]
            for d in layer_dirs - set(self._known):
                self._known[d] = tree_usage(d)
            return sum(u[0] for u in self._known.values()), sum(u[1] for u in self._known.values())
