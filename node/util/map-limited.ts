/**
 * Maps items through an async function with at most `concurrency` calls
 * running at once, keeping the results in the order of the items.
 */
export async function mapLimited<Item, Result> (items: Item[], concurrency: number, map: (item: Item) => Promise<Result>): Promise<Result[]> {
  const results: Result[] = new Array(items.length)
  let next = 0

  // Each worker takes the next item when its call ends, so a slow item holds up only its worker.
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await map(items[index] as Item)
    }
  }

  const workers = Number.isSafeInteger(concurrency) && concurrency > 0 ? Math.min(concurrency, items.length) : Math.min(1, items.length)
  await Promise.all(Array.from({ length: workers }, worker))
  return results
}
