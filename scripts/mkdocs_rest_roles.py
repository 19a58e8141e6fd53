"""A griffe extension for the docs site: reST roles in docstrings read as Markdown.

mqkit's docstrings name other objects with Sphinx roles (``:class:`Unavailable```,
``:meth:`Consumer.run```, ``:mod:`mqkit.aio```), which Markdown would print literally.
This extension (``mkdocs.yml``: the python handler's ``extensions``) rewrites each role
into inline code that links to its object in the API reference when the reference has
one: the link is an optional autorefs reference (``mkdocs build --strict`` does not fail
on a name that has no page, such as :class:`logging.NullHandler`, which stays code).

A short name is looked up in the face the docstring belongs to: in :mod:`mqkit.aio` or
:mod:`mqkit.driver` when that module defines the name itself (``Consumer`` in an asyncio
docstring is ``mqkit.aio.Consumer``), else as ``mqkit.<name>`` (the public namespace that
documents the shared errors, ``Message``, codecs); a dotted name starting with ``mqkit``
is taken as is; ``~`` (show the last part only), a leading ``.`` and a trailing ``()``
are honoured. The rewrite runs once the package is loaded, so every face is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from griffe import Alias, Extension, Module, Object

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|exc|data|obj|const):`([^`]+)`")
_FACES = ("mqkit.aio", "mqkit.driver")


def _owned(face: Module) -> frozenset[str]:
    """The public names ``face`` defines itself (not the objects it re-exports)."""
    names = set()
    for name, member in face.members.items():
        target = member.target_path if isinstance(member, Alias) else member.path
        if not name.startswith("_") and target.startswith(face.path + "."):
            names.add(name)
    return frozenset(names)


def rewrite(text: str, face: str = "mqkit", owned: frozenset[str] = frozenset(),
            public: frozenset[str] | None = None) -> str:
    """``text`` with every reST role replaced by code, an optional link to its object.

    ``owned``: the names ``face`` defines itself; ``public``: mqkit's public names (others,
    such as ``TypeError``, stay plain code; ``None`` links every name).
    """

    def render(match: re.Match[str]) -> str:
        target = match.group(1).strip()
        short = target.startswith("~")
        target = target.lstrip("~.").removesuffix("()")
        shown = target.rsplit(".", 1)[-1] if short else target
        code = f"<code>{shown}</code>"
        head = target.split(".", 1)[0]
        if not head.isidentifier():
            return code
        if head == "mqkit":
            identifier = target
        elif head in owned:
            identifier = f"{face}.{target}"
        elif public is None or head in public:
            identifier = f"mqkit.{target}"
        else:
            return code
        return f'<autoref identifier="{identifier}" optional>{code}</autoref>'

    return _ROLE.sub(render, text)


def _walk(obj: Object) -> Iterator[Object]:
    yield obj
    for member in obj.members.values():
        if not isinstance(member, Alias):
            yield from _walk(member)


class RestRoles(Extension):
    """Rewrites the reST roles of every docstring of the loaded package (see the module)."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        if pkg.name != "mqkit":
            return
        faces = {path: _owned(pkg.get_member(path.split(".", 1)[1])) for path in _FACES}
        # __all__ plus the public subpackages (``mqkit.aio``); imports such as logging are not
        public = frozenset(str(n) for n in pkg.exports or ()) | {
            n for n, m in pkg.members.items()
            if not isinstance(m, Alias) and m.is_module and not n.startswith("_")}
        for obj in _walk(pkg):
            if obj.docstring is None or ":" not in obj.docstring.value:
                continue
            face = next((f for f in faces if obj.path == f or obj.path.startswith(f + ".")),
                        "mqkit")
            obj.docstring.value = rewrite(obj.docstring.value, face,
                                          faces.get(face, frozenset()), public)
