// The key line of a golden's header, '# key: <key>', for any key a test can make. A key is written
// as it is, as every golden before this encoding was, unless it would not read back the same from a
// line of UTF-8 text; then it is written as a JSON string, '# key: "a\nb 1"', escaped to ASCII for
// the characters JSON leaves raw. A key always ends in its count (' 1'), so a plain key never both
// starts and ends with '"': a value that does is a quoted one.

/** Characters a plain key line cannot hold or would hide: line breaks, C0 and C1 controls but tab, DEL. */
const NEEDS_QUOTES = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/u
/** An unpaired surrogate: UTF-8 cannot hold it (written as U+FFFD, it would read back as another key). */
const LONE_SURROGATE = /[\ud800-\udfff]/u
/** What JSON.stringify leaves raw but a reader or an editor may not: C1 controls, DEL, line and paragraph separators. */
const RAW_IN_JSON = /[\u007f-\u009f\u2028\u2029]/g

function isQuoted(value: string): boolean {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"')
}

/** The text after '# key: ' for `key`. */
export function encodeKey(key: string): string {
  if (key !== '' && !NEEDS_QUOTES.test(key) && !LONE_SURROGATE.test(key) && !isQuoted(key)) return key
  return JSON.stringify(key).replace(RAW_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** The key the text after '# key: ' holds, or undefined when it is damaged (a broken quoted key, an empty plain one). */
export function decodeKey(value: string): string | undefined {
  if (!isQuoted(value)) return value === '' || /[\r\u2028\u2029]/.test(value) ? undefined : value
  try {
    const key: unknown = JSON.parse(value)
    return typeof key === 'string' ? key : undefined
  } catch {
    return undefined
  }
}
