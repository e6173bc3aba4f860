// The launcher, a small static executable built in memory (its source: launcher/launcher.c): it
// waits for its go message on fd 3 (the tracer writes it once PTRACE_SEIZE is done, see
// launcherMessage), closes fd 3 and every fd above it, then execve(argv[1], argv+2, envp). So the
// tracee is seized before it runs a single instruction of the target, with no signals and no shell,
// and starts with only fds 0, 1, 2. Mode 2 of the message also hands the program's randomness to the
// tracer: no_new_privs, the seccomp filter the message carries, rdtsc faulting. With the isolate
// flag it first makes new user, PID, UTS and mount namespaces: the launcher clones an init (pid 1,
// a child of the tracer) and ends; the init forks the target (pid 2) and ends with its status.
// If execve fails the launcher exits with the errno as its status.
import { sys, lastErrno } from './libc.js'

// x86_64 machine code of launcher/launcher.c, loaded at 0x400078 (launcher/launcher.ld), as
// launcher/build.sh prints it. test/native/launcher.test.ts rebuilds it with the compiler below.
export const LAUNCHER_COMPILER = 'gcc (Debian 12.2.0-14+deb12u1) 12.2.0'
const X86_64_CODE =
  '4889e7e8a0000000f441b9e700000031d24531d24531c04c89c84889d60f05ebee31c0803c0700740548ffc0ebf5c341544531e44531d245' +
  '31c055b8020000004889f54c89e253bb010000004889de0f054989c14885c078304889ef4889eee8bdffffff4c89cf4889c24889d80f0548' +
  '89c34c89e6b8030000004c89e20f054531c94885db4c0f4ecb5b4c89c85d415cc34885f6790e48f7deccbf7e000000e865ffffff4889f0c3' +
  '415731d24531d24531c04156b89d000000be090000004155415455534889fbbf010000004881ec18100000488954241831d20f05bf030000' +
  '00488d742418ba0010000031c00f054885c07f0731ffe9790300000fb744241a6689442406f6442419010f84c30200004c8d7cc6084531d2' +
  '4531c04c89ffe8fefeffff4d8d7407014c89f7e8f1feffff4d8d6406014c89e7e8e4feffff498d6c04014889efe8d7feffff31ff4c8d6c05' +
  '014889feb8740000004889fa0f05b810010000bf000002340f05bf010000004889c6e81affffffbef1044000bff6044000e8a9feffffbf02' +
  '0000004889c6e8fefeffff4c89febf0b054000e88ffeffffbf030000004889c6e8e4feffff4c89f6bf1e054000e875feffffbf0400000048' +
  '89c6e8cafeffff4c89e74531d24531c0e84cfeffff31d24889c6b8aa0000000f05bf050000004889c6e8a3feffff4889ef4531d24531c0e8' +
  '25feffff31d24889c6b8ab0000000f05bf050000004889c6bda5000000e877feffff31ff41ba004004004531c0be310540004889e84889fa' +
  '0f05bf060000004889c6e852feffff41807d0000744741ba005000004531c0bf3305400031d24889e84c89ee0f05bf070000004889c6e826' +
  'feffff31f64531d24531c0b8500000004c89ef4889f20f05bf080000004889c6e804feffff31ed4531d24531c0b838000000bf1180000048' +
  '89ee4889ea0f05bf090000004889c6e8ddfdffff4885c00f8f37feffff41b99d0000004531d24531c04889eabf01000000be090000004c89' +
  'c80f05be35054000bf0f0000004c89c80f05b8700000004889ef4889ee0f05bf0a0000004889c6e88dfdffffba4405400041ba0e00000045' +
  '31c0be43054000b8a50000004889d70f05bf0b0000004889c6e863fdffff4531d24531c0b8390000004889ef4889ee4889ea0f05bf0c0000' +
  '004889c6e840fdffff4989c14885c0747a4531d24531c0b8b4010000beffffffff4889ef4889ea0f05bb3d000000488d7424084883cfffba' +
  '0000004031c04531d24531c0894424084889d80f054939c175248b44240889c283e27f740e8d82800000004863f8e9c10000000fb6fc4863' +
  'ffe9b60000004885c079c14883f8fc74bbbf7f000000e9a1000000807c241802755c0fb744240641b99d00000031ed4531d241bc01000000' +
  '4531c0bf260000004889ea4889442408488d4424204c89e648894424104c89c80f05b83d010000488d5424084c89e74889ee0f05bf1a0000' +
  '00be020000004c89c84889ea0f054531d24531c0bf0300000031d2b8b4010000beffffffff0f054889f84889d60f05488b03488d7318488b' +
  '7b10488d54c310b83b0000000f0548f7d84889c7e890fbffff64656e79002f70726f632f73656c662f73657467726f757073002f70726f63' +
  '2f73656c662f7569645f6d6170002f70726f632f73656c662f6769645f6d6170002f002e0070726f63736e61702d696e6974002f70726f63' +
  '00'

const CODE_BY_ARCH: Readonly<Record<string, { machine: number; code: string }>> = {
  x86_64: { machine: 62, code: X86_64_CODE },
}

const LOAD_ADDRESS = 0x400000n
const HEADER_SIZE = 64 + 56 // Elf64_Ehdr + one Elf64_Phdr

/** A minimal static ELF64 executable holding `code` in one R+X PT_LOAD segment. */
export function buildLauncherElf(arch: string): Buffer {
  const spec = CODE_BY_ARCH[arch]
  if (!spec) throw new Error(`no launcher for ${arch}`)
  const code = Buffer.from(spec.code, 'hex')
  const elf = Buffer.alloc(HEADER_SIZE + code.length)
  elf.write('\x7fELF', 0, 'latin1')
  elf[4] = 2 // ELFCLASS64
  elf[5] = 1 // little endian
  elf[6] = 1 // EV_CURRENT
  elf.writeUInt16LE(2, 16) // ET_EXEC
  elf.writeUInt16LE(spec.machine, 18)
  elf.writeUInt32LE(1, 20)
  elf.writeBigUInt64LE(LOAD_ADDRESS + BigInt(HEADER_SIZE), 24) // e_entry
  elf.writeBigUInt64LE(64n, 32) // e_phoff
  elf.writeUInt16LE(64, 52) // e_ehsize
  elf.writeUInt16LE(56, 54) // e_phentsize
  elf.writeUInt16LE(1, 56) // e_phnum
  elf.writeUInt16LE(64, 58) // e_shentsize
  // Program header: PT_LOAD, R+X, the whole file at LOAD_ADDRESS.
  elf.writeUInt32LE(1, 64)
  elf.writeUInt32LE(5, 68)
  elf.writeBigUInt64LE(0n, 72)
  elf.writeBigUInt64LE(LOAD_ADDRESS, 80)
  elf.writeBigUInt64LE(LOAD_ADDRESS, 88)
  elf.writeBigUInt64LE(BigInt(elf.length), 96)
  elf.writeBigUInt64LE(BigInt(elf.length), 104)
  elf.writeBigUInt64LE(0x1000n, 112)
  code.copy(elf, HEADER_SIZE)
  return elf
}

let launcherPath: string | undefined

/**
 * Path of the launcher: a memfd of this process (no file on disk, works on noexec /tmp),
 * created once per thread that loads this module.
 */
export function launcherExecutable(arch: string): string {
  if (launcherPath) return launcherPath
  const elf = buildLauncherElf(arch)
  const MFD_CLOEXEC = 1
  const fd = sys.memfd_create('procsnap-launcher', MFD_CLOEXEC)
  if (fd < 0) throw new Error(`memfd_create failed: errno ${lastErrno()}`)
  if (Number(sys.write(fd, elf, elf.length)) !== elf.length)
    throw new Error(`writing the launcher failed: errno ${lastErrno()}`)
  // The child execs /proc/self/fd/N: its copy of the fd table still holds the memfd until exec.
  launcherPath = `/proc/self/fd/${fd}`
  return launcherPath
}
