"""A pytest plugin registering the Kafka adapter in-process (``-p kafka_register``).

For running the contract suite before the ``kafka`` entry point is in pyproject.toml.
"""

from mqkit_kafka import plugin

from mqkit._registry import register

register(plugin)
