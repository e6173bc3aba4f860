// Which mechanism this kernel offers to learn the pages a process wrote since a point, probed once
// on this process (the kernel's configuration is the same for a child): userfaultfd asynchronous
// write-protect with PAGEMAP_SCAN (Linux >= 6.7), or soft-dirty bits (CONFIG_MEM_SOFT_DIRTY).
import { closeFd } from '../native/memory.js'
import { lastErrno, pointerAddress, sys } from '../native/libc.js'
import { errnoName } from '../native/constants.js'
import { PAGE, PM_SOFT_DIRTY, openPagemap, readPagemap, scanWritten, type PageRun } from '../native/pagemap.js'
import { UFFD_FEATURE, UFFD_USER_MODE_ONLY, uffdApi } from '../native/userfaultfd.js'

export type WriteTracking = 'uffd-wp' | 'soft-dirty'

export interface WriteTrackingProbe {
  /** The mechanism to use, or undefined when there is none (callers then read everything). */
  mechanism: WriteTracking | undefined
  /** Why uffd-wp is not used, when it is not ('' when it is). */
  uffd: string
  /** Why soft-dirty is not available, when it is not ('' when it is). */
  softDirty: string
}

const SYS_USERFAULTFD = 323
const O_CLOEXEC = 0o2000000
const PROT_RW = 3
const MAP_PRIVATE_ANONYMOUS = 0x22

let probed: WriteTrackingProbe | undefined

/** What this kernel offers (probed once per process). */
export function probeWriteTracking(): WriteTrackingProbe {
  if (probed) return probed
  const page = sys.mmap(null, PAGE, PROT_RW, MAP_PRIVATE_ANONYMOUS, -1, 0)
  const address = pointerAddress(page)
  try {
    const uffd = address === 2n ** 64n - 1n ? 'mmap failed' : probeUffd(address)
    const softDirty = address === 2n ** 64n - 1n ? 'mmap failed' : probeSoftDirty(page, address)
    probed = { mechanism: uffd === '' ? 'uffd-wp' : softDirty === '' ? 'soft-dirty' : undefined, uffd, softDirty }
    return probed
  } finally {
    sys.munmap(page, PAGE)
  }
}

/** '' when userfaultfd with WP_ASYNC and WP_UNPOPULATED, and PAGEMAP_SCAN, both work here; else why not. */
function probeUffd(address: bigint): string {
  const fd = Number(sys.syscall2(SYS_USERFAULTFD, O_CLOEXEC | UFFD_USER_MODE_ONLY, 0))
  if (fd < 0) return `userfaultfd() fails (${errnoName(lastErrno())})`
  try {
    const want = UFFD_FEATURE.WP_ASYNC | UFFD_FEATURE.WP_UNPOPULATED
    const api = uffdApi(fd, want)
    if (api.errno !== 0 || (api.features & want) !== want)
      return `userfaultfd has no asynchronous write-protect (UFFD_FEATURE_WP_ASYNC, Linux 6.7): ${errnoName(api.errno)}`
  } finally {
    closeFd(fd)
  }
  const pm = openPagemap('self')
  if (pm < 0) return `cannot open /proc/self/pagemap (${errnoName(-pm)})`
  try {
    const runs: PageRun[] = []
    const errno = scanWritten(pm, address, address + PAGE, 0n, runs)
    return errno === 0 ? '' : `no PAGEMAP_SCAN ioctl (Linux 6.7): ${errnoName(errno)}`
  } finally {
    closeFd(pm)
  }
}

/** '' when a freshly written page reads soft-dirty in pagemap (bit 55); else why not. */
function probeSoftDirty(page: unknown, address: bigint): string {
  sys.memcpy(page, Uint8Array.of(1), 1)
  const pm = openPagemap('self')
  if (pm < 0) return `cannot open /proc/self/pagemap (${errnoName(-pm)})`
  try {
    const entry = new BigUint64Array(1)
    const errno = readPagemap(pm, address, 1, entry)
    if (errno !== 0) return `cannot read /proc/self/pagemap (${errnoName(errno)})`
    return ((entry[0] ?? 0n) & PM_SOFT_DIRTY) !== 0n ? '' : 'the kernel has no soft-dirty bits (CONFIG_MEM_SOFT_DIRTY)'
  } finally {
    closeFd(pm)
  }
}
