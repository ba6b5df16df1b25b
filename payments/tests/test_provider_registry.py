"""The payments app implements exactly the provider types the settings may name."""

from payments.manager import PROVIDER_CLASSES
from quanta.core.config import PROVIDER_TYPES


def test_every_provider_type_the_settings_accept_has_one_implementation() -> None:
    assert set(PROVIDER_CLASSES) == PROVIDER_TYPES
