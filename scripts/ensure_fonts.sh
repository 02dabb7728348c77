#!/usr/bin/env bash
# Label previews draw Chinese with a CJK font; install a small one (Debian fonts-wqy-microhei) when we
# can. Without it previews show boxes for Chinese characters; printing itself is not affected.
set -u
if command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; then
  exit 0
fi
for f in /usr/share/fonts/truetype/wqy/wqy-microhei.ttc /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc; do
  [ -f "$f" ] && exit 0
done
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "installing a Chinese font (fonts-wqy-microhei) for label previews"
  apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 \
    || echo "ensure_fonts: could not install fonts-wqy-microhei; previews will show boxes for Chinese" >&2
fi
exit 0
