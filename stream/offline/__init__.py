"""Backtest, replay, topic history and evaluation: the pipeline over files and topics."""
