"""mqkit's blocking face, generated from :mod:`mqkit.aio` by ``scripts/unasync.py``."""
