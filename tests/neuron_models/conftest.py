"""Fixtures shared by the neuron-model tests."""

import jax
import pytest


@pytest.fixture
def x32():
    """Run one test with float64 disabled (float32 defaults), restoring the previous setting after."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", previous)
