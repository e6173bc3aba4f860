// A child of the launcher race (stress/strays.ts): launches `brood 0 1000` and kills it, over and over,
// until it is SIGKILLed itself; prints 'looping' once the first launch is done. argv[2]: 'isolate' or not.
import { launch } from '../src/index.js'
import { FIXTURES } from './procs.js'

const isolate = process.argv[2] === 'isolate'
for (let i = 0; ; i++) {
  const proc = await launch(`${FIXTURES}brood`, { args: ['0', '1000'], isolate, stdout: 'ignore', stderr: 'ignore' })
  if (i === 0) process.stdout.write('looping\n')
  await proc.kill()
}
