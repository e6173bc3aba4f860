// The isolate part of the launcher's go message (see launcher/launcher.c): flag 1 in byte 1, then
// the uid and gid map lines, the hostname, the domain name and the inner working directory.

/** What the launcher sets up in the new namespaces. */
export interface NamespaceSetup {
  /** One line of /proc/self/uid_map: 'inside outside count'. */
  uidMap: string
  gidMap: string
  hostname: string
  domainName: string
  /** Where the working directory is bind-mounted and entered; '' keeps it where it is. */
  cwd: string
}

const HEADER = 8
const ISOLATE_FLAG = 1
/** The launcher reads one pipe write of at most this many bytes (atomic up to PIPE_BUF). */
const MAX_MESSAGE = 4096

/** `message` (a go message of seccomp.ts) with the isolate flag set and the setup appended. */
export function withNamespaces(message: Uint8Array, setup: NamespaceSetup): Uint8Array {
  const strings = [setup.uidMap, setup.gidMap, setup.hostname, setup.domainName, setup.cwd]
  for (const s of strings) if (s.includes('\0')) throw new Error(`a namespace setting holds a NUL byte: ${s}`)
  const block = Buffer.from(strings.map((s) => `${s}\0`).join(''), 'utf8')
  const head = Math.max(message.length, HEADER)
  const out = new Uint8Array(head + block.length)
  if (out.length > MAX_MESSAGE) throw new Error(`launcher message too long: ${out.length} bytes`)
  out.set(message)
  out[1] = (out[1] ?? 0) | ISOLATE_FLAG
  out.set(block, head)
  return out
}

/** The launcher's namespace steps, by the number it reports in rdi when one fails. */
export const NAMESPACE_STEPS: Readonly<Record<number, string>> = {
  1: 'unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS)',
  2: 'writing /proc/self/setgroups',
  3: 'writing /proc/self/uid_map',
  4: 'writing /proc/self/gid_map',
  5: 'sethostname',
  6: 'making the mounts private',
  7: 'bind-mounting the working directory',
  8: 'chdir to the bind-mounted working directory',
  9: 'clone of the init process',
  10: 'setsid in the init process',
  11: 'mounting /proc for the new PID namespace',
  12: 'fork of the target',
}
