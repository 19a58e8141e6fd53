"""mqkit's shared contract suite: the behaviours of CONTRACT.md, per backend and per face.

Run it here with ``pytest contract_tests`` (see ``README.md`` beside this file), or,
installed from the wheel as ``mqkit_contract``, against your own adapter with ``pytest
--pyargs mqkit_contract`` as described in ``docs/contract.md``. Its modules import one
another relatively (never as ``contract_tests``), so the folder works under either name.
"""
