#!/bin/sh
# Install the Debian 12 packages sluice needs to build, test, bench and demo,
# skipping those already present. Needs root (apt-get).
set -eu
pkgs="clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libmnl-dev make gcc
      iproute2 nftables netsniff-ng jq python3 libclang-rt-14-dev gnuplot-nox prometheus
      libjansson-dev wrk nginx-light curl redis-server libhiredis-dev libssl-dev openssl
      ca-certificates iptables"
missing=""
# make deb, the man pages' lint, the completion and package tests
pkgs="$pkgs mandoc man-db bash-completion debhelper lintian fakeroot"
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing; run as root (or: apt-get install$missing)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# nginx (the benchmark's comparison) and redis-server (the tests start their own,
# in a temporary directory): keep their packages from starting a system server
# (policy-rc.d 101 = "do not start").
rcd=/usr/sbin/policy-rc.d
own_rcd=0
if [ ! -e "$rcd" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$rcd" && chmod 755 "$rcd" && own_rcd=1
fi
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
[ "$own_rcd" = 1 ] && rm -f "$rcd"
exit "${rc:-0}"
