// toEqual over a memory diff's records: their fields are getters, made on first read, which Vitest's
// structural equality (own enumerable properties) does not see. The plugin's setup file adds this.
import type { ExpectStatic } from 'vitest'
import { LazyMemoryChange } from '../snapshot/memory-change.js'

type Tester = Parameters<ExpectStatic['addEqualityTesters']>[0][number]

function plain(value: unknown): unknown {
  return value instanceof LazyMemoryChange ? value.toJSON() : value
}

/** Compares a diff's memory record as the plain record it stands for (its toJSON), with a record or an object. */
export const memoryChangeEquality: Tester = function (a: unknown, b: unknown, customTesters) {
  if (!(a instanceof LazyMemoryChange) && !(b instanceof LazyMemoryChange)) return undefined
  return this.equals(plain(a), plain(b), customTesters)
}
