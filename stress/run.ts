// `npm run stress [-- scenario...]`: issue 11's attacks that are too long for CI, each bounded in time.
// Scenarios: strays (launcher race + descendants), pool (threads-pool hang, zombies, pool latency),
// goldens and snapshots (when stress/goldens.ts and stress/snapshots.ts exist); finer: race,
// descendants, hang, zombies, latency. No argument runs strays, pool, goldens and snapshots.
// Markdown goes to stdout and is appended to stress/RESULTS.md with the date and CPU model.
import { execFileSync } from 'node:child_process'
import { appendFileSync, existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { hang, latency, run as pool, zombies } from './pool.js'
import { ROOT } from './procs.js'
import { becomeSubreaper } from './reaper.js'
import { descendants, launcherRace, run as strays } from './strays.js'

type Scenario = () => Promise<string>

/** A helper's scenario module (compiled next to this file), if it was written: `run()` returns markdown. */
function optional(name: string): Scenario | undefined {
  const url = new URL(`./${name}.js`, import.meta.url)
  if (!existsSync(fileURLToPath(url))) return undefined
  return async () => {
    const mod = (await import(url.href)) as { run: Scenario }
    return mod.run()
  }
}

const SCENARIOS: Record<string, Scenario | undefined> = {
  strays,
  pool,
  goldens: optional('goldens'),
  snapshots: optional('snapshots'),
  race: launcherRace,
  descendants,
  hang,
  zombies,
  latency,
}
const ALL = ['strays', 'pool', 'goldens', 'snapshots']

function cpuModel(): string {
  try {
    return (
      execFileSync('grep', ['-m1', 'model name', '/proc/cpuinfo'], { encoding: 'utf8' }).split(':')[1]?.trim() ?? '?'
    )
  } catch {
    return '?'
  }
}

async function main(): Promise<void> {
  const names = process.argv.length > 2 ? process.argv.slice(2) : ALL
  const unknown = names.filter((n) => !(n in SCENARIOS))
  if (unknown.length > 0)
    throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`)
  // What the runs orphan comes to this process, to be killed and reaped (stress/reaper.ts).
  becomeSubreaper()
  const sections = [`## ${new Date().toISOString()} — ${cpuModel()} — \`npm run stress -- ${names.join(' ')}\``]
  process.stdout.write(`${sections[0]}\n\n`)
  for (const name of names) {
    const scenario = SCENARIOS[name]
    if (!scenario) {
      sections.push(`_${name}: stress/${name}.ts is not there yet, skipped._`)
      continue
    }
    const t0 = performance.now()
    const text = await scenario()
    sections.push(`${text}\n\n_${name}: ${((performance.now() - t0) / 1000).toFixed(0)} s._`)
    process.stdout.write(`${sections.at(-1)}\n\n`)
  }
  appendFileSync(`${ROOT}stress/RESULTS.md`, `${sections.join('\n\n')}\n\n`)
}

await main()
