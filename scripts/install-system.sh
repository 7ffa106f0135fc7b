#!/usr/bin/env bash
# Installs the system packages dockyard needs, only those missing, so a second
# run on a ready machine costs a few `command -v` checks.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have runc || need+=(runc)
have iptables || need+=(iptables)
have conmon || need+=(conmon)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || need+=(busybox-static)
have docker-registry || need+=(docker-registry)
have skopeo || need+=(skopeo)
have tmux || need+=(tmux)
have curl || need+=(curl)
# gcc and a static libc: the security tests build small static C programs (path swapper, packet probes)
have gcc || need+=(gcc)
[ -f "/usr/lib/$(uname -m)-linux-gnu/libc.a" ] || need+=(libc6-dev)
# systemd-socket-activate: the socket-activation tests start dockyardd as dockyard.socket would
have systemd-socket-activate || [ -x /lib/systemd/systemd-socket-activate ] || need+=(systemd)
# The reference dockerd (benchmarks, compatibility tests); it also brings a docker
# CLI where the machine has none.
have dockerd || need+=(docker.io)
have docker || need+=(docker.io)
# CNI plugins (bridge, host-local, portmap, loopback) for the CRI's pods and tests/cri; Debian puts
# them in /usr/lib/cni. containerd: the reference CRI runtime of the side-by-side figures.
[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need+=(containernetworking-plugins)
have containerd || need+=(containerd)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
