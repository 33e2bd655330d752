"""The conformance checks, one module each, over one runner (``oracle.conformance``).

Each module offers ``run_<name>_check(context)``: it generates cases within
the context's capabilities and deadline, runs them through the adapter, and
reports every case's outcome to the context (passed, unsupported, known, or
failed with a class from ``oracle.classes`` and a shrunk reproducer).
"""
