"""The oracle: checkers that hold implementations to the model.

``crashcheck`` runs the crash-consistency campaign over the fault-injecting
disk; ``workloads`` generates its seeded workloads.
"""
