"""The smolmachines backend: the agent in a libkrun micro-VM driven by the ``smolvm`` CLI.

The sidecar bundle (proxy, DLP, git-gate) still runs on Docker; the VM's only allowed egress is
the bundle's single address. ``smolvm`` is the thin CLI wrapper, ``bottle`` the handle,
``launch`` the image pipeline and the launch itself, ``local_registry`` the throwaway registry
the pack step pulls from, ``cleanup`` finds orphan machines.
"""
