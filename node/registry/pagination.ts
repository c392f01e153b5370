/**
 * Pagination of `tags/list` and `_catalog` with the `n` and `last` query
 * parameters, as the OCI distribution spec defines it: entries in lexical
 * order, starting after `last`, at most `n` of them, and a `Link` header
 * with `rel="next"` when more remain.
 *
 * @see https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
 */
import { MAX_PAGE_ENTRIES } from './constants.js'
import { RegistryError } from './errors.js'

/** One page of a sorted list, and the `last` value of the next page when there is one. */
export interface Page {
  entries: string[]
  nextLast?: string
}

/** Reads `n` from a query: undefined when absent, else an integer from 0, capped at MAX_PAGE_ENTRIES. */
export function parsePageSize (query: URLSearchParams): number | undefined {
  const value = query.get('n')
  if (value == null) {
    return undefined
  }

  if (!/^[0-9]{1,9}$/.test(value)) {
    throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid n ${JSON.stringify(value.slice(0, 40))}: expected a non-negative integer number of entries`)
  }

  return Math.min(Number(value), MAX_PAGE_ENTRIES)
}

/** Sorts the entries and cuts the page that `n` and `last` ask for. */
export function paginate (entries: string[], query: URLSearchParams): Page {
  const sorted = [...new Set(entries)].sort()
  const size = parsePageSize(query)
  const last = query.get('last')

  const start = last == null ? 0 : sorted.findIndex(entry => entry > last)
  const remaining = start === -1 ? [] : sorted.slice(start)

  // Without n the whole list is one page, as the spec requires for tags/list.
  if (size == null || remaining.length <= size) {
    return { entries: remaining }
  }

  const page = remaining.slice(0, size)
  return size === 0 ? { entries: page } : { entries: page, nextLast: page[page.length - 1] }
}

/** Formats the `Link` header that points at the next page. */
export function nextLink (path: string, size: number, last: string, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({ ...extra, n: String(size), last })
  return `<${path}?${params.toString()}>; rel="next"`
}
