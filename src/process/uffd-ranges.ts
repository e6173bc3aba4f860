// Which parts of a range are still registered with a userfaultfd in write-protect mode: the
// mappings whose VmFlags in /proc/PID/smaps carry 'uw' (read only when a scan found a change).
import { readFileSync } from 'node:fs'
import type { PageRun } from '../native/pagemap.js'

/** The runs of `range` covered by mappings registered for write-protect ('uw'), in address order. */
export function registeredRuns(pid: number, range: PageRun): PageRun[] {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'latin1')
  } catch {
    return []
  }
  const out: PageRun[] = []
  let current: PageRun | undefined
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line)
    if (head) {
      current = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`) }
      continue
    }
    if (!current || !line.startsWith('VmFlags:')) continue
    const flags = line.slice('VmFlags:'.length).trim().split(/\s+/)
    const start = current.start > range.start ? current.start : range.start
    const end = current.end < range.end ? current.end : range.end
    if (flags.includes('uw') && start < end) out.push({ start, end })
    current = undefined
  }
  return out
}
