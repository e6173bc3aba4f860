// Child process of bench/snapshot-io.ts: loads one file and prints its time and the process's peak
// RSS as JSON (VmHWM of /proc/self/status: getrusage's maxRSS keeps the parent's across exec).
// `node snapshot-load.js snapshot FILE` (loadSnapshot) or `raw FILE` (the file read whole into one
// buffer: the floor for any loader that holds the content).
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs'
import { loadSnapshot } from '../src/index.js'

const [how, file] = process.argv.slice(2)
if (!file) throw new Error('usage: snapshot-load.js snapshot|raw FILE')
/** A line of /proc/self/status in KiB: VmRSS now, VmHWM the peak. */
function statusKiB(field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN)
}

const before = statusKiB('VmRSS')
const t0 = performance.now()
let held = 0
if (how === 'snapshot') {
  const snap = loadSnapshot(file)
  for (const m of snap.data.maps) held += m.content?.length ?? 0
} else {
  const fd = openSync(file, 'r')
  const out = new Uint8Array(fstatSync(fd).size)
  for (let done = 0; done < out.length;) {
    const n = readSync(fd, out, done, Math.min(out.length - done, 1 << 30), done)
    if (n <= 0) break
    done += n
  }
  closeSync(fd)
  held = out.length
}
const ms = performance.now() - t0
console.log(JSON.stringify({ ms, maxRssKiB: statusKiB('VmHWM'), startRssKiB: before, held }))
