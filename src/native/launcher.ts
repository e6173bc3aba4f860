// A 185-byte static launcher, built in memory: it waits for its go message on fd 3 (the tracer
// writes it once PTRACE_SEIZE is done, see launcherMessage), closes fd 3 and every fd above it, then
// execve(argv[1], argv+2, envp). So the tracee is seized before it runs a single instruction
// of the target, with no signals and no shell, and starts with only fds 0, 1, 2. A message whose
// first byte is 2 also hands the program's randomness to the tracer: no_new_privs, the seccomp
// filter the message carries (the syscalls it traps stop for the tracer), rdtsc faulting.
// If execve fails the launcher exits with the errno as its status.
import { sys, lastErrno } from './libc.js'

// x86_64 machine code of _start (GNU as, intel syntax; message = mode, 0, u16 filter length, 4 bytes, filter):
//   mov r12,rsp; sub rsp,4160                                           buf = rsp+64, sock_fprog at rsp
//   mov edi,3; lea rsi,[rsp+64]; mov edx,4096; xor eax,eax; syscall     read(3, buf, 4096)
//   cmp byte ptr [rsp+64],2; jne 1f                                     mode 2: fix the randomness
//   mov edi,38; mov esi,1; xor edx,edx; xor r10d,r10d; xor r8d,r8d
//   mov eax,157; syscall                                                 prctl(PR_SET_NO_NEW_PRIVS, 1)
//   movzx eax,word ptr [rsp+66]; mov word ptr [rsp],ax; lea rax,[rsp+72]; mov [rsp+8],rax
//   mov edi,1; xor esi,esi; mov rdx,rsp; mov eax,317; syscall           seccomp(SET_MODE_FILTER, 0, {len, buf+8})
//   mov edi,26; mov esi,2; mov eax,157; syscall                          prctl(PR_SET_TSC, PR_TSC_SIGSEGV)
// 1:
//   mov edi,3; mov esi,-1; xor edx,edx; mov eax,436; syscall            close_range(3, ~0, 0)
//   mov edi,3; mov eax,3; syscall                                        close(3), for kernels < 5.9
//   mov rsp,r12; mov rcx,[rsp]; mov rdi,[rsp+16]; lea rsi,[rsp+24]; lea rdx,[rsp+rcx*8+16]
//   mov eax,59; syscall                                                  execve(argv[1], &argv[2], envp)
//   mov edi,eax; neg edi; mov eax,60; syscall                            exit(-ret)
const X86_64_CODE =
  '4989e44881ec40100000bf03000000488d742440ba0010000031c00f05807c244002754ebf26000000be0100000031d2' +
  '4531d24531c0b89d0000000f050fb744244266890424488d4424484889442408bf0100000031f64889e2b83d0100000f' +
  '05bf1a000000be02000000b89d0000000f05bf03000000beffffffff31d2b8b40100000f05bf03000000b8030000000f' +
  '054c89e4488b0c24488b7c2410488d742418488d54cc10b83b0000000f0589c7f7dfb83c0000000f05'

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
