"""The engine's registry service: pull, push, login and distribution inspect.

Blocking: callers run these in worker threads. Progress goes to a callback
as dockerd's JSON messages; errors are raised as the engine's error kinds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any, Callable

from ..config import RegistrySettings
from ..errors import InvalidParameter, NotFound, Unauthorized, Unavailable
from ..util.reference import Reference, parse
from . import manifest as mf
from .auth import AuthConfig
from .blobindex import BlobIndex
from .client import RegistryError, RegistryUnreachable, Transport
from .names import tag_or_digest
from .progress import Progress, ProgressFn
from .pull import ImageParts, Puller, translate
from .push import Pusher, local_image_not_found
from .registries import RegistryConfig, auth_domain
from .session import Sessions

log = logging.getLogger("dockyard.distribution")

Publish = Callable[[str, str, str, dict[str, str]], Any]


class Distribution:
    def __init__(self, data_root: str, settings: RegistrySettings, images: ImageParts, publish: Publish) -> None:
        self.images = images
        self.publish = publish
        self.registries = RegistryConfig(settings.mirrors, settings.insecure, settings.config_dir)
        self.transport = Transport(pool_size=max(settings.max_concurrent_downloads,
                                                 settings.max_concurrent_uploads) + 2)
        self.sessions = Sessions(self.registries, self.transport)
        self.index = BlobIndex(os.path.join(data_root, "distribution", "blobindex.json"))
        self.puller = Puller(self.sessions, images, self.index, settings.max_concurrent_downloads)
        self.pusher = Pusher(self.sessions, images, self.index, settings.max_concurrent_uploads)

    def close(self) -> None:
        self.transport.close()

    # -- pull ----------------------------------------------------------------------------
    def pull(self, ref: Reference, platform: str | None, auth: AuthConfig, progress_fn: ProgressFn,
             cancel: threading.Event | None = None) -> None:
        """Pull one tag/digest, or every tag when ``ref`` has neither (``docker pull -a``)."""
        want = mf.parse_platform(platform)
        progress = Progress(progress_fn)
        cancel = cancel or threading.Event()
        if tag_or_digest(ref):
            result = self.puller.pull(ref, auth, want, progress, cancel)
            self.publish("image", "pull", ref.familiar(), {"name": ref.familiar()})
            verb = "Downloaded newer image for" if result.downloaded else "Image is up to date for"
            progress.status(f"Status: {verb} {ref.familiar()}")
            return
        try:
            session = self.sessions.open(ref.domain, ref.path, auth)
            tags = session.tags()
        except RegistryError as e:
            raise translate(e, ref) from None
        except RegistryUnreachable as e:
            raise Unavailable(f"error pulling image {ref.familiar_name}: {e}") from None
        if not tags:
            raise NotFound(f"no tags found for {ref.familiar_name}")
        downloaded = False
        for tag in sorted(tags):
            tagged = ref.with_tag(tag)
            result = self.puller.pull(tagged, auth, want, progress, cancel)
            downloaded = downloaded or result.downloaded
            self.publish("image", "pull", tagged.familiar(), {"name": tagged.familiar()})
        verb = "Downloaded newer image for" if downloaded else "Image is up to date for"
        progress.status(f"Status: {verb} {ref.familiar_name}")

    # -- push ----------------------------------------------------------------------------
    def push(self, ref: Reference, auth: AuthConfig, progress_fn: ProgressFn,
             cancel: threading.Event | None = None) -> None:
        """Push one tag, or every local tag of the repository when ``ref`` has none."""
        if ref.digest:
            raise InvalidParameter("cannot push a digest reference")
        store = self.images.store
        if ref.tag:
            try:
                targets = [(ref, store.resolve(str(ref)))]
            except NotFound:
                raise local_image_not_found(ref) from None
        else:
            with store.lock:
                targets = []
                for key, image_id in sorted(store.references.items()):
                    r = parse(key, default_tag=False)
                    if r.tag and r.name == ref.name:
                        targets.append((r, store.images[image_id]))
            if not targets:
                raise local_image_not_found(ref)
        progress = Progress(progress_fn)
        cancel = cancel or threading.Event()
        progress.status(f"The push refers to repository [{ref.name}]")
        for target, image in targets:
            digest, size = self.pusher.push(target, image, auth, progress, cancel)
            store.tag(Reference(target.domain, target.path, None, digest), image.id)
            self.publish("image", "push", target.familiar(), {"name": target.familiar()})
            progress.status(f"{target.tag}: digest: {digest} size: {size}")
            progress.aux({"Tag": target.tag, "Digest": digest, "Size": size})

    # -- login -------------------------------------------------------------------------
    def login(self, auth: AuthConfig) -> tuple[str, str]:
        """Check credentials against the registry; returns (status, identity token)."""
        domain = auth_domain(auth.server_address)
        try:
            session = self.sessions.open(domain, "", auth, push=True)
        except Unavailable as e:
            raise Unavailable(f"error logging in to {domain}: {e}") from None
        challenge = session.authorizer.challenge
        if challenge is None:
            return "Login Succeeded", ""
        if challenge.scheme == "bearer":
            session.authorizer.token([], offline=bool(auth.username))
            return "Login Succeeded", session.authorizer.refresh_token
        resp = session.request("GET", session.url(""), ok=(200, 401))
        if resp.status == 401:
            raise Unauthorized(f"login attempt to {session.url('')} failed with status: 401 Unauthorized")
        return "Login Succeeded", ""

    # -- distribution inspect ------------------------------------------------------------
    def inspect(self, ref: Reference, auth: AuthConfig) -> dict[str, Any]:
        if not tag_or_digest(ref):
            ref = ref.with_tag("latest")
        session = self.sessions.open(ref.domain, ref.path, auth)
        top = self.puller.fetch_manifest(session, ref, tag_or_digest(ref))
        parsed = mf.parse(top.data, top.media_type, ref.familiar())
        platforms: list[dict[str, Any]] = []
        if isinstance(parsed, mf.Index):
            platforms = [m.platform for m in parsed.manifests if m.platform]
        else:
            try:
                config = json.loads(session.request("GET", f"blobs/{parsed.config.digest}").data)
                platforms = [{k: config[k] for k in ("architecture", "os", "variant") if config.get(k)}]
            except (RegistryError, ValueError):
                platforms = []
        return {"Descriptor": {"mediaType": top.media_type or parsed.media_type, "digest": top.digest,
                               "size": len(top.data)},
                "Platforms": platforms}
