from django.apps import AppConfig


class HeraldConfig(AppConfig):
    name = "herald"
    default_auto_field = "django.db.models.BigAutoField"
