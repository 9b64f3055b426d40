#!/bin/sh
# Regenerate the vendored vmlinux.h from the running kernel's BTF.
# Usage: tools/gen_vmlinux_h.sh [ARCH]   (default: x86)
# The BPF objects only use CO-RE-stable UAPI structs (ethhdr, iphdr, ...), so a
# vmlinux.h from any 6.x kernel builds objects that load on Debian 12's 6.1.
set -eu
arch=${1:-x86}
btf=/sys/kernel/btf/vmlinux
out=$(dirname "$0")/../vmlinux/$arch/vmlinux.h
[ -r "$btf" ] || { echo "gen_vmlinux_h: $btf not readable (kernel built without CONFIG_DEBUG_INFO_BTF?)" >&2; exit 1; }
command -v bpftool >/dev/null || { echo "gen_vmlinux_h: bpftool not found (apt-get install bpftool)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -l < "$out") lines)"
