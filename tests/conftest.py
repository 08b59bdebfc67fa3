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
