#!/usr/bin/env bash
# make install and make uninstall into a DESTDIR: every file where PREFIX
# says, the units' paths rewritten for it, the examples in /etc/sluice with
# their modes, an edited config never overwritten by a second install, and
# uninstall removing everything but /etc/sluice. Uses the binaries of the
# build under test (SLUICE_BUILD); no root needed.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
root=$(cd "$here/../.." && pwd)
W=$(mktemp -d /tmp/sluice-install.XXXXXX)
trap 'rm -rf "$W"' EXIT
B=${SLUICE_BUILD:-$root/build}

# mk DESTDIR ARGS...: make into DESTDIR, its output shown when it fails
mk() {
	make -C "$root" --no-print-directory BUILD="$B" DESTDIR="$1" "${@:2}" >"$W/log" 2>&1 ||
		{ sed 's/^/  make: /' "$W/log" >&2; return 1; }
}

for prefix in /usr/local /usr; do
	D=$W/dest${prefix//\//-}
	t_begin "make install PREFIX=$prefix"
	t_check "make install failed" mk "$D" install PREFIX="$prefix"
	for f in sbin/sluice sbin/sluiced sbin/sluice-l7; do
		t_check "$prefix/$f is not executable" [ -x "$D$prefix/$f" ]
	done
	for f in share/man/man8/sluice.8 share/man/man8/sluiced.8 share/man/man8/sluice-l7.8 \
		share/man/man5/sluiced.conf.5 share/man/man5/sluice-l7.conf.5 \
		share/bash-completion/completions/sluice share/doc/sluice/operations.md \
		lib/systemd/system/sluiced.service lib/systemd/system/sluice-l7.service; do
		t_check "$prefix/$f is missing" [ -f "$D$prefix/$f" ]
	done
	t_check "sluiced.service does not run $prefix/sbin/sluiced" \
		grep -q "^ExecStart=$prefix/sbin/sluiced " "$D$prefix/lib/systemd/system/sluiced.service"
	t_check "sluice-l7.service does not run $prefix/sbin/sluice-l7" \
		grep -q "^ExecStart=$prefix/sbin/sluice-l7 " "$D$prefix/lib/systemd/system/sluice-l7.service"
	t_check "$D$prefix/sbin/sluice --version" sh -c "'$D$prefix/sbin/sluice' --version | grep -q '^sluice '"
	t_check "/etc/sluice/sluiced.conf mode" [ "$(stat -c %a "$D/etc/sluice/sluiced.conf")" = 644 ]
	t_check "/etc/sluice/l7.conf mode" [ "$(stat -c %a "$D/etc/sluice/l7.conf")" = 600 ]
	t_check "the installed sluiced.conf fails sluiced --check" \
		sh -c "'$B/sluiced' --check -c '$D/etc/sluice/sluiced.conf' | grep -qx OK"
	t_check "the installed l7.conf fails sluice-l7 --check" \
		sh -c "'$B/sluice-l7' --check -c '$D/etc/sluice/l7.conf' >/dev/null 2>&1"
	t_end

	t_begin "make install PREFIX=$prefix again keeps an edited config"
	echo "# the operator's edit" >>"$D/etc/sluice/sluiced.conf"
	echo "# the operator's edit" >>"$D/etc/sluice/l7.conf"
	t_check "make install failed" mk "$D" install PREFIX="$prefix"
	t_check "sluiced.conf overwritten" grep -q "operator's edit" "$D/etc/sluice/sluiced.conf"
	t_check "l7.conf overwritten" grep -q "operator's edit" "$D/etc/sluice/l7.conf"
	t_end

	t_begin "make uninstall PREFIX=$prefix removes all but /etc/sluice"
	t_check "make uninstall failed" mk "$D" uninstall PREFIX="$prefix"
	left=$(cd "$D" && find . -type f ! -path './etc/sluice/*' | tr '\n' ' ')
	t_check "left behind: $left" [ -z "$left" ]
	t_check "/etc/sluice/sluiced.conf removed" [ -f "$D/etc/sluice/sluiced.conf" ]
	t_end
done
