"""The test suite. A package, so that shared helpers import normally: ``from tests.support…``."""
