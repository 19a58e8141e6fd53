"""mqkit's asyncio face: the same names as :mod:`mqkit`, awaited.

    async with mqkit.aio.connect("nats://localhost:4222") as client:
        async with client.producer("orders") as producer:
            await producer.send(b"...")
"""

from ._admin import AsyncAdmin as Admin
from ._client import DEAD_LETTER_GROUP, connect
from ._client import AsyncClient as Client
from ._consumer import AsyncConsumer as Consumer
from ._consumer import RunStats
from ._producer import AsyncProducer as Producer
from ._received import AsyncReceivedMessage as ReceivedMessage

__all__ = ["DEAD_LETTER_GROUP", "Admin", "Client", "Consumer", "Producer", "ReceivedMessage",
           "RunStats", "connect"]
