"""Test-session settings.

Compilation dominates this suite's run time (each network configuration compiles
its programs once). Unless the caller sets `XLA_FLAGS`, compile with less
optimisation: about a quarter less CPU time for the suite, on tiny workloads
whose run time does not matter. Set before JAX starts its backend.
"""

import os

os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    " --xla_cpu_use_fusion_emitters=false",
)
