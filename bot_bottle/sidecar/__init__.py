"""What runs inside the sidecar image: the egress proxy and, later, git-gate and supervise.

Modules under this package import only the standard library, mitmproxy (inside ``addon.py``
alone) and each other: the sidecar image ships this package without the rest of bot_bottle.
"""
