#!/usr/bin/env bash
# Debian packages the tests drive for real: Prometheus, promtool, Alertmanager, amtool, and
# Chromium for the web UI's browser test (Playwright drives it; it downloads no browser).
# Installs what is missing when run as root; otherwise says what is missing (those tests then
# skip on a laptop, and fail in CI, where CI=true).
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
pkgs=$(printf '%s\n' "${need[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
else
  echo "missing Debian packages (install them as root): $pkgs" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
