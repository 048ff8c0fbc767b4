"""Provisioners: each is a function of a ``Bottle`` (and plan data) using only ``exec``/``cp_in``."""
