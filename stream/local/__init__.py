"""The local stack: broker, up, live traffic, alert tail, worker processes."""
