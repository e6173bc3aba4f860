#!/bin/sh
# Compiles launcher.c and prints its machine code as hex, for X86_64_CODE in ../launcher.ts.
# Usage: src/native/launcher/build.sh [cc]   (test/native/launcher.test.ts checks the committed bytes)
set -eu
dir=$(dirname "$0")
cc=${1:-gcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cc" -Os -nostdlib -static -ffreestanding -fno-builtin -fno-stack-protector -fno-pie -no-pie \
	-fno-asynchronous-unwind-tables -fcf-protection=none -mgeneral-regs-only -fno-strict-aliasing \
	-Wall -Wextra -Werror -Wl,--build-id=none -Wl,-T,"$dir/launcher.ld" -o "$tmp/launcher" "$dir/launcher.c"
objcopy -O binary -j .text "$tmp/launcher" "$tmp/code"
od -An -v -tx1 "$tmp/code" | tr -d ' \n'
echo
