"""Fixtures shared by the whole suite."""

import os

# The suite is compile-bound: most tests build a few small networks and compile their
# forward and gradient once. These flags make XLA's CPU backend compile about twice as
# fast (unoptimised LLVM, the older elemental emitters) and the compiled programs run
# slower, which these small problems hardly notice: the suite took 20:17 without them
# and about 10-11 minutes with them on the same 2-core machine. What is computed is
# the same up to float rounding (separately compiled programs already differ by a few
# ulp; the tests' tolerances say so where they compare two programs). A user's own
# XLA_FLAGS win.
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    " --xla_cpu_use_fusion_emitters=false",
)

import jax  # noqa: E402
import pytest


def _enable_x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture
def x64():
    """Run one test with float64 enabled, restoring the previous setting after."""
    yield from _enable_x64()


@pytest.fixture(scope="module")
def x64_module():
    """float64 from the first use in a module to its end, for module-scoped fixtures
    that build float64 networks (they are set up before any per-test `x64`)."""
    yield from _enable_x64()


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches():
    """Drop compiled programs after each test module: the suite compiles hundreds of
    programs in one process, and keeping all of them grows its memory without bound."""
    yield
    jax.clear_caches()
