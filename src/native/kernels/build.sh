#!/bin/sh
# Compiles a freestanding kernel (word-diff.c, crc32.c) into flat position-independent x86_64 machine
# code and prints it as hex, for the constant in its .ts file (src/native/word-diff.ts,
# crc32-pages.ts). The kernel's entry, procsnap_kernel (in section .text.entry), is its first byte;
# its constants, if any, follow the code and are reached RIP-relative (kernel.ld); any relocation
# left, or an entry elsewhere, is refused. Usage: src/native/kernels/build.sh FILE.c [cc]
# (test/native/word-diff.test.ts and crc32-pages.test.ts check the committed bytes).
set -eu
dir=$(dirname "$0")
src=$1
cc=${2:-gcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -O2 -msse2 -mpclmul -mno-avx -fPIC -ffreestanding -fno-builtin -fno-stack-protector -fno-jump-tables \
	-fno-asynchronous-unwind-tables -fcf-protection=none -fno-strict-aliasing -fno-tree-vectorize \
	-Wall -Wextra -Werror -c -o "$tmp/k.o" "$src"
ld -static -nostdlib --build-id=none -T "$dir/kernel.ld" -o "$tmp/k" "$tmp/k.o"
if [ "$(nm "$tmp/k" | awk '$3 == "procsnap_kernel" { print $1 }')" != 0000000000000000 ]; then
	echo "$src: procsnap_kernel is not at offset 0" >&2
	exit 1
fi
if [ -n "$(readelf -r "$tmp/k" | grep R_X86 || true)" ]; then
	echo "$src: relocations in the kernel" >&2
	exit 1
fi
objcopy -O binary -j .text "$tmp/k" "$tmp/code"
od -An -v -tx1 "$tmp/code" | tr -d ' \n'
echo
