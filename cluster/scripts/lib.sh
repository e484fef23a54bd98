# Shared by the provisioning scripts (sourced, not run).

# The Debian mirror this host already uses, so that no registry host is hard-coded here.
debian_mirror() {
  if [ -n "${SUPERTICKS_DEBIAN_MIRROR:-}" ]; then echo "$SUPERTICKS_DEBIAN_MIRROR"; return; fi
  local m
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | awk '{print $2}' | grep -v -- '-security' | grep -m1 debian || true)
  [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list 2>/dev/null \
      | awk '{print $2}' | grep -v -- '-security' | grep -m1 debian || true)
  [ -n "$m" ] || die "cannot find a Debian mirror in /etc/apt; set SUPERTICKS_DEBIAN_MIRROR"
  echo "$m"
}
