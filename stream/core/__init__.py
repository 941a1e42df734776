"""Schema, events, per-user and per-seller state, alerts, time: no Faust, no Kafka, no numpy."""
