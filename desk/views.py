"""The desk's search page: one box for any order key."""

urlpatterns = []
