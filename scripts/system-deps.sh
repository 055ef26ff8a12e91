#!/usr/bin/env bash
# Debian packages the tests and benchmarks need (Chromium for the browser tests, clamd for scanning, zip). Installed with apt-get when
# missing and running as root; otherwise the tests that need them say why they are skipped.
set -uo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# clamd for the malware-scanning tests (tests/integration/test_scanning.py starts its own)
command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ] || missing+=(clamav-daemon)
# Node.js runs the CloudFront Function's tests (tests/unit/test_cloudfront_function.py)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
# Info-ZIP's zip: the baseline bench/bench_zip.py measures the batch archive against
command -v zip >/dev/null 2>&1 || missing+=(zip)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "system-deps: missing ${missing[*]} (not root: install them with apt-get to run every test)" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" fonts-dejavu-core >/dev/null \
  || echo "system-deps: apt-get could not install ${missing[*]}" >&2
exit 0
