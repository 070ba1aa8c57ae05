"""The operators' console logic, shared by the web pages, the JSON API and the CLI.

``queries`` reads (every read is an index-backed :class:`~worker.console.queries.Query` with a
limit), ``actions`` changes things on behalf of a named operator (each one audited with the
operator and the reason), ``auth`` decides who may sign in and do what, ``encoding`` turns
answers into JSON (the API and ``mmw ... --json``).
"""
