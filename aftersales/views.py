"""Customer-service pages of after-sales: the ticket queue, a ticket, opening one from an order."""

urlpatterns = []
