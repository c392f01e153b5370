/**
 * Sets `key` in an insertion-ordered map as its most recent entry, and drops
 * the least recent entries beyond `maxEntries`. The maps that remember peers,
 * blobs and lookups use it to stay bounded however long the agent runs.
 */
export function setMostRecent<K, V> (map: Map<K, V>, key: K, value: V, maxEntries: number): void {
  // Re-inserting moves the key to the end, so the first key is the least recent.
  map.delete(key)
  map.set(key, value)

  while (map.size > maxEntries) {
    const oldest = map.keys().next()
    if (oldest.done === true) {
      return
    }
    map.delete(oldest.value)
  }
}
