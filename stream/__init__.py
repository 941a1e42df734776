"""fraudstream: streaming fraud, brushing and churn detection on Kafka."""

__version__ = "0.1.0"
