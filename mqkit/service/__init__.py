"""mqkit's service layer: an :class:`App` of typed handlers, and :class:`TestApp` to test it.

::

    from dataclasses import dataclass
    from mqkit.service import App

    app = App("amqp://localhost")          # no URL: $MQKIT_URL, else memory://

    @dataclass
    class Order:
        id: int
        qty: int

    @app.handler("orders", group="billing", output="invoices")
    async def bill(order: Order) -> dict[str, int]:
        return {"order": order.id, "amount": 10 * order.qty}

    app.run_sync()                         # until SIGINT/SIGTERM, then a graceful drain

Importing :mod:`mqkit` does not import this package (it needs asyncio); import it as
``mqkit.service``. See ``docs/service.md``.
"""

from ._app import App
from ._handlers import HandlerSpec, HandlerStats
from ._testing import DeadLetter, TestApp

__all__ = ["App", "DeadLetter", "HandlerSpec", "HandlerStats", "TestApp"]
