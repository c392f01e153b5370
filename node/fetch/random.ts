/** Random choices that spread many fetchers over the holders of a blob. */

/** Returns a copy of `items` in random order (Fisher-Yates). */
export function shuffle<T> (items: T[]): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const item = copy[i] as T
    copy[i] = copy[j] as T
    copy[j] = item
  }
  return copy
}

/** Returns up to `count` items of `items` chosen at random. */
export function sample<T> (items: T[], count: number): T[] {
  return shuffle(items).slice(0, count)
}
