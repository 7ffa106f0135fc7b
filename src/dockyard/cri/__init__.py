"""The Kubernetes CRI (runtime.v1) front-end: a kubelet's RuntimeService and ImageService over gRPC.

It translates the CRI's messages to calls on the engine's public services, as api/ does for the
Docker Engine API; it holds no domain logic of its own. ``listener`` owns the socket and loads gRPC
on first use, ``server`` assembles the gRPC services, ``streaming`` serves the URLs of Exec, Attach and
PortForward.
"""
