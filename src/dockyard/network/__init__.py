"""Container networking: IPAM, the bridge driver, netns and veths, published ports, embedded DNS."""

import logging

import pyroute2  # noqa: F401  (its import resets its logger's level: set ours after it)

# pyroute2 logs every netlink message at DEBUG: far too much for a daemon's debug log
logging.getLogger("pyroute2").setLevel(logging.WARNING)
