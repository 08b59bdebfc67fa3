"""Fixtures shared by the whole suite."""

import jax
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
