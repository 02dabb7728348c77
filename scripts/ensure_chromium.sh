#!/usr/bin/env bash
# Make sure the system Chromium the browser tests drive is installed (Debian package `chromium`).
# Playwright never downloads a browser here; without Chromium the browser tests skip and say why.
set -u

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "installing chromium (Debian package) for the browser tests"
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } \
    || echo "ensure_chromium: could not install chromium; the browser tests will be skipped" >&2
else
  echo "ensure_chromium: /usr/bin/chromium is missing and cannot be installed here (needs root and apt-get);" >&2
  echo "the browser tests will be skipped. Install it with: apt-get install -y chromium" >&2
fi
exit 0
