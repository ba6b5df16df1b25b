"""The payments app implements exactly the provider types the settings may name."""

from payments.core.provider import PaymentProvider
from payments.manager import PROVIDER_CLASSES, provider_class
from quanta.core.config import PROVIDER_TYPES


def test_every_provider_type_the_settings_accept_has_one_implementation() -> None:
    assert set(PROVIDER_CLASSES) == PROVIDER_TYPES
    for provider_type in PROVIDER_TYPES:
        cls = provider_class(provider_type)
        assert cls is not None and issubclass(cls, PaymentProvider), provider_type
    assert provider_class("paypal") is None
