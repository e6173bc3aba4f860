// Thread ids as the program sees them. A process in a PID namespace of its own (launch's isolate)
// knows itself by small ids, and its memory says so: glibc's struct pthread holds the thread's tid
// as the namespace numbers it. The kernel writes those ids in a core (fs/binfmt_elf.c, task_pid_vnr),
// and gdb's libthread_db matches them against memory: host ids would show every thread twice.

/** `length` bytes at a location ('libc.so.6!symbol' or an address), or undefined where the snapshot does not hold them. */
export type CoreMemoryRead = (location: string | bigint, length: number) => Uint8Array | undefined

/**
 * Where struct pthread keeps `tid` in glibc on x86_64 (0x2d0 from glibc 2.26 to 2.40, at least), for a
 * snapshot that does not hold libc's own description of it (`_thread_db_pthread_tid`: bits, count, offset).
 */
const GLIBC_TID_OFFSET = 0x2d0

function tidOffset(read: CoreMemoryRead): number {
  const desc = read('libc.so.6!_thread_db_pthread_tid', 12)
  if (!desc) return GLIBC_TID_OFFSET
  const view = new DataView(desc.buffer, desc.byteOffset, desc.byteLength)
  return view.getUint32(0, true) === 32 ? view.getUint32(8, true) : GLIBC_TID_OFFSET
}

/**
 * Each thread's id inside the namespace, by thread index: the main thread's is `ownPid`; the others'
 * are read from their struct pthread (at fs_base), and kept only when the main thread's reads as
 * `ownPid` there too (the layout is glibc's). Threads not found keep their host ids.
 */
export function namespaceTids(
  threads: readonly { readonly index: number; readonly regs: Readonly<Record<string, bigint>> }[],
  ownPid: number,
  read: CoreMemoryRead,
): Map<number, number> {
  const ids = new Map<number, number>([[1, ownPid]])
  const offset = tidOffset(read)
  const tidOf = (regs: Readonly<Record<string, bigint>>): number | undefined => {
    const tp = regs.fs_base
    const bytes = tp ? read(tp + BigInt(offset), 4) : undefined
    return bytes ? new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0, true) : undefined
  }
  const main = threads.find((t) => t.index === 1)
  if (!main || tidOf(main.regs) !== ownPid) return ids
  for (const t of threads) {
    const tid = tidOf(t.regs)
    if (t.index !== 1 && tid !== undefined && tid > 0) ids.set(t.index, tid)
  }
  return ids
}
