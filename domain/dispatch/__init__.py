"""Dispatch: which committed commands reach the broker, and in what order."""
