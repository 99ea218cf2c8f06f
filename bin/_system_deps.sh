# Sourced by bin/test: Debian packages the test suite drives for real — Chromium (web widget tests through
# Playwright; never a downloaded browser) and Dovecot (a real IMAP server for the email channel tests).
ensure_system_deps() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "crossdesk: installing ${missing[*]} (Debian packages used by the tests) ..." >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  else
    echo "crossdesk: please install ${missing[*]} (apt-get install ${missing[*]}); the channel tests need them." >&2
  fi
}
