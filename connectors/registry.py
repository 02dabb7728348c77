"""Which connector class serves which platform; later platforms register here and nowhere else."""

from __future__ import annotations

from django.utils.module_loading import import_string

from connectors.base import Connector
from connectors.models import ChannelSyncState

CONNECTORS = {
    "shopify": "connectors.shopify.connector.ShopifyConnector",
    "taobao": "connectors.taobao.connector.TaobaoConnector",
    "pdd": "connectors.pdd.connector.PddConnector",
    "douyin": "connectors.douyin.connector.DouyinConnector",
}
SANDBOXES = {
    "shopify": "connectors.sandbox.shopify.ShopifySandbox",
    "taobao": "connectors.sandbox.taobao.TaobaoSandbox",
    "pdd": "connectors.sandbox.pdd.PddSandbox",
    "douyin": "connectors.sandbox.douyin.DouyinSandbox",
}


def connector_class(platform: str) -> type[Connector]:
    try:
        return import_string(CONNECTORS[platform])
    except KeyError:
        raise LookupError(f"no connector for platform {platform!r}") from None


def connector_for_store(store) -> Connector:
    settings = ChannelSyncState.objects.filter(store_id=store.pk).values("credentials", "api_version").first() or {}
    credentials = dict(settings.get("credentials") or {})
    # The API version is a store setting (ChannelSyncState.api_version), not a credential: a version typed
    # into the credentials once (older setups) would outlive its support window unseen. Blank: the
    # connector's pinned default.
    credentials.pop("api_version", None)
    version = settings.get("api_version")
    if version:
        credentials["api_version"] = version
    return connector_class(store.platform)(credentials)


def sandbox_class(platform: str):
    try:
        return import_string(SANDBOXES[platform])
    except KeyError:
        raise LookupError(f"no sandbox for platform {platform!r}") from None
