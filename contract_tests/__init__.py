"""mqkit's shared contract suite: the behaviours of CONTRACT.md, per backend and per face.

Run it here with ``pytest contract_tests`` (see ``README.md`` beside this file), or
against your own adapter as described in ``docs/contract.md``.
"""
