"""A pytest plugin registering the NATS adapter in-process (``-p nats_register``).

For running the contract suite before the ``nats`` entry point is in pyproject.toml.
"""

from mqkit_nats import plugin

from mqkit._registry import register

register(plugin)
