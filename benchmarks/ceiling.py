"""The ceiling: each broker's own load tool, at the benchmark's message size and batch.

    eval "$(scripts/brokers env)"
    python benchmarks/ceiling.py                         # every broker whose tool can be had
    python benchmarks/ceiling.py --backends redis,nats --count 20000
    python -m benchmarks --ceiling                        # the same, through the entry point

How far the Python clients (mqkit's and the raw ones) are from what the broker itself can
take, with the broker vendors' own tools, sending then consuming ``--count`` messages of
``--size`` bytes (100 B) in batches of ``--batch`` (100), one client each:

* **Redis**: ``redis-benchmark`` (Debian package redis-tools) with ``-c 1 -P <batch>``:
  ``XADD <stream> * body <size B>`` (pipelines of 100, as the raw redis-py side), then
  ``XREADGROUP GROUP g c COUNT <batch> NOACK STREAMS <stream> >`` (100 messages a
  request, and NOACK: the tool cannot send the ids back in an XACK, so this consume is
  at-most-once, an upper bound on the acked consume).
* **Kafka**: ``ProducerPerformance`` and ``ConsumerPerformance`` from the
  ``org.apache.kafka:kafka-tools`` jar of the broker's version (fetched with Maven beside
  the broker's jars), into a topic of 3 partitions, ``acks=all``, idempotence,
  ``linger.ms=5``, ``batch.size=262144`` (the settings of the raw side); the producer does
  not wait per 100 (it sends asynchronously), the consumer auto-commits. Its consume
  figure is the tool's ``fetch.nMsg.sec`` (without the group join; with it is printed too).
* **RabbitMQ**: PerfTest (``com.rabbitmq:perf-test``, with Maven) on a durable quorum
  queue, persistent messages, at most ``--batch`` unconfirmed publishes (``-c``: a window,
  not publish-100-then-wait), then one consumer with ``--qos`` ``--batch`` and a
  multiple-ack every ``--batch`` messages. The figure is the tool's "rate avg".
* **NATS**: the ``nats`` CLI's ``bench js pub async`` (``--batch``, file storage) and
  ``bench js fetch`` (a durable pull consumer, batches of ``--batch``, explicit acks),
  built with ``go install github.com/nats-io/natscli/nats@v0.5.0``.

Tools are installed on demand under ``~/.cache/mqkit/tools`` (``MQKIT_TOOLS_CACHE``);
nothing is installed into the tree. A tool that cannot be had is reported and its broker
skipped. The figures are printed beside mqkit's and the raw client's from a side-by-side
run's JSON (``--results``, default ``build/bench/results.json``) when there is one.
Everything the tools create is deleted. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # contract_tests.native_brokers: the Kafka version and jars
    sys.path.insert(0, str(ROOT))

import mqkit  # noqa: E402

BACKENDS = ("rabbitmq", "kafka", "redis", "nats")
PERF_TEST_VERSION = "2.22.1"
NATSCLI_VERSION = "v0.5.0"
JAVA_HEAP = "-Xmx256m"
TOOL_TIMEOUT = 300  # seconds one tool run may take


class Unavailable(Exception):
    """The tool cannot be had here (not installed and not installable)."""


@dataclass(frozen=True)
class Row:
    """One tool figure: ``phase`` is "send" or "consume"."""

    backend: str
    tool: str
    phase: str
    count: int
    rate: float
    settings: str
    rates: tuple[float, ...] = ()  # every round's figure; ``rate`` is their median


def tools_dir() -> Path:
    """Where the tools are kept (``MQKIT_TOOLS_CACHE``, default ~/.cache/mqkit/tools)."""
    default = Path.home() / ".cache" / "mqkit" / "tools"
    return Path(os.environ.get("MQKIT_TOOLS_CACHE") or default).expanduser()


def _run(argv: list[str], *, env: dict[str, str] | None = None,
         timeout: float = TOOL_TIMEOUT) -> str:
    """Run a tool; its stdout and stderr together. A non-zero exit raises."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                          check=False)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} exited {proc.returncode}: {out[-1500:]}")
    return out


def _mvn_copy(pom: str, target: Path) -> None:
    """Resolve ``pom``'s dependencies with Maven into ``target`` (atomically)."""
    if (target / ".complete").exists():
        return
    if shutil.which("mvn") is None:
        raise Unavailable("mvn not found (Maven fetches the jars from Maven Central)")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "pom.xml").write_text(pom, encoding="utf-8")
    print(f"  installing {target.name} with Maven into {target.parent} ...", flush=True)
    _run(["mvn", "-q", "-B", "-f", str(partial / "pom.xml"),
          "dependency:copy-dependencies", "-DincludeScope=runtime",
          f"-DoutputDirectory={partial / 'lib'}"], timeout=900)
    (partial / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def _pom(group: str, artifact: str, version: str, *, transitive: bool = True) -> str:
    """A throwaway pom whose only dependency is ``group:artifact:version``."""
    exclusions = ("<exclusions><exclusion><groupId>*</groupId><artifactId>*</artifactId>"
                  "</exclusion></exclusions>") if not transitive else ""
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.mqkit.tools</groupId><artifactId>{artifact}-tool</artifactId>
  <version>0</version><packaging>pom</packaging>
  <dependencies><dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>
    <version>{version}</version>{exclusions}</dependency></dependencies>
  <build><pluginManagement><plugins><plugin><groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId><version>3.8.1</version>
  </plugin></plugins></pluginManagement></build>
</project>
"""


def _java() -> str:
    """The ``java`` on PATH."""
    java = shutil.which("java")
    if java is None:
        raise Unavailable("java not found")
    return java


# -- Redis -------------------------------------------------------------------------------

def redis_ceiling(url: str, count: int, size: int, batch: int) -> list[Row]:
    """``redis-benchmark``: pipelined XADD, then XREADGROUP COUNT batch NOACK."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        raise Unavailable("redis-benchmark not found (Debian package redis-tools)")
    import redis
    parsed = mqkit.URL.parse(url)
    r = redis.Redis.from_url(url)
    key = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    base = [tool, "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 6379),
            "-c", "1", "-P", str(batch), "-q"]
    if parsed.username:
        base += ["--user", parsed.username]
    if parsed.password:
        base += ["-a", parsed.password.reveal()]
    database = (parsed.path or "").strip("/")
    if database:
        base += ["--dbnum", database]

    def rate(out: str) -> float:
        found = re.findall(r"([\d.]+) requests per second", out)
        if not found:
            raise RuntimeError(f"no rate in redis-benchmark's output: {out[-500:]}")
        return float(found[-1])

    try:
        r.xgroup_create(key, "g", id="0", mkstream=True)
        send = rate(_run([*base, "-n", str(count), "XADD", key, "*", "body", "x" * size]))
        reads = max(1, count // batch)
        read = rate(_run([*base, "-n", str(reads), "XREADGROUP", "GROUP", "g", "c",
                          "COUNT", str(batch), "NOACK", "STREAMS", key, ">"]))
        left = r.xinfo_groups(key)[0].get("lag")
    finally:
        r.delete(key)
        r.close()
    note = f"XREADGROUP COUNT {batch} NOACK, {reads:,} requests"
    if left:
        note += f" ({left} not read)"
    return [Row("redis", "redis-benchmark", "send", count, send,
                f"XADD, -c 1 -P {batch}"),
            Row("redis", "redis-benchmark", "consume", reads * batch, read * batch, note)]


# -- Kafka -------------------------------------------------------------------------------

def kafka_classpath() -> str:
    """The broker's jars (scripts/brokers) plus the kafka-tools jar of the same version."""
    from contract_tests.native_brokers import kafka as native
    version = native.version()
    broker_lib = native.lib()
    if not (broker_lib / ".complete").exists():
        raise Unavailable(f"the Kafka {version} jars are not in {broker_lib} "
                          "(scripts/brokers up installs them)")
    target = tools_dir() / f"kafka-tools-{version}"
    _mvn_copy(_pom("org.apache.kafka", "kafka-tools", version, transitive=False), target)
    return f"{target / 'lib'}/*:{broker_lib}/*"


def kafka_ceiling(url: str, count: int, size: int, batch: int) -> list[Row]:
    """ProducerPerformance, then ConsumerPerformance on a new topic of 3 partitions."""
    java, classpath = _java(), kafka_classpath()
    servers = ",".join(f"{host}:{port or 9092}" for host, port in mqkit.URL.parse(url).hosts)
    topic = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    props = ["acks=all", "enable.idempotence=true", "linger.ms=5", "batch.size=262144"]
    with mqkit.connect(url, partitions=3) as client:
        client.admin.create_topic(topic)
        try:
            out = _run([java, JAVA_HEAP, "-cp", classpath,
                        "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
                        "--num-records", str(count), "--record-size", str(size),
                        "--throughput", "-1", "--producer-props",
                        f"bootstrap.servers={servers}", *props])
            sent = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", out)
            if not sent:
                raise RuntimeError(f"no rate in ProducerPerformance's output: {out[-500:]}")
            out = _run([java, JAVA_HEAP, "-cp", classpath,
                        "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server",
                        servers, "--topic", topic, "--messages", str(count), "--group",
                        f"{topic}-g", "--timeout", "60000"])
            lines = [ln for ln in out.splitlines() if re.match(r"^\d{4}-\d\d-\d\d ", ln)]
            if not lines:
                raise RuntimeError(f"no figures in ConsumerPerformance's output: {out[-500:]}")
            fields = [f.strip() for f in lines[-1].split(",")]
            consumed, fetch_rate = int(fields[4]), float(fields[9])
            print(f"  (ConsumerPerformance: {float(fields[5]):,.0f} msgs/s with the group "
                  f"join of {fields[6]} ms)", flush=True)
        finally:
            client.admin.delete_topic(topic)
    return [Row("kafka", "ProducerPerformance", "send", int(sent[-1][0]), float(sent[-1][1]),
                "3 partitions, " + " ".join(props) + ", asynchronous"),
            Row("kafka", "ConsumerPerformance", "consume", consumed, fetch_rate,
                "fetch.nMsg.sec (the group join left out), auto-commit")]


# -- RabbitMQ ----------------------------------------------------------------------------

def perf_test_classpath() -> str:
    """PerfTest and its dependencies, fetched with Maven if absent."""
    target = tools_dir() / f"perf-test-{PERF_TEST_VERSION}"
    _mvn_copy(_pom("com.rabbitmq", "perf-test", PERF_TEST_VERSION), target)
    return f"{target / 'lib'}/*"


def rabbitmq_ceiling(url: str, count: int, size: int, batch: int) -> list[Row]:
    """PerfTest: one producer with confirms, then one consumer, on a quorum queue."""
    java, classpath = _java(), perf_test_classpath()
    queue = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    common = [java, JAVA_HEAP, "-cp", classpath, "com.rabbitmq.perf.PerfTest", "--uri", url,
              "--quorum-queue", "--queue", queue, "--routing-key", queue, "--time", "120"]

    def rate(out: str, which: str) -> float:
        found = re.findall(rf"{which} rate avg: (\d+) msg/s", out)
        if not found:
            raise RuntimeError(f"no {which} rate in PerfTest's output: {out[-500:]}")
        return float(found[-1])

    try:
        send = rate(_run([*common, "--producers", "1", "--consumers", "0",
                          "--pmessages", str(count), "--size", str(size),
                          "--confirm", str(batch), "--flag", "persistent"]), "sending")
        consume = rate(_run([*common, "--producers", "0", "--consumers", "1",
                             "--cmessages", str(count), "--qos", str(batch),
                             "--multi-ack-every", str(batch)]), "receiving")
    finally:
        import pika
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            connection.channel().queue_delete(queue)
        finally:
            connection.close()
    return [Row("rabbitmq", f"PerfTest {PERF_TEST_VERSION}", "send", count, send,
                f"quorum queue, persistent, --confirm {batch} (a window)"),
            Row("rabbitmq", f"PerfTest {PERF_TEST_VERSION}", "consume", count, consume,
                f"--qos {batch}, --multi-ack-every {batch}")]


# -- NATS --------------------------------------------------------------------------------

def nats_cli() -> str:
    """The ``nats`` CLI, built with ``go install`` into the tools directory if absent."""
    target = tools_dir() / "bin" / "nats"
    if target.exists():
        return str(target)
    go = shutil.which("go")
    if go is None:
        raise Unavailable("go not found (the nats CLI is built with go install)")
    print(f"  building the nats CLI {NATSCLI_VERSION} with go install ...", flush=True)
    env = dict(os.environ, GOBIN=str(target.parent), GOFLAGS="-mod=mod")
    try:
        _run([go, "install", f"github.com/nats-io/natscli/nats@{NATSCLI_VERSION}"], env=env,
             timeout=900)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"go install of natscli {NATSCLI_VERSION} failed: {exc}") from exc
    return str(target)


def nats_ceiling(url: str, count: int, size: int, batch: int) -> list[Row]:
    """``nats bench js pub async`` into a file stream, then ``bench js fetch``."""
    cli = nats_cli()
    parsed = mqkit.URL.parse(url)
    server = ["-s", f"nats://{parsed.host or '127.0.0.1'}:{parsed.port or 4222}"]
    if parsed.username:
        server += ["--user", parsed.username,
                   "--password", parsed.password.reveal() if parsed.password else ""]
    stream = f"bench-ceiling-{uuid.uuid4().hex[:8]}"

    def rate(out: str) -> float:
        found = re.findall(r"stats: ([\d,]+) msgs/sec", out)
        if not found:
            raise RuntimeError(f"no rate in nats bench's output: {out[-500:]}")
        return float(found[-1].replace(",", ""))

    try:
        send = rate(_run([cli, *server, "bench", "js", "pub", "async", f"{stream}.s",
                          "--stream", stream, "--create", "--storage", "file",
                          "--msgs", str(count), "--size", str(size), "--batch", str(batch),
                          "--no-progress"]))
        _run([cli, *server, "consumer", "add", stream, "c", "--pull", "--deliver=all",
              "--ack=explicit", "--defaults"])
        consume = rate(_run([cli, *server, "bench", "js", "fetch", "--stream", stream,
                             "--consumer", "c", "--msgs", str(count), "--batch", str(batch),
                             "--no-progress"]))
    finally:
        subprocess.run([cli, *server, "stream", "rm", stream, "-f"], capture_output=True,
                       check=False, timeout=60)
    return [Row("nats", f"nats bench {NATSCLI_VERSION}", "send", count, send,
                f"js pub async --batch {batch}, file stream"),
            Row("nats", f"nats bench {NATSCLI_VERSION}", "consume", count, consume,
                f"js fetch --batch {batch}, explicit acks")]


CEILINGS = {"redis": redis_ceiling, "kafka": kafka_ceiling, "rabbitmq": rabbitmq_ceiling,
            "nats": nats_ceiling}


# -- the table ---------------------------------------------------------------------------

def side_by_side(path: Path, size: int) -> dict[tuple[str, str, str], float]:
    """Medians of a side-by-side run's JSON: (backend, phase, side) -> msgs/s."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {(s["backend"], "consume" if s["phase"] == "receive" else s["phase"], s["side"]):
            s["median"] for s in data.get("results", []) if s["size"] == size}


def _spread(row: Row) -> str:
    """The median, and the min-max over the rounds when there were several."""
    if len(row.rates) < 2:
        return f"{row.rate:,.0f}"
    return f"{row.rate:,.0f} ({min(row.rates):,.0f}-{max(row.rates):,.0f})"


def combine(rounds: list[list[Row]]) -> list[Row]:
    """One row per (tool, phase): the median of the rounds' figures."""
    out: list[Row] = []
    for i, first in enumerate(rounds[0]):
        rates = tuple(r[i].rate for r in rounds if len(r) > i)
        out.append(replace(first, rate=statistics.median(rates), rates=rates))
    return out


def table(rows: list[Row], others: dict[tuple[str, str, str], float]) -> str:
    """The ceilings as a Markdown table, beside mqkit and the raw client when known."""
    lines = ["| backend | phase | broker's own tool | msgs/s | mqkit | raw client | "
             "mqkit/tool | raw/tool | tool settings |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mine, raw = others.get((r.backend, r.phase, "mqkit")), \
            others.get((r.backend, r.phase, "raw"))
        lines.append(
            f"| {r.backend} | {r.phase} | {r.tool} | {_spread(r)} | "
            f"{f'{mine:,.0f}' if mine else '—'} | {f'{raw:,.0f}' if raw else '—'} | "
            f"{f'{mine / r.rate:.2f}' if mine else '—'} | "
            f"{f'{raw / r.rate:.2f}' if raw else '—'} | {r.settings} |")
    return "\n".join(lines)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks --ceiling",
        description="Each broker's own load tool (redis-benchmark, Kafka's perf tools, "
                    "RabbitMQ PerfTest, nats bench) at the benchmark's size and batch.")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated; one whose MQKIT_TEST_<NAME>_URL is not set "
                             "is skipped")
    parser.add_argument("--count", type=int, default=50_000,
                        help="messages sent, then consumed, per broker (default 50000)")
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each tool; the table shows the median (min-max)")
    parser.add_argument("--results", default=str(ROOT / "build" / "bench" / "results.json"),
                        help="a side-by-side run's JSON, for the mqkit and raw columns")
    parser.add_argument("--json", default=str(ROOT / "build" / "bench" / "ceiling.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run every broker's tool whose URL is set, print the table, write the JSON."""
    args = _arguments(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    rows: list[Row] = []
    notes: list[str] = []
    for backend in (b.strip() for b in args.backends.split(",") if b.strip()):
        url = os.environ.get(f"MQKIT_TEST_{backend.upper()}_URL")
        if backend not in CEILINGS:
            notes.append(f"{backend}: no broker tool here")
            continue
        if not url:
            notes.append(f"{backend}: MQKIT_TEST_{backend.upper()}_URL not set, skipped")
            continue
        print(f"-- {backend}", flush=True)
        rounds: list[list[Row]] = []
        for _ in range(max(1, args.rounds)):
            try:
                got = CEILINGS[backend](url, args.count, args.size, args.batch)
            except (Unavailable, RuntimeError, subprocess.TimeoutExpired) as exc:
                note = f"{backend}: {type(exc).__name__}: {exc}"
                print("  SKIPPED " + note, flush=True)
                notes.append(note)
                break
            for row in got:
                print(f"  {row.backend:9} {row.phase:8} {row.tool:24} {row.count:>8} msgs "
                      f"{row.rate:>12,.0f} msgs/s   {row.settings}", flush=True)
            rounds.append(got)
        if rounds:
            rows += combine(rounds)
    others = side_by_side(Path(args.results), args.size)
    print()
    print(table(rows, others))
    for note in notes:
        print("note: " + note)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "args": {"count": args.count, "size": args.size, "batch": args.batch,
                 "rounds": args.rounds},
        "results_beside": args.results if others else None,
        "rows": [asdict(r) for r in rows], "notes": notes,
    }, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
