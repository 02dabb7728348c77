"""The outbound gateway kit connectors and carriers share: errors, the HTTP client base, the sandbox base.

A plain library at the bottom of the layers, beside ``oms``: it imports nothing of the project and no
Django (importing ``oms`` would start the Celery app), so a sandbox still runs with nothing but requests.
"""
