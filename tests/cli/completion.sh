#!/usr/bin/env bash
# bash completion for sluice (dist/bash-completion/sluice): completions driven
# through COMP_WORDS/COMP_CWORD as bash would, once with the completion alone
# and once on top of the bash-completion package's helpers when installed.
# `sluice rule list --json` is a stub on PATH here, so no root and no policy
# are needed; the commands, rule words and settings the code accepts
# (tests/cli/lib/code_names.py) must all be offered.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
root=$(cd "$here/../.." && pwd)
W=$(mktemp -d /tmp/sluice-compl.XXXXXX)
trap 'rm -rf "$W"' EXIT

mkdir -p "$W/bin"
cat >"$W/bin/sluice" <<'EOF'
#!/bin/sh
[ "$*" = "rule list --json" ] || exit 2
echo '[{"id":3,"name":"web","match":"dport 443","pps":5000},'
echo ' {"id":7,"name":"","match":"any","pps":10},{"id":12,"name":"ssh-in","pps":5}]'
EOF
chmod 755 "$W/bin/sluice"
export PATH="$W/bin:$PATH"

# complete WORDS...: the last word is the one being completed ("" for a new
# word); prints the candidates sorted, one line.
complete_words() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_sluice sluice "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}

expect_compl() {
	local want=$1 got; shift
	got=$(complete_words "$@")
	t_check "'$*<TAB>' gave '$got', expected '$want'" [ "$got" = "$want" ]
}

# expect_has WORD... -- ARGS: every WORD is among the completions of ARGS
expect_has() {
	local words=() got w
	while [ "$1" != -- ]; do words+=("$1"); shift; done
	shift
	got=" $(complete_words "$@") "
	for w in "${words[@]}"; do
		t_check "'$*<TAB>' does not offer '$w' (got:$got)" contains "$got" " $w "
	done
}
contains() { case "$1" in *"$2"*) return 0 ;; esac; return 1; }

cmds=$(cd "$root" && python3 "$here/lib/code_names.py" user/cli/main.c | grep -v -e '^-' -e '^help$')
rule_words=$(cd "$root" && python3 "$here/lib/code_names.py" user/lib/rule.c)
ndev=$(find /sys/class/net/ -mindepth 1 -maxdepth 1 | wc -l)
a_dev=$(basename "$(find /sys/class/net/ -mindepth 1 -maxdepth 1 | sort | head -1)")

run_cases() {
	local mode=$1

	t_begin "$mode: commands and global options"
	t_expect "commands in user/cli/main.c's table" "$(echo "$cmds" | wc -w)" -ge 10
	# shellcheck disable=SC2086
	expect_has $cmds -- sluice ""
	expect_has $cmds -- sluice -v ""
	expect_compl "rule" sluice ru
	expect_compl "set signals stats status" sluice s
	expect_has --version --help -f -v -vv -- sluice -
	t_end

	t_begin "$mode: interfaces from /sys/class/net"
	t_expect "interfaces on this host" "$ndev" -ge 1
	expect_has lo "$a_dev" -- sluice attach ""
	expect_has "$a_dev" -- sluice detach ""
	expect_compl "--mode" sluice attach lo --mo
	expect_compl "auto generic native" sluice attach lo --mode ""
	t_end

	t_begin "$mode: rule words, each once, and their values"
	expect_compl "add del list" sluice rule ""
	# shellcheck disable=SC2086 # every word rule.c accepts is offered somewhere
	expect_has $(echo "$rule_words" | grep -vxE 'tcp|udp|icmp|any|src|rule|drop|count') \
		-- sluice rule add ""
	expect_compl "any icmp tcp udp" sluice rule add proto ""
	expect_compl "rule src" sluice rule add key ""
	expect_compl "count drop" sluice rule add action ""
	expect_compl "" sluice rule add pps ""
	expect_compl "pps" sluice rule add dport 80 pp
	expect_compl "burst" sluice rule add pps 5 bu
	got=" $(complete_words sluice rule add name x pps 5 "") "
	t_check "'name' offered again after 'name x' ($got)" [ "${got/ name /}" = "$got" ]
	t_end

	t_begin "$mode: rule names and ids from the pinned rules"
	expect_compl "12 3 7 ssh-in web" sluice rule del ""
	expect_compl "ssh-in" sluice rule del ss
	expect_compl "" sluice rule del web ""
	t_end

	t_begin "$mode: lists, settings, options"
	expect_compl "add del list" sluice deny ""
	expect_compl "timeout" sluice deny add 192.0.2.0/24 ""
	expect_compl "--json" sluice allow list ""
	expect_compl "fin-timeout flows-full idle-timeout syn-timeout" sluice set ""
	expect_compl "closed open" sluice set flows-full ""
	expect_compl "--count --interval --json" sluice conns --
	expect_compl "--count --json --once" sluice top --
	t_end
}

# shellcheck source=/dev/null
. "$root/dist/bash-completion/sluice"
run_cases "alone"
if [ -r /usr/share/bash-completion/bash_completion ]; then
	# shellcheck source=/dev/null
	. /usr/share/bash-completion/bash_completion
	. "$root/dist/bash-completion/sluice"
	run_cases "with bash-completion"
fi
