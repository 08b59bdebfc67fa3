import pytest
from _tiny import tiny_net as _tiny_net


@pytest.fixture(scope="package")
def tiny_net():
    return _tiny_net()
