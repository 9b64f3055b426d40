#!/usr/bin/env bash
# The man pages document what the code accepts, and lint clean.
#
# For each page, the names the code accepts are read from the parsers'
# source by tests/cli/lib/code_names.py (strcmp() literals, the tables that
# strcmp() indexes, getopt_long's options: an if-chain and a table read the
# same), and each must be marked in the page (Cm, Ic or Fl: see
# tests/cli/lib/man_words.py). A directive, option or command added to the
# code fails this suite until its page documents it. Each page also passes
# `mandoc -T lint -W warning` and has the sections a reader looks for.
#
# Which sources feed which page:
#   sluice(8)          user/cli/*.c, and the policy commands every file shares:
#                      user/lib/command.c (rule/allow/deny/set), user/lib/rule.c
#   sluiced(8)         user/daemon/main.c
#   sluice-l7(8)       user/l7/main.c
#   sluiced.conf(5)    user/lib/config.c, adaptive.c, store_config.c (its policy
#                      lines are sluice(8)'s, checked there)
#   sluice-l7.conf(5)  user/l7/l7_config.c, user/lib/store_config.c
# and user/lib/version.c (--version) for the three programs.
# Needs python3 and mandoc; no root, no build.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
root=$(cd "$here/../.." && pwd)
W=$(mktemp -d /tmp/sluice-man.XXXXXX)
trap 'rm -rf "$W"' EXIT

# page | sources | least names the extractor must find | two it must find
# (the floor and the anchors catch an extractor that a refactor blinded: a
# suite that finds nothing to check must fail, not pass)
pages=(
	"man/sluice.8|user/cli/*.c user/lib/command.c user/lib/rule.c user/lib/version.c|50|attach conn-rate"
	"man/sluiced.8|user/daemon/main.c user/lib/version.c|8|--check --detach-on-exit"
	"man/sluice-l7.8|user/l7/main.c user/lib/version.c|6|--config --check"
	"man/sluiced.conf.5|user/lib/config.c user/lib/adaptive.c user/lib/store_config.c|25|interface target-latency"
	"man/sluice-l7.conf.5|user/l7/l7_config.c user/lib/store_config.c|50|listen tier-rpm"
)

cd "$root" || exit 1
for row in "${pages[@]}"; do
	IFS='|' read -r page srcs floor anchors <<<"$row"
	name=$(basename "$page")

	t_begin "$name: the extractor reads the code"
	# shellcheck disable=SC2086 # srcs is a list of globs
	t_check "code_names.py failed on $srcs" python3 "$here/lib/code_names.py" $srcs \
		>"$W/code" 2>"$W/err"
	t_expect "names found in $srcs (at least $floor)" "$(wc -l <"$W/code")" -ge "$floor"
	for a in $anchors; do
		t_check "'$a' is not among the names found" grep -qxF -- "$a" "$W/code"
	done
	t_end

	t_begin "$name: documents every name the code accepts"
	t_check "$page is missing" [ -f "$page" ]
	python3 "$here/lib/man_words.py" "$page" >"$W/page" 2>/dev/null
	missing=$(grep -vxF -f "$W/page" "$W/code" | tr '\n' ' ')
	t_check "not in $page (mark them with Cm, Ic or Fl): ${missing% }" [ -z "$missing" ]
	t_end

	t_begin "$name: mandoc -T lint clean"
	if command -v mandoc >/dev/null; then
		mandoc -T lint -W warning "$page" >"$W/lint" 2>&1
		t_check "mandoc: $(head -3 "$W/lint" | tr '\n' ' ')" [ ! -s "$W/lint" ]
	else
		t_check "mandoc is not installed (make deps)" false
	fi
	t_end

	t_begin "$name: has the sections a reader looks for"
	case "$name" in
	*.8) want="NAME SYNOPSIS DESCRIPTION FILES EXIT.STATUS EXAMPLES SEE.ALSO" ;;
	*) want="NAME DESCRIPTION FILES EXAMPLES SEE.ALSO" ;;
	esac
	for s in $want; do
		t_check "no section ${s/./ }" grep -qE "^\.Sh ${s}\$" "$page"
	done
	t_end
done
