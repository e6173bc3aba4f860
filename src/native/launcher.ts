// A 350-byte static launcher, built in memory: it waits for one byte on fd 3 (the tracer
// writes it once PTRACE_SEIZE is done; 2 asks it to hand the program's randomness to the tracer:
// getrandom() stops at a seccomp filter, rdtsc faults), closes fd 3 and every fd above it, then
// execve(argv[1], argv+2, envp). So the tracee is seized before it runs a single instruction
// of the target, with no signals and no shell, and starts with only fds 0, 1, 2.
// If execve fails the launcher exits with the errno as its status.
import { sys, lastErrno } from './libc.js'

// x86_64 machine code of _start (GNU as, intel syntax):
//   mov edi,3; lea rsi,[rsp-16]; mov edx,1; xor eax,eax; syscall       read(3, buf, 1)
//   cmp byte ptr [rsp-16],2; jne 1f                                     byte 2: fix the randomness
//   mov edi,38; mov esi,1; xor edx,edx; xor r10d,r10d; xor r8d,r8d
//   mov eax,157; syscall                                                 prctl(PR_SET_NO_NEW_PRIVS, 1)
//   lea rax,[rip+filter]; mov [rsp-24],rax; mov word ptr [rsp-32],6
//   mov edi,1; xor esi,esi; lea rdx,[rsp-32]; mov eax,317; syscall      seccomp(SET_MODE_FILTER, 0, {6, filter})
//   mov edi,26; mov esi,2; mov eax,157; syscall                          prctl(PR_SET_TSC, PR_TSC_SIGSEGV)
// 1:
//   mov edi,3; mov esi,-1; xor edx,edx; mov eax,436; syscall            close_range(3, ~0, 0)
//   mov edi,3; mov eax,3; syscall                                        close(3), for kernels < 5.9
//   mov rcx,[rsp]; mov rdi,[rsp+16]; lea rsi,[rsp+24]; lea rdx,[rsp+rcx*8+16]
//   mov eax,59; syscall                                                  execve(argv[1], &argv[2], envp)
//   mov edi,eax; neg edi; mov eax,60; syscall                            exit(-ret)
// .balign 8; filter: (classic BPF)                                       getrandom() stops for the tracer
//   ld [4]; jeq #AUDIT_ARCH_X86_64, 0, 3; ld [0]; jeq #318, 0, 1; ret #SECCOMP_RET_TRACE; ret #SECCOMP_RET_ALLOW
const X86_64_CODE =
  'bf03000000488d7424f0ba0100000031c00f05807c24f0027550bf26000000be0100000031d24531d24531c0b89d0000' +
  '000f05488d057600000048894424e866c74424e00600bf0100000031f6488d5424e0b83d0100000f05bf1a000000be02' +
  '000000b89d0000000f05bf03000000beffffffff31d2b8b40100000f05bf03000000b8030000000f05488b0c24488b7c' +
  '2410488d742418488d54cc10b83b0000000f0589c7f7dfb83c0000000f0566902000000004000000150000033e0000c0' +
  '2000000000000000150000013e010000060000000000f07f060000000000ff7f'

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
