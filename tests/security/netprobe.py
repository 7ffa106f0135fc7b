"""Static network probes for containers (busybox has neither a raw-packet tool nor a UDP server).

``rawprobe``: from inside a container, a packet to 127.0.0.1 sent through the gateway.

``rawprobe IFNAME GATEWAY_MAC udp|tcp PORT`` writes an Ethernet frame on IFNAME (with CAP_NET_RAW, which
containers have by default) addressed to the gateway's MAC, with the container's address as source and
127.0.0.1:PORT as destination: what a hostile container sends to reach a service bound to the host's
loopback (the CVE-2020-8558 class). For udp it sends three datagrams; for tcp a SYN, then it watches
the interface for two seconds and prints ``synack`` if the host answered (a listener was reached).

``udpecho PORT``: sends every datagram back to where it came from, for ever.

Both built from C at test time.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

_RAWPROBE = r"""
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static unsigned short csum(const void *data, size_t len, unsigned long sum) {
    const unsigned char *p = data;
    for (; len > 1; len -= 2, p += 2) sum += (p[0] << 8) | p[1];
    if (len) sum += p[0] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return htons(~sum & 0xffff);
}

static unsigned long pseudo(unsigned int src, unsigned int dst, int proto, int len) {
    unsigned long s = 0;
    s += (ntohl(src) >> 16) + (ntohl(src) & 0xffff) + (ntohl(dst) >> 16) + (ntohl(dst) & 0xffff);
    return s + proto + len;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: rawprobe IFNAME GATEWAY_MAC udp|tcp PORT\n"); return 2; }
    int tcp = strcmp(argv[3], "tcp") == 0;
    unsigned short dport = atoi(argv[4]), sport = 40000 + getpid() % 20000;
    unsigned char gw[6];
    if (sscanf(argv[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &gw[0], &gw[1], &gw[2], &gw[3], &gw[4], &gw[5]) != 6) {
        fprintf(stderr, "bad mac\n"); return 2;
    }
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
    if (fd < 0) { perror("socket"); return 1; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) { perror("SIOCGIFINDEX"); return 1; }
    int ifindex = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) { perror("SIOCGIFHWADDR"); return 1; }
    unsigned char mine[6];
    memcpy(mine, ifr.ifr_hwaddr.sa_data, 6);
    int ufd = socket(AF_INET, SOCK_DGRAM, 0);
    if (ioctl(ufd, SIOCGIFADDR, &ifr) < 0) { perror("SIOCGIFADDR"); return 1; }
    unsigned int src = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr, dst = htonl(0x7f000001);

    unsigned char frame[128];
    memset(frame, 0, sizeof frame);
    memcpy(frame, gw, 6);
    memcpy(frame + 6, mine, 6);
    frame[12] = 0x08; frame[13] = 0x00;
    unsigned char *ip = frame + 14, *l4 = ip + 20;
    int l4len;
    if (tcp) {
        l4len = 20;
        l4[0] = sport >> 8; l4[1] = sport & 0xff; l4[2] = dport >> 8; l4[3] = dport & 0xff;
        l4[7] = 1;              /* sequence number */
        l4[12] = 5 << 4;        /* header length */
        l4[13] = 0x02;          /* SYN */
        l4[14] = 0xff; l4[15] = 0xff;
    } else {
        const char *payload = "localnet-probe";
        l4len = 8 + strlen(payload);
        l4[0] = sport >> 8; l4[1] = sport & 0xff; l4[2] = dport >> 8; l4[3] = dport & 0xff;
        l4[4] = l4len >> 8; l4[5] = l4len & 0xff;
        memcpy(l4 + 8, payload, strlen(payload));
    }
    unsigned short c = csum(l4, l4len, pseudo(src, dst, tcp ? 6 : 17, l4len));
    memcpy(l4 + (tcp ? 16 : 6), &c, 2);
    ip[0] = 0x45; ip[8] = 64; ip[9] = tcp ? 6 : 17;
    ip[2] = (20 + l4len) >> 8; ip[3] = (20 + l4len) & 0xff;
    memcpy(ip + 12, &src, 4); memcpy(ip + 16, &dst, 4);
    c = csum(ip, 20, 0);
    memcpy(ip + 10, &c, 2);

    struct sockaddr_ll to;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET; to.sll_ifindex = ifindex; to.sll_halen = 6;
    memcpy(to.sll_addr, gw, 6);
    for (int i = 0; i < (tcp ? 1 : 3); i++) {
        if (sendto(fd, frame, 14 + 20 + l4len, 0, (struct sockaddr *)&to, sizeof to) < 0) { perror("sendto"); return 1; }
    }
    if (!tcp) return 0;
    struct timeval tv = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    time_t end = time(NULL) + 2;
    unsigned char buf[2048];
    while (time(NULL) <= end) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 14 + 20 + 20) continue;
        unsigned char *rip = buf + 14, *rt = rip + (rip[0] & 0x0f) * 4;
        if (rip[9] != 6 || memcmp(rip + 12, &dst, 4) != 0) continue;
        if (((rt[0] << 8) | rt[1]) == dport && ((rt[2] << 8) | rt[3]) == sport && (rt[13] & 0x12) == 0x12) {
            printf("synack\n");
            return 0;
        }
    }
    return 0;
}
"""

_UDPECHO = r"""
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: udpecho PORT\n"); return 2; }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    if (bind(fd, (struct sockaddr *)&me, sizeof me) < 0) { perror("bind"); return 1; }
    char buf[65536];
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &len);
        if (n >= 0) sendto(fd, buf, n, 0, (struct sockaddr *)&peer, len);
    }
}
"""

_built: dict[str, str] = {}


def netprobe_dir() -> str:
    """Directory holding the static ``rawprobe`` and ``udpecho`` (to bind-mount), compiled once per process."""
    if "dir" not in _built:
        d = tempfile.mkdtemp(prefix="dynetprobe")
        for name, source in (("rawprobe", _RAWPROBE), ("udpecho", _UDPECHO)):
            src = os.path.join(d, name + ".c")
            with open(src, "w") as f:
                f.write(source)
            subprocess.run(["gcc", "-O2", "-static", "-o", os.path.join(d, name), src], check=True,
                           capture_output=True)
            os.unlink(src)
        _built["dir"] = d
    return _built["dir"]
