"""mqkit's fault suite (issue #18): clustered brokers on loopback, real faults (SIGKILL of a
node's process group, a TCP cut), and a producer and consumers in separate processes; see
``docs/reliability.md`` for what it runs and measures and ``scripts/clusters`` to start a
topology by hand."""
