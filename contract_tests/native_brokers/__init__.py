"""The native test brokers ``scripts/brokers`` runs on loopback: RabbitMQ, Kafka (KRaft),
NATS (JetStream), Redis and two moto servers (``sqs``, and ``sqs-auth`` with IAM).

Standard library only (it runs on a fresh machine before any dependency is installed).
Modules: :mod:`.ports` (the port/URL table, also what ``contract_tests.brokers`` reads),
:mod:`.config` (this run's settings from the environment), :mod:`.supervisor` (processes and
readiness), :mod:`.install` (apt), one module per broker, :mod:`.cli` (the sub-commands).
Importing the package or :mod:`.ports` reads no environment and never exits; the other
modules read their settings at import (:mod:`.config`).
"""
