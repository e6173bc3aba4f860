import { it } from 'vitest'
import { fixture, start } from '../helpers.js'
it('dbg', async () => {
  for (let run = 0; run < 20; run++) {
    const proc = await start(fixture('threads'), { args: ['4', '1'] })
    proc.breakAt('thread_started')
    const log: string[] = []
    for (;;) {
      const ev = await proc.cont()
      if (ev.kind !== 'breakpoint') { log.push(JSON.stringify(ev)); break }
      log.push(`${ev.thread.tid} idx ${ev.thread.index} rdi ${ev.thread.regs.rdi} threads ${proc.threads.map(t=>t.index+':'+t.tid).join(',')}`)
    }
    console.log(run, log.join(' | '), proc.stdout)
  }
}, 60000)
