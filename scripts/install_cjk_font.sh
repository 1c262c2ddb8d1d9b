#!/usr/bin/env bash
# The CJK font the analysis reports' PNG charts are set in (huiju/reports/charts.py): Debian's
# fonts-noto-cjk (Noto Sans CJK), installed by the project rather than assumed on the machine.
# Idempotent: returns at once when fontconfig already finds Noto Sans CJK. Runs apt-get as root;
# waits for the dpkg lock when another process is installing (tests/support/install_browser.sh
# installs the same package for the browser, under the same lock).
set -euo pipefail

have_cjk_font() { fc-list :lang=zh family 2>/dev/null | grep -qi "Noto Sans CJK"; }

if have_cjk_font; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_cjk_font.sh: Noto Sans CJK is missing and this is not root; install it with:" >&2
    echo "  apt-get install -y fonts-noto-cjk fontconfig" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
exec 9>/var/lock/huiju-install-browser.lock
flock 9
if have_cjk_font; then
    exit 0
fi
apt-get -o DPkg::Lock::Timeout=600 -qq update
apt-get -o DPkg::Lock::Timeout=600 -qq install -y --no-install-recommends fonts-noto-cjk fontconfig
fc-cache -f >/dev/null 2>&1 || true
have_cjk_font
