"""The plugin contract: one hook, whose argument is a `register` callback.

A plugin module implements it and is named in its distribution's entry points::

    # pyproject.toml
    [project.entry-points.manurestore]
    my_ops = "my_package.ops"

    # my_package/ops.py
    from manurestore.hookspecs import hookimpl

    @hookimpl
    def manurestore_register_degradations(register):
        register(MyDegradation)
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "manurestore"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def manurestore_register_degradations(register: Callable[[type], None]) -> None:
    """Call `register(cls)` once for each Degradation subclass the plugin provides."""
