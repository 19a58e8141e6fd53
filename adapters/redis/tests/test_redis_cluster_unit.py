"""redis+cluster:// without a server: URL and option checks naming the argument, key names
(a hash tag per topic in cluster mode, unchanged otherwise), step routing, and secrets kept
out of reprs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mqkit_redis._cluster import CLUSTER_PORT, cluster_args, slot, step_key
from mqkit_redis._link import Known, client_kwargs, sentinel_args
from mqkit_redis._names import Names
from mqkit_redis._options import RedisOptions

import mqkit
from mqkit.driver import URL, ConnectParams, parse_options

SECRET = "cl-Pw/9?#"
braceless = st.text(st.characters(blacklist_characters="{}", blacklist_categories=["Cs"]),
                    min_size=1, max_size=40)


def _args(text: str) -> tuple[ConnectParams, RedisOptions]:
    url = URL.parse(text)
    params = ConnectParams(url, dict(url.query), 5.0)
    return params, parse_options(RedisOptions, params.options)


def _cluster(text: str) -> object:
    """What the link checks, in its order: Sentinel's options, then the cluster's."""
    params, options = _args(text)
    sentinel_args(params, options)
    return cluster_args(params, options, client_kwargs(params, options))


def test_hosts_are_seeds_with_the_default_port() -> None:
    params, options = _args("redis+cluster://app:pw@a:7001,b?client_name=x")
    c = cluster_args(params, options, client_kwargs(params, options))
    assert c is not None
    assert c.hosts == [("a", 7001), ("b", CLUSTER_PORT)]
    assert not {"host", "port", "db"} & set(c.kwargs)
    assert (c.kwargs["username"], c.kwargs["password"]) == ("app", "pw")
    assert c.kwargs["client_name"] == "x" and c.kwargs["protocol"] == 2
    assert "pw" not in repr(c)


def test_plain_and_sentinel_urls_are_not_clusters() -> None:
    assert _cluster("redis://h:6379/0") is None
    assert _cluster("redis+sentinel://h/0?service=m") is None


@pytest.mark.parametrize(("url", "argument"), [
    ("redis+cluster://a:7000/2", "database"),
    ("redis+cluster://a:7000?mode=pubsub", "mode"),
    ("redis+cluster://a:7000?service=m", "service"),
])
def test_bad_cluster_urls_name_the_argument(url: str, argument: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match=argument):
        _cluster(url)


@given(st.integers(min_value=1, max_value=15))
def test_any_database_but_0_is_refused(db: int) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="database"):
        _cluster(f"redis+cluster://a:7000/{db}")


@given(braceless, st.sampled_from(["", "app:", "x-"]), st.text(min_size=1, max_size=10))
def test_every_key_of_a_topic_hashes_to_its_slot(topic: str, prefix: str,
                                                 group: str) -> None:
    names = Names(prefix, cluster=True)
    stream = names.stream(topic)
    keys = [stream, names.retry(topic, group), names.delayed(topic), *names.bands(topic)]
    keys += [names.retry_of(b, group) for b in names.bands(topic)]
    keys += [names.delayed_of(b) for b in names.bands(topic)]
    assert stream == f"{prefix}{{{topic}}}"
    assert {slot(k) for k in keys} == {slot(topic)}
    assert names.topic(stream) == topic
    assert names.topic(names.band(topic, 4)) is None  # a band is not a topic


@given(braceless, st.sampled_from(["", "app:"]))
def test_single_node_names_are_unchanged(topic: str, prefix: str) -> None:
    names = Names(prefix)
    assert names.stream(topic) == prefix + topic
    assert names.retry(topic, "g") == f"{prefix}{topic}:mqkit-retry:g"
    assert names.delayed(topic) == f"{prefix}{topic}:mqkit-delayed"


@given(st.text(max_size=10), st.sampled_from("{}"), st.text(max_size=10))
def test_a_topic_with_a_brace_is_refused_naming_it(head: str, brace: str, tail: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="topic"):
        Names(cluster=True).stream(head + brace + tail)


@given(st.text(max_size=10), st.sampled_from("{}"), st.text(max_size=10))
def test_a_prefix_with_a_brace_is_refused_naming_it(head: str, brace: str,
                                                    tail: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="key_prefix"):
        Names(head + brace + tail, cluster=True)
    Names(head + brace + tail)  # single node: any prefix, as before


@given(st.text(max_size=8), st.sampled_from("{}"))
def test_connect_refuses_a_braced_prefix_before_reaching_any_seed(head: str,
                                                                  brace: str) -> None:
    """Bad options fail at once, typed and named, whatever the (unreachable) seeds."""
    with pytest.raises(mqkit.ConfigurationError, match="key_prefix"):
        mqkit.connect("redis+cluster://127.0.0.1:23579", key_prefix=head + brace,
                      connect_timeout=0.5)


@given(st.sampled_from(["pubsub"]), braceless)
def test_connect_refuses_pubsub_mode(mode: str, prefix: str) -> None:
    with pytest.raises(mqkit.ConfigurationError, match="mode"):
        mqkit.connect("redis+cluster://127.0.0.1:23579", mode=mode, key_prefix=prefix,
                      connect_timeout=0.5)


def test_steps_are_routed_by_their_first_key() -> None:
    assert step_key([("MULTI",), ("XGROUP", "CREATE", "{t}", "g", "$", "MKSTREAM"),
                     ("EXEC",)]) == "{t}"
    assert step_key([("EVALSHA", "sha", 2, "{t}", "{t}:mqkit-delayed", 1)]) == "{t}"
    assert step_key([("XREADGROUP", "GROUP", "g", "c", "COUNT", 5, "BLOCK", 10,
                      "STREAMS", "{t}:mqkit-p9", "{t}", ">", ">")]) == "{t}:mqkit-p9"
    assert step_key([("XINFO", "GROUPS", "{t}")]) == "{t}"
    assert step_key([("SCRIPT", "LOAD", "return 1"), ("INFO", "persistence")]) is None
    assert step_key([("SCAN", "0", "MATCH", "*")]) is None


def test_the_password_stays_out_of_reprs_and_errors() -> None:
    quoted = SECRET.replace("/", "%2F").replace("?", "%3F").replace("#", "%23")
    params, options = _args(f"redis+cluster://app:{quoted}@127.0.0.1:23579")
    c = cluster_args(params, options, client_kwargs(params, options))
    assert SECRET not in repr(c) and SECRET not in str(params.url)
    with pytest.raises(mqkit.ConfigurationError) as info:
        _cluster(f"redis+cluster://app:{quoted}@127.0.0.1:23579/3")
    assert SECRET not in str(info.value)


def test_restarts_are_told_apart_per_node_and_recreate_the_nodes_keys() -> None:
    known = Known(redeclare=True)
    known.remember("{a}", "g")
    known.remember("{b}", "g")
    mine = {"{a}"}.__contains__
    assert known.connected(b"run_id:1", "n1:1", mine) == []  # first sight
    assert known.connected(b"run_id:2", "n2:1", mine) == []  # another node: not a restart
    assert known.connected(b"run_id:1", "n1:1", mine) == []
    again = known.connected(b"run_id:9", "n1:1", mine)  # n1 restarted
    assert again == [("XGROUP", "CREATE", "{a}", "g", "0", "MKSTREAM")]
    assert known.connected(b"run_id:9", "n1:1", mine) == []  # done once
    known.reset("n1:1")  # re-creating failed (CLUSTERDOWN): the next connection does it
    assert known.connected(b"run_id:9", "n1:1", mine) == again
