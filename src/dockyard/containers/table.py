"""The containers the daemon knows, by ID and by name, and the lock each one's lifecycle steps take."""

from __future__ import annotations

import threading

from .. import errors
from . import links as linksmod
from . import names as namegen
from .record import Container


def name_conflict(full: str, owner: str) -> errors.Conflict:
    return errors.Conflict(
        f'Conflict. The container name "{full}" is already in use by container "{owner}". You have to '
        f'remove (or rename) that container to be able to reuse that name.')


class ContainerTable:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._containers: dict[str, Container] = {}
        self._names: dict[str, str] = {}
        # start, exit teardown, restart and remove of one container run one at a time
        self._op_locks: dict[str, threading.RLock] = {}

    def get(self, ref: str) -> Container:
        """By full ID, name (with or without "/"), or unique ID prefix, as dockerd resolves them."""
        with self.lock:
            if ref in self._containers:
                return self._containers[ref]
            by_name = self._names.get(ref if ref.startswith("/") else "/" + ref)
            if by_name:
                return self._containers[by_name]
            if "/" in ref.strip("/"):  # a legacy link's name, "/parent/alias", stands for its child
                child = linksmod.child_by_link_name(list(self._containers.values()), ref, self.get)
                if child is not None:
                    return child
            if ref:
                matches = [c for cid, c in self._containers.items() if cid.startswith(ref)]
                if len(matches) == 1:
                    return matches[0]
                if len(matches) > 1:
                    raise errors.InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise errors.NotFound(f"No such container: {ref}")

    def by_id(self, container_id: str) -> Container | None:
        return self._containers.get(container_id)

    def all(self) -> list[Container]:
        with self.lock:
            return list(self._containers.values())

    def op_lock(self, container_id: str) -> threading.RLock:
        with self.lock:
            return self._op_locks.setdefault(container_id, threading.RLock())

    def reserve_name(self, name: str | None, container_id: str) -> str:
        """The full name (given or generated), held for ``container_id`` while its create goes on."""
        with self.lock:
            if name:
                full = namegen.normalize(name)
                if full in self._names:
                    raise name_conflict(full, self._names[full])
            else:
                full = namegen.generate(set(self._names))
            self._names[full] = container_id
            return full

    def release_name(self, full: str, container_id: str) -> None:
        with self.lock:
            if self._names.get(full) == container_id:
                del self._names[full]

    def add(self, c: Container) -> None:
        with self.lock:
            self._containers[c.id] = c
            self._names[c.name] = c.id

    def rename(self, c: Container, new_name: str) -> str:
        """Give ``c`` the name ``new_name``; its old full name."""
        full = namegen.normalize(new_name)
        with self.lock:
            if full == c.name:
                raise errors.InvalidParameter("Renaming a container with the same name as its current name")
            if full in self._names:
                raise name_conflict(full, self._names[full])
            old = c.name
            del self._names[old]
            self._names[full] = c.id
            c.name = full
        return old

    def discard(self, c: Container) -> bool:
        """Forget ``c``; False if it was gone already."""
        with self.lock:
            if self._containers.pop(c.id, None) is None:
                return False
            if self._names.get(c.name) == c.id:
                del self._names[c.name]
            self._op_locks.pop(c.id, None)
            return True

    def __len__(self) -> int:
        return len(self._containers)
