#!/usr/bin/env bash
# The Debian package, end to end, on this host (root; CI runs it after
# `make test`, see .ci/run; about three minutes, most of it the build):
#
#   1. `make deb` into a temporary directory: the package is built from a copy
#      of the tree, which stays untouched;
#   2. lintian: no E: tag;
#   3. apt installs it: the binaries run (--version is the package's), the
#      units are in place and neither enabled nor started, the man pages are
#      found by man(1), the completion loads, /etc/sluice holds the examples
#      (conffiles; l7.conf mode 600) and they pass the binaries' --check;
#   4. a policy made with the installed sluice on a veth in a namespace of
#      ours; `apt-get remove` keeps the conffiles, `dpkg --purge` removes
#      them (and leaves a file the operator added), every installed file is
#      gone, and the pinned maps and the attached program are still there;
#   5. we unload it ourselves.
#
# The policy pins under a root of its own (SLUICE_PIN_ROOT), so a production
# policy is never touched; the package's maintainer scripts must not name
# /sys/fs/bpf at all, and /sys/fs/bpf/sluice, if it exists, must be as it was.
# Whatever happens, the trap purges the package, unloads, and removes the
# namespace and the temporary files: sluice is never left installed. A host
# where the package is installed already is refused, not touched.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
root=$(cd "$here/../.." && pwd)
PKG=sluice
NS=${T_PREFIX}pkg
DEV=${T_PREFIX}p0
PEER=${T_PREFIX}p1
PIN=/sys/fs/bpf/sluice-pkgtest-$$
T=$(mktemp -d /tmp/sluice-pkg.XXXXXX)
installed_by_us=0
etc_ours=0
failed=0
start=$SECONDS

note() { echo "# $*"; }
# t_end, and remember a failure for the exit status
t_done() {
	local line
	line=$(t_end)
	echo "$line"
	case "$line" in "not ok"*) failed=$((failed + 1)) ;; esac
}

cleanup() {
	local unload=""
	if [ "$installed_by_us" = 1 ] && dpkg-query -W -f='${Status}' $PKG 2>/dev/null |
		grep -qv 'not-installed'; then
		note "cleanup: purging $PKG"
		DEBIAN_FRONTEND=noninteractive dpkg --purge $PKG >/dev/null 2>&1 ||
			echo "# cleanup: dpkg --purge $PKG failed: remove it by hand" >&2
	fi
	# /etc/sluice did not exist before (checked below): what is there is ours
	[ "$etc_ours" = 1 ] && rm -rf /etc/sluice
	if [ -d "$PIN" ]; then
		for unload in "$T/sluice" "${SLUICE_BUILD:-$root/build}/sluice"; do
			[ -x "$unload" ] && SLUICE_PIN_ROOT=$PIN "$unload" unload >/dev/null 2>&1 && break
		done
		rm -rf "$PIN" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	ip link del dev "$DEV" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then
	echo "not ok setup: needs root (installs and purges a package)"
	exit 1
fi
if dpkg-query -W -f='${Status}' $PKG 2>/dev/null | grep -qv 'not-installed' ||
	[ -e /usr/sbin/sluice ] || [ -e /etc/sluice ]; then
	echo "not ok setup: $PKG is installed here (or /usr/sbin/sluice or /etc/sluice exists);" \
		"this test installs and purges it: run it on a host without sluice"
	exit 1
fi
for tool in dpkg-buildpackage dh lintian man; do
	if ! command -v $tool >/dev/null; then
		echo "not ok setup: $tool is missing (make deps)"
		exit 1
	fi
done
# one package test at a time on a host
exec 9>/run/lock/sluice-pkg-test.lock
flock -w 600 9 || { echo "not ok setup: another package test holds the lock"; exit 1; }

default_pins_before=$(ls -laR /sys/fs/bpf/sluice 2>/dev/null)

# --- 1. build ---------------------------------------------------------------
t_begin "make deb builds the package from a copy, the tree untouched"
before=$(cd "$root" && git status --porcelain --ignored=matching 2>/dev/null | grep -v '^!! build')
s=$SECONDS
t_check "make deb failed (see $T/build.log)" \
	make -C "$root" --no-print-directory deb BUILD="$T/build" >"$T/build.log" 2>&1
note "make deb: $((SECONDS - s)) s"
deb=$(ls "$T"/build/deb/${PKG}_*_*.deb 2>/dev/null | grep -v dbgsym | head -1)
t_check "no .deb in $T/build/deb" [ -f "$deb" ]
after=$(cd "$root" && git status --porcelain --ignored=matching 2>/dev/null | grep -v '^!! build')
t_check "the tree changed: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')" \
	[ "$before" = "$after" ]
t_done
[ -f "$deb" ] || { tail -30 "$T/build.log"; exit 1; }
version=$(dpkg-deb -f "$deb" Version)

# --- 2. lintian -------------------------------------------------------------
t_begin "lintian: no errors"
s=$SECONDS
lintian --pedantic "$deb" >"$T/lintian" 2>&1
note "lintian: $((SECONDS - s)) s; $(grep -c '^E:' "$T/lintian") error(s)," \
	"$(grep -c '^W:' "$T/lintian") warning(s)"
grep -E '^[EW]:' "$T/lintian" | sed 's/^/#   /'
t_check "lintian errors: $(grep '^E:' "$T/lintian" | head -3 | tr '\n' ' ')" \
	[ "$(grep -c '^E:' "$T/lintian")" = 0 ]
t_check "the maintainer scripts touch /sys/fs/bpf" \
	sh -c "dpkg-deb -e '$deb' '$T/ctl' && ! grep -rqs -e /sys/fs/bpf -e unload '$T/ctl'"
t_done

# --- 3. install --------------------------------------------------------------
t_begin "apt installs it"
installed_by_us=1 etc_ours=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	-o DPkg::Lock::Timeout=300 "$deb" >"$T/install.log" 2>&1
t_check "apt-get install failed: $(tail -3 "$T/install.log" | tr '\n' ' ')" \
	sh -c "dpkg-query -W -f='\${Status}' $PKG | grep -q 'install ok installed'"
t_done

t_begin "installed: the binaries run and say the package's version ($version)"
for b in sluice sluiced sluice-l7; do
	out=$(/usr/sbin/$b --version 2>&1)
	t_check "/usr/sbin/$b --version said '$out'" [ "$out" = "$b $version" ]
done
t_check "sluice --help" sh -c '/usr/sbin/sluice --help | grep -q "Usage: sluice"'
t_done

t_begin "installed: systemd units in place, neither enabled nor started"
for u in sluiced sluice-l7; do
	f=/lib/systemd/system/$u.service
	t_check "$f is missing" [ -f "$f" ]
	t_check "$f does not run /usr/sbin/$u" grep -q "^ExecStart=/usr/sbin/$u " "$f"
	t_check "$f still names /usr/local" sh -c "! grep -q /usr/local '$f'"
	t_check "$u.service is enabled" \
		sh -c "! ls /etc/systemd/system/*.wants/$u.service >/dev/null 2>&1"
	for p in $(pgrep -x "$u"); do
		t_check "$u (pid $p) runs from the package" \
			[ "$(readlink "/proc/$p/exe")" != "/usr/sbin/$u" ]
	done
done
if [ -d /run/systemd/system ]; then
	t_check "systemctl: sluiced is enabled" sh -c '! systemctl is-enabled -q sluiced'
	t_check "systemctl: sluiced is active" sh -c '! systemctl is-active -q sluiced'
fi
t_done

t_begin "installed: man finds every page, bash completion loads"
for p in 8:sluice 8:sluiced 8:sluice-l7 5:sluiced.conf 5:sluice-l7.conf; do
	sec=${p%%:*} name=${p#*:}
	t_check "man -w $sec $name: $(man -w "$sec" "$name" 2>&1)" \
		sh -c "man -w $sec $name | grep -q '^/usr/share/man/man$sec/$name.$sec'"
	t_check "man $sec $name does not render" \
		sh -c "MANWIDTH=80 man -P cat $sec $name 2>/dev/null | grep -q '^SEE ALSO'"
done
t_check "completion: 'complete -p sluice' after sourcing it" bash -c \
	'. /usr/share/bash-completion/completions/sluice && complete -p sluice | grep -q _sluice'
t_done

t_begin "installed: /etc/sluice examples are conffiles and pass --check"
conff=$(dpkg-query -W -f='${Conffiles}' $PKG)
for f in /etc/sluice/sluiced.conf /etc/sluice/l7.conf; do
	t_check "$f is not a conffile ($conff)" sh -c "echo '$conff' | grep -q ' $f '"
done
t_check "sluiced --check /etc/sluice/sluiced.conf" \
	sh -c '/usr/sbin/sluiced --check -c /etc/sluice/sluiced.conf | grep -qx OK'
t_check "sluice-l7 --check /etc/sluice/l7.conf" \
	sh -c '/usr/sbin/sluice-l7 --check -c /etc/sluice/l7.conf >/dev/null'
t_check "l7.conf mode $(stat -c %a /etc/sluice/l7.conf), expected 600" \
	[ "$(stat -c %a /etc/sluice/l7.conf)" = 600 ]
t_done

# --- 4. a running policy, remove, purge -------------------------------------
t_begin "a policy made with the installed sluice on a veth in our namespace"
cp /usr/sbin/sluice "$T/sluice" # to inspect and unload once the package is gone
ip netns add "$NS"
ip link add "$DEV" type veth peer name "$PEER"
ip link set dev "$DEV" netns "$NS"
ip link set dev "$PEER" up
ip -n "$NS" link set dev "$DEV" up
# nsenter, not ip netns exec: the pins must be on the host's bpffs
in_ns() { SLUICE_PIN_ROOT=$PIN nsenter --net=/run/netns/"$NS" "$@" >/dev/null; }
t_check "sluice attach $DEV" in_ns /usr/sbin/sluice attach "$DEV" --mode generic
t_check "sluice rule add" in_ns /usr/sbin/sluice rule add name pkgtest dport 80 proto tcp pps 100
t_check "sluice deny add" in_ns /usr/sbin/sluice deny add 198.51.100.0/24
pins_before=$(cd "$PIN" 2>/dev/null && find . | sort)
t_expect "pinned objects under $PIN" "$(echo "$pins_before" | grep -c .)" -ge 5
t_done

t_begin "apt-get remove: the files go, the conffiles stay"
echo "# an operator's edit" >>/etc/sluice/sluiced.conf
echo "secret" >/etc/sluice/redis.pw # a file the operator added
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=300 $PKG \
	>"$T/remove.log" 2>&1
t_check "apt-get remove failed: $(tail -2 "$T/remove.log" | tr '\n' ' ')" \
	sh -c "dpkg-query -W -f='\${Status}' $PKG | grep -q 'config-files'"
t_check "/usr/sbin/sluice is still there" [ ! -e /usr/sbin/sluice ]
t_check "the edited conffile is gone" grep -q "operator's edit" /etc/sluice/sluiced.conf
t_done

t_begin "dpkg --purge: every file of the package is gone, the operator's stays"
DEBIAN_FRONTEND=noninteractive dpkg --purge $PKG >"$T/purge.log" 2>&1
t_check "dpkg --purge failed: $(tail -2 "$T/purge.log" | tr '\n' ' ')" \
	sh -c "! dpkg-query -W -f='\${Status}' $PKG 2>/dev/null | grep -qv not-installed"
installed_by_us=0
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' | grep -v '/$' >"$T/files"
left=$(while read -r f; do [ -e "$f" ] && echo "$f"; done <"$T/files" | tr '\n' ' ')
t_expect "files in the package" "$(wc -l <"$T/files")" -ge 15
t_check "still there after purge: $left" [ -z "$left" ]
t_check "the conffiles survived purge" \
	sh -c '[ ! -e /etc/sluice/sluiced.conf ] && [ ! -e /etc/sluice/l7.conf ]'
t_check "the operator's /etc/sluice/redis.pw was removed" [ -f /etc/sluice/redis.pw ]
rm -rf /etc/sluice
t_done

t_begin "purge left the running policy alone"
pins_after=$(cd "$PIN" 2>/dev/null && find . | sort)
t_check "pins changed: $(diff <(echo "$pins_before") <(echo "$pins_after") | tr '\n' ' ')" \
	[ "$pins_before" = "$pins_after" ]
t_check "the rule is gone" sh -c "SLUICE_PIN_ROOT=$PIN '$T/sluice' rule list | grep -q pkgtest"
t_check "XDP is no longer attached to $DEV" \
	sh -c "ip -n $NS -d link show dev $DEV | grep -q 'prog/xdp'"
t_check "/sys/fs/bpf/sluice changed" [ "$default_pins_before" = "$(ls -laR /sys/fs/bpf/sluice 2>/dev/null)" ]
t_done

# --- 5. unload ourselves ----------------------------------------------------
t_begin "unload with the saved binary"
t_check "sluice unload" sh -c "SLUICE_PIN_ROOT=$PIN nsenter --net=/run/netns/$NS '$T/sluice' unload >/dev/null"
t_check "$PIN is still there" [ ! -e "$PIN" ]
t_done

note "tests/pkg/deb.sh: $((SECONDS - start)) s"
[ "$failed" = 0 ]
