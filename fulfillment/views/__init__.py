"""Fulfilment pages, one module per area: kanban, packing, shipments (detail, merge/split, overrides),
waves, routing rules and carriers. Each module lists its own ``urlpatterns``; fulfillment/urls.py joins them."""
