"""Run the local WeChat sandbox (wx.login codes and jscode2session) until interrupted."""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand

from customer.wechat_sandbox import DEFAULT_APP_ID, DEFAULT_APP_SECRET, WeChatSandbox


class Command(BaseCommand):
    help = "Serve a local WeChat for the mini-program login on 127.0.0.1 (see customer/wechat_sandbox.py)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--app-id", default="", help="the mini-program app id (default: OMS_WECHAT_APP_ID)")
        parser.add_argument("--app-secret", default="", help="its secret (default: OMS_WECHAT_APP_SECRET)")

    def handle(self, *args, **options):
        logging.basicConfig(level=logging.INFO)
        sandbox = WeChatSandbox(host=options["host"], port=options["port"],
                                app_id=options["app_id"] or settings.OMS_WECHAT_APP_ID or DEFAULT_APP_ID,
                                app_secret=options["app_secret"] or settings.OMS_WECHAT_APP_SECRET or DEFAULT_APP_SECRET)
        url = sandbox.start()
        self.stdout.write(f"WeChat sandbox on {url} (app id {sandbox.app_id}); a wx.login() code: "
                          f"curl -s -X POST {url}/_sandbox/login -d '{{\"user\": \"alice\"}}'")
        sandbox.serve_forever()
