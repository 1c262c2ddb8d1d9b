#!/usr/bin/env bash
# The browser the web-page tests drive: Debian's chromium, with a CJK font so pages (and their
# screenshots) show Chinese. Idempotent: when both are present it returns at once.
#
# Playwright drives this chromium through `executable_path`; `playwright install` (which
# downloads a browser build of its own) is never used. Runs as root (apt-get); waits for the dpkg
# lock when another process is installing at the same time.
set -euo pipefail

have_chromium() { command -v chromium >/dev/null 2>&1; }
have_cjk_font() { fc-list :lang=zh 2>/dev/null | grep -qi "noto"; }

if have_chromium && have_cjk_font; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_browser.sh: chromium or fonts-noto-cjk is missing and this is not root; install them with:" >&2
    echo "  apt-get install -y chromium fonts-noto-cjk" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# One installer at a time across parallel test sessions; apt itself also waits for its lock.
exec 9>/var/lock/huiju-install-browser.lock
flock 9
if have_chromium && have_cjk_font; then
    exit 0
fi
apt_get() { apt-get -o DPkg::Lock::Timeout=600 -qq "$@"; }
apt_get update
apt_get install -y --no-install-recommends chromium fonts-noto-cjk fontconfig
fc-cache -f >/dev/null 2>&1 || true
have_chromium && have_cjk_font
