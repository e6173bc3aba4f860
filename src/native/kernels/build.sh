#!/bin/sh
# Compiles a kernel (crc32.c, ...) into flat position-independent x86_64 machine code, its entry
# (the function marked PROCSNAP_ENTRY) at offset 0, and prints it as hex for its .ts file.
# Usage: src/native/kernels/build.sh crc32.c [cc]   (test/native/kernels.test.ts checks the committed bytes)
set -eu
dir=$(dirname "$0")
src=$1
cc=${2:-gcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -O2 -msse2 -mpclmul -ffreestanding -fno-builtin -fno-stack-protector -fPIC -fno-plt \
	-fno-asynchronous-unwind-tables -fcf-protection=none -fno-jump-tables -fno-strict-aliasing \
	-Wall -Wextra -Werror -c -o "$tmp/kernel.o" "$dir/$src"
ld -static -nostdlib --build-id=none -T "$dir/kernel.ld" -o "$tmp/kernel" "$tmp/kernel.o"
if [ "$(nm "$tmp/kernel" | awk '$3 == "procsnap_kernel" { print $1 }')" != 0000000000000000 ]; then
	echo "$src: procsnap_kernel is not at offset 0" >&2
	exit 1
fi
if readelf -r "$tmp/kernel" | grep -q R_X86; then
	echo "$src: the kernel needs relocations" >&2
	exit 1
fi
objcopy -O binary -j .text "$tmp/kernel" "$tmp/code"
od -An -v -tx1 "$tmp/code" | tr -d ' \n'
echo
