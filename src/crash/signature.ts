// A crash's signature: a short id that stays the same while the crash does. It is made of the
// signal, its si_code for a fault, and the top frames of the crashing thread as module!function:
// no address and no offset, so it holds across ASLR, across rebuilds that leave those functions be,
// and across machines. The C and C++ runtimes' abort machinery (raise, abort, __assert_fail,
// __stack_chk_fail, __fortify_fail, std::terminate...) is skipped for a signal the program sent
// itself, so that an assert failing in check_input() is signed by check_input and its callers.
import { createHash } from 'node:crypto'
import type { Frame } from '../snapshot/model.js'

/** How many frames, after the runtime's are skipped, make the signature. */
export const SIGNATURE_FRAMES = 3

/** The C and C++ runtimes: libc, the dynamic loader, libpthread, libstdc++/libc++, libgcc_s. */
const RUNTIME = /^(libc\.so|ld-linux[^/]*\.so|ld\.so|libpthread\.so|libstdc\+\+\.so|libc\+\+(abi)?\.so|libgcc_s\.so)/

export function isRuntimeFrame(frame: Frame): boolean {
  return frame.module !== undefined && RUNTIME.test(frame.module)
}

/** A frame as the signature names it: 'crashes!store_null', 'libc.so.6!?' where no symbol is known. */
export function frameName(frame: Frame): string {
  return `${frame.module ?? '?'}!${frame.symbol ?? '?'}`
}

/**
 * The frames that sign a crash: for a signal the process sent itself (abort, raise: si_code <= 0),
 * from the first frame outside the runtimes; for a fault, from the faulting frame (a crash in
 * memcpy is one in memcpy). At most SIGNATURE_FRAMES, and none past a frame outside every module.
 */
export function signatureFrames(backtrace: readonly Frame[], selfSent: boolean): Frame[] {
  let first = 0
  if (selfSent) {
    while (first < backtrace.length && isRuntimeFrame(backtrace[first] as Frame)) first++
    if (first === backtrace.length) first = 0 // all in the runtime: sign with what there is
  }
  const frames = backtrace.slice(first, first + SIGNATURE_FRAMES)
  // A frame outside every module below the first is a stack unwound past its end or corrupt (a smashed return address).
  const end = frames.findIndex((f, i) => i > 0 && f.module === undefined)
  return end < 0 ? frames : frames.slice(0, end)
}

/** The text a signature hashes ('SIGSEGV/SEGV_MAPERR crashes!store_null < crashes!run < crashes!main') and its id (16 hex digits). */
export function crashSignature(
  signal: string,
  faultCode: string | undefined,
  frames: readonly Frame[],
): { id: string; text: string } {
  const head = faultCode ? `${signal}/${faultCode}` : signal
  const text = `${head} ${frames.map(frameName).join(' < ')}`.trim()
  const id = createHash('sha256').update(text).digest('hex').slice(0, 16)
  return { id, text }
}
