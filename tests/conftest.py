"""Fixtures shared by the whole suite."""

import jax
import pytest


@pytest.fixture
def x64():
    """Run one test with float64 enabled, restoring the previous setting after."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(autouse=True, scope="module")
def _fresh_jax_caches():
    """Drop compiled programs after each test module: the suite compiles hundreds of
    programs in one process, and keeping all of them grows its memory without bound."""
    yield
    jax.clear_caches()
