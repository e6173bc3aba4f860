// Runs of changed bytes as start, end, start, end... in a number array: merged across small gaps.

/** Equal bytes between two changed runs up to which they are reported as one range. */
export const MERGE_GAP = 4

/** Appends [from, to) to the runs after `first`, or extends the last when at most MERGE_GAP equal bytes lie between. */
export function addRun(runs: number[], first: number, from: number, to: number): void {
  const last = runs.length - 1
  if (last > first && from - (runs[last] ?? 0) <= MERGE_GAP) runs[last] = to
  else runs.push(from, to)
}
