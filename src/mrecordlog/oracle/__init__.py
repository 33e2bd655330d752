"""The oracle: checkers that hold implementations to the model.

``crashcheck`` runs the crash-consistency campaign over the fault-injecting
disk; ``workloads`` generates its seeded workloads. ``fuzz`` runs the reader
fuzz campaign over damaged directories, judged with ``spec_reader``, an
independent reader written from the format spec.
"""
