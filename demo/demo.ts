// `npm run demo`: launch the counter fixture, stop at a breakpoint, print what a debugger would show,
// then snapshot two stops and print their diff.
import { fileURLToPath } from 'node:url'
import { launch } from '../src/index.js'

const counter = fileURLToPath(new URL('../../fixtures/c/bin/counter', import.meta.url))
const hex = (v: bigint, width = 16): string => `0x${v.toString(16).padStart(width, '0')}`

await using proc = await launch(counter, { args: ['3'] })
console.log(`launched ${proc.path} (pid ${proc.pid}), stopped at entry: ${proc.symbolize(proc.regs.rip)}`)

const bp = proc.breakAt('bump')
console.log(`breakpoint ${bp.id} at ${hex(bp.address ?? 0n)} ${bp.description}`)
await proc.cont()
const ev = await proc.cont() // the second call of bump
if (ev.kind !== 'breakpoint') throw new Error(`expected a breakpoint, got ${ev.kind}`)
console.log(
  `\nstopped: ${ev.kind} ${ev.breakpoint.id} in thread ${ev.thread.index} at ${hex(ev.pc)} ${ev.location} (hit ${bp.hits} times)`,
)

console.log('\nregisters:')
const regs = proc.regs.toJSON()
const names = Object.keys(regs)
for (let i = 0; i < names.length; i += 3) {
  console.log(
    names
      .slice(i, i + 3)
      .map((n) => `${n.padEnd(8)} ${hex(regs[n] ?? 0n)}`)
      .join('   '),
  )
}

const counterValue = Buffer.from(proc.readMemory('g_counter', 4)).readInt32LE(0)
console.log(`\ng_counter = ${counterValue}   (argument by = ${proc.regs.edi})`)

console.log('\nmemory maps:')
for (const m of proc.maps) {
  console.log(`${hex(m.start, 12)}-${hex(m.end, 12)} ${m.perms} ${hex(m.offset, 8)} ${m.path}`)
}

// Snapshots: the state at this stop and at the next, compared; a is old, b is new.
const a = proc.createSnapshot({ level: 'writable', name: 'second bump' })
console.log('\nbacktrace (CFI):')
a.pprintBacktrace()
await proc.cont()
const b = proc.createSnapshot({ level: 'writable', name: 'third bump' })
console.log('\nwhat changed between the second and the third call of bump:')
a.diff(b).pprint()

const end = await proc.wait()
console.log(`\nstdout of the program:\n${proc.stdout.trimEnd()}\nexit: ${JSON.stringify(end)}`)
