"""Draw a ``python -m benchmarks`` results file: mqkit beside each peer, per backend.

    python -m benchmarks.plot build/bench/results.json docs/img/performance.png

One panel per backend; in each, a group of bars per phase and message size (send 100 B,
send 10 KiB, receive 100 B, receive 10 KiB), one bar per side (mqkit blocking, mqkit
asyncio, the raw client, kombu, faststream) at its median msgs/s over the rounds, with the
min-max spread as an error bar. matplotlib is imported only here (the ``bench`` extra).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BACKENDS = ("rabbitmq", "kafka", "sqs", "redis", "nats")
SIDES = ("mqkit", "mqkit-aio", "raw", "kombu", "faststream")
NAMES = {"mqkit": "mqkit", "mqkit-aio": "mqkit asyncio", "raw": "raw client",
         "kombu": "kombu", "faststream": "faststream"}
COLOURS = {"mqkit": "#1f77b4", "mqkit-aio": "#6baed6", "raw": "#7f7f7f",
           "kombu": "#2ca02c", "faststream": "#ff7f0e"}


def _size(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def _ratio(rows: list[dict[str, Any]], phase: str, size: int) -> str:
    """The mqkit/raw ratio of medians of one group, as a second tick-label line."""
    got = {r["side"]: r["median"] for r in rows if (r["phase"], r["size"]) == (phase, size)}
    if got.get("mqkit") and got.get("raw"):
        return f"\nmqkit/raw {got['mqkit'] / got['raw']:.2f}"
    return ""


def render(data: dict[str, Any], out: Path) -> None:
    """Write the figure of ``data`` (a results.json document) to ``out`` (PNG, SVG...)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["results"]
    backends = [b for b in BACKENDS if any(r["backend"] == b for r in rows)]
    fig, axes = plt.subplots(len(backends), 1, figsize=(11, 2.6 * len(backends)),
                             squeeze=False)
    for ax, backend in zip(axes[:, 0], backends, strict=True):
        mine = [r for r in rows if r["backend"] == backend]
        groups = sorted({(r["phase"], r["size"]) for r in mine},
                        key=lambda g: (g[0] != "send", g[1]))
        sides = [s for s in SIDES if any(r["side"] == s for r in mine)]
        width = 0.8 / len(sides)
        for i, side in enumerate(sides):
            xs, heights, low, high = [], [], [], []
            for g, (phase, size) in enumerate(groups):
                hit = [r for r in mine if (r["phase"], r["size"], r["side"]) ==
                       (phase, size, side)]
                if not hit:
                    continue
                r = hit[0]
                xs.append(g + (i - (len(sides) - 1) / 2) * width)
                heights.append(r["median"])
                low.append(r["median"] - r["min"])
                high.append(r["max"] - r["median"])
            ax.bar(xs, heights, width, yerr=[low, high], capsize=2, label=NAMES[side],
                   color=COLOURS[side])
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{phase} {_size(size)}{_ratio(mine, phase, size)}"
                            for phase, size in groups])
        ax.set_ylabel("msgs/s")
        ax.set_title(backend, loc="left", fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    when = data.get("started", "")[:10]
    cpus = data.get("machine", {}).get("cpus")
    fig.suptitle(f"mqkit beside the raw clients, kombu and faststream "
                 f"(median of {data['args']['rounds']} rounds, min-max bars; {when}, "
                 f"{cpus} CPUs)", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m benchmarks.plot RESULTS.json OUT.png")
    render(json.loads(Path(args[0]).read_text(encoding="utf-8")), Path(args[1]))
    print(f"wrote {args[1]}")


if __name__ == "__main__":
    main()
