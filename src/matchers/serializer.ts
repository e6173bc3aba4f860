// How Vitest prints a process or a snapshot (in a failure message, a toEqual diff, a regular
// snapshot): one symbolized line instead of the object's internals.
import { Process } from '../process/process.js'
import { ProcessSnapshot, ThreadSnapshot } from '../snapshot/snapshot.js'
import { isSubject, subjectOf } from './subject.js'

function describeSubject(value: unknown): string {
  if (value instanceof Process) {
    const exit = value.exit
    if (exit)
      return (
        `Process ${value.pid} (${value.path}) ` +
        `${exit.signal !== undefined ? `killed by ${exit.signal}` : `exited with ${exit.exitCode}`}`
      )
    return `Process ${value.pid} (${value.path}) stopped at ${subjectOf(value, 'print').where()}`
  }
  if (value instanceof ProcessSnapshot || value instanceof ThreadSnapshot) {
    const kind = value instanceof ThreadSnapshot ? 'ThreadSnapshot' : 'ProcessSnapshot'
    const name = value.name !== undefined ? ` "${value.name}"` : ''
    return `${kind}${name} (${value.level}, ${value.arch}, process ${value.pid}) at ${subjectOf(value, 'print').where()}`
  }
  return String(value)
}

/** A pretty-format plugin for expect.addSnapshotSerializer (the plugin's setup file adds it). */
export const processSerializer = {
  test: (value: unknown): boolean => isSubject(value),
  serialize: (value: unknown): string => describeSubject(value),
}
