"""The worker: Faust app, agents, tables, Kafka output, settings, security, metrics."""
