// What a file is, from its first bytes: ELF, a script (and its interpreter), text, or another binary
// format by its magic number. For messages about files that are not the ELF program expected.

/** How many leading bytes identifyFile needs: a shebang line fits (the kernel reads 256). */
export const IDENTIFY_BYTES = 256

export type FileFormat =
  | { kind: 'elf' }
  | { kind: 'empty' }
  /** `#!` line: the interpreter and its arguments as written ('/usr/bin/env', 'python3'). */
  | { kind: 'script'; interpreter: string; args: readonly string[] }
  | { kind: 'text' }
  /** A known binary format: 'a gzip-compressed file', 'a Windows (PE) executable', ... */
  | { kind: 'binary'; what: string }
  | { kind: 'unknown' }

const MAGICS: ReadonlyArray<readonly [readonly number[], string]> = [
  [[0x1f, 0x8b], 'a gzip-compressed file'],
  [[0x50, 0x4b, 0x03, 0x04], 'a zip archive'],
  [[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], 'an xz-compressed file'],
  [[0x28, 0xb5, 0x2f, 0xfd], 'a zstd-compressed file'],
  [[0x42, 0x5a, 0x68], 'a bzip2-compressed file'],
  [[0x21, 0x3c, 0x61, 0x72, 0x63, 0x68, 0x3e, 0x0a], 'a static library archive (ar, .a)'],
  [[0x4d, 0x5a], 'a Windows (PE) executable'],
  [[0xfe, 0xed, 0xfa, 0xce], 'a macOS (Mach-O) binary'],
  [[0xfe, 0xed, 0xfa, 0xcf], 'a macOS (Mach-O) binary'],
  [[0xce, 0xfa, 0xed, 0xfe], 'a macOS (Mach-O) binary'],
  [[0xcf, 0xfa, 0xed, 0xfe], 'a macOS (Mach-O) binary'],
  [[0xca, 0xfe, 0xba, 0xbe], 'a macOS universal (Mach-O) binary or a Java class file'],
  [[0x00, 0x61, 0x73, 0x6d], 'a WebAssembly module'],
]

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b)
}

/** Text: no NUL, and nearly every byte printable, whitespace or part of UTF-8. */
function looksLikeText(bytes: Uint8Array): boolean {
  let odd = 0
  for (const b of bytes) {
    if (b === 0) return false
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b) odd++
  }
  return odd * 20 <= bytes.length
}

/** Identifies a file from its first IDENTIFY_BYTES bytes (fewer if the file is shorter). */
export function identifyFile(bytes: Uint8Array): FileFormat {
  if (bytes.length === 0) return { kind: 'empty' }
  if (startsWith(bytes, [0x7f, 0x45, 0x4c, 0x46])) return { kind: 'elf' }
  if (startsWith(bytes, [0x23, 0x21])) {
    const end = bytes.indexOf(0x0a)
    const line = new TextDecoder().decode(bytes.subarray(2, end < 0 ? bytes.length : end)).trim()
    const [interpreter = '', ...args] = line.split(/[ \t]+/)
    return { kind: 'script', interpreter, args }
  }
  for (const [magic, what] of MAGICS) if (startsWith(bytes, magic)) return { kind: 'binary', what }
  return looksLikeText(bytes) ? { kind: 'text' } : { kind: 'unknown' }
}
