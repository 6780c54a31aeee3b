import pytest
from tiny_models import tiny_llama


@pytest.fixture
def tiny():
    return tiny_llama()
