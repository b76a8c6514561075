"""What Hopper is: jobs, their types and lifecycle, tenants and keys, and the services over them.

Nothing here imports a web framework, a task queue or an HTTP client; what the domain needs from the
outside world it declares as a protocol in ``domain.ports``.
"""
