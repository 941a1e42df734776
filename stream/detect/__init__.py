"""Detectors and the one micro-batch pipeline that the worker and the backtest both drive."""
