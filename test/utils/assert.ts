/** Assertion helpers that chai lacks without plugins. */
import { expect } from 'chai'

/** Awaits `promise`, expects it to reject with `type`, and returns the error; `message` must match when given. */
export async function expectRejection<T extends Error> (promise: Promise<unknown>, type: abstract new (...args: any[]) => T, message?: RegExp): Promise<T> {
  let error: unknown
  try {
    await promise
  } catch (err) {
    error = err
  }

  expect(error, 'expected a rejection').to.be.instanceOf(type)
  if (message != null) {
    expect((error as Error).message).to.match(message)
  }
  return error as T
}
