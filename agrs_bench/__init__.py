"""agrs_bench: all-gather / reduce-scatter overlap micro-benchmarks for FSDP-style training.

Data flows one way, one module each (see README.md):
config -> layout -> groups -> buffers -> kernels -> timing -> stats -> results -> report/compare.
Importing the package touches no device, no logging and no environment.
"""

__version__ = "0.1.0"
