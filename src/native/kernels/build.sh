#!/bin/sh
# Compiles a freestanding kernel (word-diff.c) and prints its flat machine code as hex, for the
# constants in ../word-diff.ts. Usage: src/native/kernels/build.sh file.c [cc]
# (test/native/word-diff.test.ts checks the committed bytes). The kernel's entry must be the first
# byte: one function, no data, no relocations (checked below), no jump tables.
set -eu
src=$1
cc=${2:-gcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -O2 -msse2 -mno-avx -fPIC -ffreestanding -fno-builtin -fno-stack-protector -fno-jump-tables \
	-fno-asynchronous-unwind-tables -fcf-protection=none -fno-strict-aliasing -fno-tree-vectorize \
	-Wall -Wextra -Werror -c -o "$tmp/k.o" "$src"
if [ -n "$(objdump -r "$tmp/k.o" | sed -n '/^[0-9a-f]\{16\} /p')" ]; then
	echo "$src: relocations in the kernel" >&2
	exit 1
fi
if objdump -h "$tmp/k.o" | awk '$2 ~ /^\.(rodata|data|bss)/ && $3 !~ /^0+$/ { found = 1 } END { exit !found }'; then
	echo "$src: data outside .text" >&2
	exit 1
fi
objcopy -O binary -j .text "$tmp/k.o" "$tmp/code"
od -An -v -tx1 "$tmp/code" | tr -d ' \n'
echo
