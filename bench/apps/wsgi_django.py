"""Django hello world (GET /hello) in one module, for tremolo, granian and gunicorn:
the middleware of a new project's settings, no database."""

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
)


def hello(request):  # type: ignore[no-untyped-def]
    return HttpResponse(b"Hello world!", content_type="text/plain")


urlpatterns = [path("hello", hello)]
app = get_wsgi_application()
