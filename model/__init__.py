"""The event-sequence model: tokenization, training, export, bundles and scorers."""
