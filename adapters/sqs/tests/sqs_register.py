"""A pytest plugin registering the SQS adapter in-process (``-p sqs_register``).

For running the contract suite before the ``sqs`` entry point is in pyproject.toml.
"""

from mqkit_sqs import plugin

from mqkit._registry import register

register(plugin)
