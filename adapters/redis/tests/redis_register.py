"""A pytest plugin registering the Redis adapter in-process (``-p redis_register``).

For running the contract suite before the ``redis`` entry point is in pyproject.toml.
"""

from mqkit_redis import plugin

from mqkit._registry import register

register(plugin)
