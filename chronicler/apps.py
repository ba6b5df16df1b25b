from django.apps import AppConfig


class ChroniclerConfig(AppConfig):
    name = "chronicler"
    default_auto_field = "django.db.models.BigAutoField"
