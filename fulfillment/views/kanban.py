"""Fulfilment pages: the warehouse kanban (being written)."""

from django.http import HttpResponse
from django.urls import path


def kanban_home(request):
    return HttpResponse("")


urlpatterns: list = [path("kanban/", kanban_home, name="kanban-home")]
