#!/usr/bin/env bash
# Installs the pinned external test tools into $LATCHKEY_TOOLS (a cache).
# Each later feature that tests against a real peer adds its tool here, pinned.
set -euo pipefail
: "${LATCHKEY_TOOLS:?}"

need_cmd() { command -v "$1" >/dev/null 2>&1; }

# Debian packages the tests use (redis-server/redis-cli for throwaway and
# cluster instances; chromium for the browser test of logout in web/).
missing=()
for c in redis-server:redis-server redis-cli:redis-tools oathtool:oathtool slapd:slapd ldapadd:ldap-utils chromium:chromium; do
  need_cmd "${c%%:*}" || missing+=("${c##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# A Japanese font, so the browser suite's Japanese screenshots
# (test/e2e/browser) show text instead of empty boxes.
if ! fc-list :lang=ja 2>/dev/null | grep -q .; then
  echo "== apt-get install fonts-ipafont-gothic" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-ipafont-gothic fontconfig
fi

# Node.js >= 20 and npm for the openid-client interop suite (test/interop;
# its Go test runs `npm ci` with the cache under $LATCHKEY_TOOLS/npm-cache).
# Debian bookworm's own nodejs is 18, too old for openid-client 6: where it
# is all apt offers, install Node 20 from NodeSource instead.
if ! need_cmd node || ! need_cmd npm; then
  echo "== apt-get install nodejs npm" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "node $(node --version) is too old: test/interop (openid-client 6) needs Node.js >= 20" >&2
  exit 1
fi

# crewjam/saml's example SAML IdP for the saml connector's real-peer tests
# (providers/saml and web, through providers/saml/samltest), pinned to the
# crewjam/saml version go.mod uses; the tests reuse $LATCHKEY_TOOLS/bin/idp
# when it is this version.
if ! go version -m "$LATCHKEY_TOOLS/bin/idp" 2>/dev/null | grep -q 'github.com/crewjam/saml[[:space:]]v0.6.3'; then
  echo "== go install github.com/crewjam/saml/example/idp@v0.6.3" >&2
  (cd "$(mktemp -d)" && GOBIN="$LATCHKEY_TOOLS/bin" GOFLAGS=-buildvcs=false go install github.com/crewjam/saml/example/idp@v0.6.3)
fi
# mailpit, the SMTP sink the e-mail tests send to (internal/notify/email,
# web account and OTP flows); they read the messages through its API.
# (`go install` builds report "dev" as their version: a stamp file pins it.)
mailpit_version=v1.33.1
if [ ! -x "$LATCHKEY_TOOLS/bin/mailpit" ] || [ "$(cat "$LATCHKEY_TOOLS/mailpit.version" 2>/dev/null)" != "$mailpit_version" ]; then
  echo "== go install mailpit $mailpit_version" >&2
  GOBIN="$LATCHKEY_TOOLS/bin" go install "github.com/axllent/mailpit@$mailpit_version"
  echo "$mailpit_version" > "$LATCHKEY_TOOLS/mailpit.version"
fi
