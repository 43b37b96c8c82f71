#!/usr/bin/env bash
# Installs the pinned external test tools into $LATCHKEY_TOOLS (a cache).
# Each later feature that tests against a real peer adds its tool here, pinned.
set -euo pipefail
: "${LATCHKEY_TOOLS:?}"

need_cmd() { command -v "$1" >/dev/null 2>&1; }

# Debian packages the tests use (redis-server/redis-cli for throwaway and
# cluster instances).
missing=()
for c in redis-server:redis-server redis-cli:redis-tools; do
  need_cmd "${c%%:*}" || missing+=("${c##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
