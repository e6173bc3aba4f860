// ELF core file constants and the byte layout of the notes an x86_64 Linux core holds, each offset
// named after its source: elf.h (ELF64 header, program header, note types), linux
// include/uapi/linux/elfcore.h and glibc sys/procfs.h (elf_prstatus, elf_prpsinfo), asm/siginfo.h.

/** ELF64 header and program header (elf.h: Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr). */
export const ELF = {
  headerSize: 64,
  phentSize: 56,
  shentSize: 64,
  classElf64: 2,
  dataLsb: 1,
  version: 1,
  typeCore: 4,
  machineX86_64: 62,
  ptLoad: 1,
  ptNote: 4,
  pfX: 1,
  pfW: 2,
  pfR: 4,
  /** e_phnum's escape: the real count is in section header 0's sh_info (elf.h PN_XNUM). */
  pnXnum: 0xffff,
} as const

/** Note types (elf.h NT_*) and their owner names ("CORE" for the generic ones, "LINUX" for the xsave area). */
export const NT = {
  prstatus: 1,
  fpregset: 2,
  prpsinfo: 3,
  auxv: 6,
  siginfo: 0x53494749,
  file: 0x46494c45,
  x86Xstate: 0x202,
} as const

/** struct elf_prstatus on x86_64 (elfcore.h; glibc sys/procfs.h): 336 bytes. */
export const PRSTATUS = {
  size: 336,
  /** struct elf_siginfo pr_info: si_signo, si_code, si_errno (ints). */
  signo: 0,
  code: 4,
  errno: 8,
  /** short pr_cursig: the signal the thread stopped with. */
  cursig: 12,
  sigpend: 16,
  sighold: 24,
  pid: 32,
  ppid: 36,
  pgrp: 40,
  sid: 44,
  /** pr_utime, pr_stime, pr_cutime, pr_cstime: struct timeval each (16 bytes), from 48. */
  /** elf_gregset_t pr_reg: user_regs_struct's 27 words, in REGISTERS order (sys/user.h). */
  reg: 112,
  regCount: 27,
  /** int pr_fpvalid: 1 when an FPU note follows. */
  fpvalid: 328,
} as const

/** struct elf_prpsinfo on x86_64 (elfcore.h; glibc sys/procfs.h): 136 bytes. */
export const PRPSINFO = {
  size: 136,
  state: 0,
  sname: 1,
  zomb: 2,
  nice: 3,
  flag: 8,
  uid: 16,
  gid: 20,
  pid: 24,
  ppid: 28,
  pgrp: 32,
  sid: 36,
  fname: 40,
  fnameSize: 16,
  psargs: 56,
  psargsSize: 80,
} as const

/** siginfo_t (asm-generic/siginfo.h): 128 bytes; si_addr of a fault at 16, after int signo, errno, code and padding. */
export const SIGINFO = { size: 128, signo: 0, errno: 4, code: 8, addr: 16 } as const

/** The NT_FILE note's page size unit for offsets (fs/binfmt_elf.c fill_files_note writes PAGE_SIZE). */
export const FILE_NOTE_PAGE = 4096

/**
 * The xsave area as procsnap writes it: the standard (non-compacted) format with Intel's offsets
 * (Intel SDM vol. 1, 13.4; CPUID 0xD on Intel), whatever CPU the snapshot came from. gdb 13 reads a
 * core's area at these offsets only; gdb 14 and later pick Intel's or AMD's offsets by the area's size
 * (i387_guess_xsave_layout: 2696 with PKRU, 2688 with AVX-512, 832 with AVX are Intel's), so these
 * sizes make both read it right. An AMD Zen 4 kernel writes opmask at 832 in a 2440-byte area instead.
 */
export const XSAVE = {
  /** FXSAVE region (x87, SSE), then the 64-byte header at 512 holding XSTATE_BV. */
  legacySize: 512,
  xstateBv: 512,
  headerEnd: 576,
  /** sw_usable_bytes[464..471]: XCR0, as the kernel writes it for ptrace and cores (asm/user.h). */
  swXcr0: 464,
  /** Component bit -> [offset, size] (Intel's standard format). */
  components: new Map<number, readonly [offset: number, size: number]>([
    [2, [576, 256]], // avx: upper halves of ymm0-15
    [5, [1088, 64]], // opmask: k0-7
    [6, [1152, 512]], // zmm_hi256: upper halves of zmm0-15
    [7, [1664, 1024]], // hi16_zmm: zmm16-31
    [9, [2688, 8]], // pkru
  ]),
} as const
