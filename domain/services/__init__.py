"""The services that the entrypoints call: one method per use case, one transaction each."""
