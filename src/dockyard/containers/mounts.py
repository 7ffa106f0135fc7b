"""A container's mounts: `Binds`, `Mounts`, `Tmpfs`, `VolumesFrom` and the image's `Volumes`.

Three steps, as in dockerd:
  ``plan``        parse and validate everything, creating nothing (every refusal is a 400 here);
  ``materialize`` at create: create missing named and anonymous volumes and `-v` host dirs;
  ``attach``      at start: hold the volumes, copy image content into empty ones, give the OCI mounts.
The mount points are stored in the container record as dicts (``MountPoint`` fields).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

from .. import errors
from ..storage import fdtar, rootfd
from ..util import archive as tarsafe
from ..util.iterio import IterReader
from ..volumes import subpath as subpathmod

PROPAGATIONS = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
LABELS = ("z", "Z")


@dataclass
class MountPoint:
    type: str  # volume | bind | tmpfs
    destination: str
    source: str = ""  # bind: the host path; volume: filled in by materialize (its mountpoint)
    name: str = ""  # volume name; empty until an anonymous one is created
    driver: str = ""
    mode: str = ""  # as inspect shows it
    rw: bool = True
    propagation: str = ""
    copy_data: bool = True
    subpath: str = ""
    non_recursive: bool = False
    create_source: bool = False  # `-v /host:/ctr` makes a missing host dir; `--mount` refuses it
    anonymous: bool = False
    volume_options: dict[str, str] = field(default_factory=dict)
    volume_labels: dict[str, str] = field(default_factory=dict)
    tmpfs_options: list[str] = field(default_factory=list)
    copied: bool = False  # the image content was copied in at the first start


def _mount_error(kind: str, msg: str) -> errors.InvalidParameter:
    return errors.InvalidParameter(f'invalid mount config for type "{kind}": {msg}')


def _check_target(kind: str | None, target: str) -> str:
    """Clean an in-container path; dockerd refuses `/` and relative paths."""
    def err(msg: str) -> errors.InvalidParameter:
        return _mount_error(kind, msg) if kind else errors.InvalidParameter(msg)
    if not target:
        raise err("field Target must not be empty")
    if not target.startswith("/"):
        raise err(f"invalid mount path: '{target}' mount path must be absolute")
    clean = posixpath.normpath(target)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if clean == "/":
        raise err("invalid specification: destination can't be '/'")
    return clean


def _valid_mode(mode: str) -> bool:
    seen: dict[str, int] = {}
    for part in mode.split(","):
        if part in ("rw", "ro"):
            kind = "rw"
        elif part in LABELS:
            kind = "label"
        elif part in PROPAGATIONS:
            kind = "propagation"
        elif part == "nocopy":
            kind = "copy"
        else:
            return False
        seen[kind] = seen.get(kind, 0) + 1
        if seen[kind] > 1:
            return False
    return True


def _parse_bind(raw: str) -> MountPoint:
    """One `Binds` entry: `/host:/ctr[:mode]`, `name:/ctr[:mode]` or `/ctr`."""
    parts = raw.split(":")
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):
            raise errors.InvalidParameter(f"invalid volume specification: '{raw}'")
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
        if not _valid_mode(mode):
            raise errors.InvalidParameter(f"invalid mode: {mode}")
    else:
        raise errors.InvalidParameter(f"invalid volume specification: '{raw}'")
    opts = mode.split(",") if mode else []
    kind = "bind" if source.startswith("/") else "volume"
    try:
        target = _check_target(kind, target)
        if kind == "bind" and source != "/":
            source = posixpath.normpath(source)
    except errors.InvalidParameter as e:
        raise errors.InvalidParameter(f"invalid volume specification: '{raw}': {e}") from None
    propagation = next((o for o in opts if o in PROPAGATIONS), "")
    mp = MountPoint(type=kind, destination=target, source=source if kind == "bind" else "",
                    name=source if kind == "volume" else "", rw="ro" not in opts, mode=mode,
                    copy_data="nocopy" not in opts)
    if kind == "bind":
        mp.propagation = propagation or "rprivate"
        mp.create_source = True
    else:
        if propagation:
            raise errors.InvalidParameter(f"invalid volume specification: '{raw}': "
                                          f"invalid mount config for type \"volume\": "
                                          f"propagation mode not supported for volumes")
        mp.anonymous = not source
        mp.driver = "local"
        if source and not mode:
            mp.mode = "z"  # dockerd's default label mode for a named volume given in Binds
    return mp


def _parse_mount(m: dict[str, Any]) -> MountPoint:
    """One `HostConfig.Mounts` entry (`--mount`)."""
    kind = m.get("Type") or ""
    source = m.get("Source") or ""
    bind_opts = m.get("BindOptions")
    vol_opts = m.get("VolumeOptions")
    tmpfs_opts = m.get("TmpfsOptions")
    if kind not in ("bind", "volume", "tmpfs"):
        raise _mount_error(kind, "mount type unknown")
    target = _check_target(kind, m.get("Target") or "")
    ro = bool(m.get("ReadOnly"))
    if kind == "bind":
        if not source:
            raise _mount_error(kind, "field Source must not be empty")
        if vol_opts:
            raise _mount_error(kind, "field VolumeOptions must not be specified")
        if tmpfs_opts:
            raise _mount_error(kind, "field TmpfsOptions must not be specified")
        propagation = (bind_opts or {}).get("Propagation") or ""
        if propagation and propagation not in PROPAGATIONS:
            raise _mount_error(kind, f"invalid propagation mode: {propagation}")
        if not source.startswith("/"):
            raise _mount_error(kind, f"invalid mount path: '{source}' mount path must be absolute")
        source = posixpath.normpath(source)
        create = bool((bind_opts or {}).get("CreateMountpoint"))
        if not create and not os.path.exists(source):
            raise _mount_error(kind, f"bind source path does not exist: {source}")
        return MountPoint(type="bind", destination=target, source=source, rw=not ro,
                          propagation=propagation or "rprivate", create_source=create,
                          non_recursive=bool((bind_opts or {}).get("NonRecursive")))
    if kind == "volume":
        if bind_opts:
            raise _mount_error(kind, "field BindOptions must not be specified")
        if tmpfs_opts:
            raise _mount_error(kind, "field TmpfsOptions must not be specified")
        vol_opts = vol_opts or {}
        subpath = vol_opts.get("Subpath") or ""
        if subpath:
            if not source:
                raise _mount_error(kind, "must not set Subpath when using anonymous volumes")
            if subpath.startswith("/") or posixpath.normpath(subpath).split("/")[0] == "..":
                raise _mount_error(kind, "subpath must be a relative path within the volume")
        if ro and not source:
            raise _mount_error(kind, "must not set ReadOnly mode when using anonymous volumes")
        driver_cfg = vol_opts.get("DriverConfig") or {}
        return MountPoint(type="volume", destination=target, name=source, driver=driver_cfg.get("Name") or "local",
                          rw=not ro, copy_data=not vol_opts.get("NoCopy"), subpath=subpath,
                          anonymous=not source, volume_options=dict(driver_cfg.get("Options") or {}),
                          volume_labels=dict(vol_opts.get("Labels") or {}))
    if source:
        raise _mount_error(kind, "field Source must not be specified")
    if bind_opts:
        raise _mount_error(kind, "field BindOptions must not be specified")
    if vol_opts:
        raise _mount_error(kind, "field VolumeOptions must not be specified")
    options = ["nosuid", "nodev", "noexec"]
    tmpfs_opts = tmpfs_opts or {}
    size = tmpfs_opts.get("SizeBytes")
    if size is not None:
        if not isinstance(size, int) or size < 0:
            raise _mount_error(kind, f"invalid tmpfs size: {size}")
        if size:
            options.append(f"size={size}")
    mode = tmpfs_opts.get("Mode")
    if mode:
        options.append(f"mode={int(mode) & 0o7777:o}")
    for opt in tmpfs_opts.get("Options") or []:
        options.append("=".join(str(x) for x in opt) if isinstance(opt, list) else str(opt))
    if ro:
        options.append("ro")
    return MountPoint(type="tmpfs", destination=target, rw=not ro, tmpfs_options=options)


def plan(host_config: dict[str, Any], config: dict[str, Any], image_config: dict[str, Any],
         get_container: Callable[[str], Any], validate_volume: Callable[[str, str | None, dict[str, str]], None]
         ) -> list[MountPoint]:
    """The validated mount points of a new container; raises before anything is created."""
    taken: dict[str, MountPoint] = {}
    # --volumes-from first: binds and mounts of the new container override them
    for spec in host_config.get("VolumesFrom") or []:
        ref, _, mode = spec.partition(":")
        if mode and mode not in ("ro", "rw"):
            raise errors.InvalidParameter(f"invalid mode: {mode}")
        try:
            other = get_container(ref)
        except errors.NotFound as e:
            # a 400, not a 404: the CLI would take a 404 for a missing image and try to pull it
            raise errors.InvalidParameter(str(e)) from None
        for d in getattr(other, "mounts", None) or []:
            mp = MountPoint(**d)
            if mp.type == "tmpfs":
                continue
            if mode:
                mp.rw = mode == "rw"
            mp.create_source = False
            mp.copy_data = False
            mp.copied = True
            mp.anonymous = False  # it belongs to the other container: `rm -v` here must not remove it
            taken[mp.destination] = mp
    own: dict[str, MountPoint] = {}

    def add(mp: MountPoint) -> None:
        if mp.destination in own:
            raise errors.InvalidParameter(f"Duplicate mount point: {mp.destination}")
        own[mp.destination] = mp

    for raw in host_config.get("Binds") or []:
        add(_parse_bind(raw))
    for m in host_config.get("Mounts") or []:
        add(_parse_mount(m))
    tmpfs = set()
    for dest in (host_config.get("Tmpfs") or {}):
        clean = _check_target(None, dest)
        if clean in own or clean in tmpfs:
            raise errors.InvalidParameter(f"Duplicate mount point: {clean}")
        tmpfs.add(clean)
    for mp in own.values():
        if mp.type == "volume" and mp.name:
            validate_volume(mp.name, mp.driver, mp.volume_options)
        elif mp.type == "volume" and mp.driver != "local":
            validate_volume("anonymous", mp.driver, mp.volume_options)
    taken.update(own)
    for dest in list(image_config.get("Volumes") or {}) + list(config.get("Volumes") or {}):
        clean = _check_target(None, dest)
        if clean not in taken and clean not in tmpfs:
            taken[clean] = MountPoint(type="volume", destination=clean, driver="local", anonymous=True)
    return sorted(taken.values(), key=lambda mp: mp.destination)


def materialize(points: list[MountPoint], volumes: Any) -> list[dict[str, Any]]:
    """Create what the mount points need; on failure, undo what this call created."""
    created: list[str] = []
    try:
        for mp in points:
            if mp.type == "volume" and not mp.source:
                existed = bool(mp.name) and _exists(volumes, mp.name)
                vol = volumes.create(mp.name or None, mp.driver, mp.volume_labels, mp.volume_options)
                if not existed:
                    created.append(vol.name)
                mp.name = vol.name
                mp.source = volumes.mountpoint(vol.name)
                if mp.subpath:
                    subpathmod.resolve(mp.source, mp.subpath)
            elif mp.type == "bind" and mp.create_source and not os.path.exists(mp.source):
                os.makedirs(mp.source, mode=0o755, exist_ok=True)
    except BaseException:
        for name in created:
            try:
                volumes.remove(name, force=True)
            except errors.DockyardError:
                pass
        raise
    return [asdict(mp) for mp in points]


def _exists(volumes: Any, name: str) -> bool:
    try:
        volumes.get(name)
        return True
    except errors.NotFound:
        return False


def attach(container_id: str, points: list[dict[str, Any]], volumes: Any, rootfs: str) -> list[dict[str, Any]]:
    """Hold the container's volumes and return its OCI mounts (volumes and binds, tmpfs mounts)."""
    out: list[dict[str, Any]] = []
    held: list[str] = []
    try:
        for d in points:
            mp = MountPoint(**d)
            source = mp.source
            if mp.type == "volume":
                source = volumes.mount(mp.name, container_id, {
                    "destination": mp.destination, "read/write": str(mp.rw).lower(),
                    "propagation": mp.propagation})
                held.append(mp.name)
                if mp.subpath:
                    source = volumes.pin_subpath(mp.name, container_id, mp.subpath)
                elif mp.copy_data and not d.get("copied"):
                    _copy_up(rootfs, mp.destination, source)
                d["copied"] = True
            if mp.type == "tmpfs":
                out.append({"destination": mp.destination, "type": "tmpfs", "source": "tmpfs",
                            "options": list(mp.tmpfs_options)})
                continue
            options = ["bind" if mp.non_recursive else "rbind", mp.propagation or "rprivate"]
            if not mp.rw:
                options.append("ro")
            out.append({"destination": mp.destination, "type": "bind", "source": source, "options": options})
    except BaseException:
        for name in held:
            volumes.unmount(name, container_id)
        raise
    return out


def detach(container_id: str, points: list[dict[str, Any]], volumes: Any) -> None:
    for d in points:
        if d["type"] == "volume":
            volumes.unmount(d["name"], container_id)


def adopt(container_id: str, points: list[dict[str, Any]], volumes: Any) -> None:
    for d in points:
        if d["type"] == "volume":
            volumes.adopt(d["name"], container_id)


def remove_anonymous(points: list[dict[str, Any]], volumes: Any) -> None:
    """`rm -v` and `--rm`: the container's own anonymous volumes go with it, unless another uses them."""
    for d in points:
        if d["type"] == "volume" and d.get("anonymous"):
            try:
                volumes.remove(d["name"])
            except (errors.Conflict, errors.NotFound):
                pass


def discard(points: list[MountPoint], volumes: Any) -> None:
    """A create that failed after ``materialize``: its anonymous volumes go again."""
    remove_anonymous([asdict(mp) for mp in points if mp.name], volumes)


def users(containers: Iterable[Any], name: str) -> list[str]:
    return [c.id for c in containers
            if any(d["type"] == "volume" and d["name"] == name for d in getattr(c, "mounts", None) or [])]


def inspect(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """inspect's `Mounts`, in dockerd's shape."""
    out = []
    for d in points:
        item: dict[str, Any] = {"Type": d["type"]}
        if d["type"] == "volume":
            item["Name"] = d["name"]
        item.update({"Source": d["source"] if d["type"] != "tmpfs" else "", "Destination": d["destination"]})
        if d["type"] == "volume":
            item["Driver"] = d["driver"]
        item.update({"Mode": d["mode"], "RW": d["rw"], "Propagation": d["propagation"]})
        out.append(item)
    return out


def matches(points: list[dict[str, Any]], wanted: str) -> bool:
    """`ps --filter volume=`: a volume name or a mount destination."""
    return any((d["type"] == "volume" and d["name"] == wanted) or d["destination"] == wanted for d in points)


def _copy_up(rootfs: str, destination: str, volume_path: str) -> None:
    """First mount of an empty volume: the image's content at the destination goes in.

    Only the volume's top level is looked at (one entry read), so mounting a full volume
    costs nothing however many files it holds. Both sides are held by descriptors: the
    image's directory found with openat2 in its root, the copy written below the volume's
    descriptor by the confined extractor, so neither the image's links nor a container
    sharing the volume and planting links in it meanwhile can lead the copy to the host.
    """
    vol = os.open(volume_path, rootfd.DIR_FLAGS | os.O_NOFOLLOW)
    try:
        with os.scandir(vol) as it:
            if next(it, None) is not None:
                return
        root = rootfd.open_root(rootfs)
        try:
            src = rootfd.open_in(root, destination, rootfd.DIR_FLAGS)
        except OSError:
            return  # missing, or not a directory: nothing to copy
        finally:
            os.close(root)
        try:
            with os.scandir(src) as it:
                empty = next(it, None) is None
            if not empty:
                # owners, modes, times, xattrs and hard links kept, as cp -a would
                stream = IterReader(fdtar.tree(src, "", skip_root=True, xattrs=True))
                try:
                    tarsafe.extract(stream, vol, devices=True, same_owner=True)
                except (OSError, tarsafe.UnsafeArchive) as e:
                    raise errors.SystemError_(f"copying the image's content into the volume: {e}") from None
            st = os.fstat(src)
            os.fchown(vol, st.st_uid, st.st_gid)
            os.fchmod(vol, st.st_mode & 0o7777)
        finally:
            os.close(src)
    finally:
        os.close(vol)
