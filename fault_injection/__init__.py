"""Fault injection for mrecordlog's storage seam (issue 4 builds it here).

This package will hold ``SimulatedDisk`` (an implementation of
``mrecordlog._storage.Storage`` that keeps durable and volatile state apart),
fault plans and crash-image enumeration. It imports only the Storage protocol
and the error types of the core.
"""
