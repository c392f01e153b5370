/**
 * Drives the timeline: applies each event at its time, and on every tick
 * re-checks holdings, prints what changed, takes a sample and judges the
 * expectations. The run ends once every event is applied, every
 * expectation is decided and the minimum duration has passed.
 */
import { logger } from '@libp2p/logger'
import { sleep } from '../../node/net/signals.js'
import { applyEvent, type EventContext } from './events.js'
import { evaluate, type ExpectationState } from './expectations.js'
import { describeAction, describeCheck, formatSeconds } from './format.js'
import type { Fleet } from './fleet.js'
import type { HoldingTracker } from './holdings.js'
import type { ImageInfo } from './images.js'
import type { Recorder } from './recorder.js'
import type { Timeline } from './timeline.js'
import type { EventRecord } from '../metrics.js'
import type { SimNetwork } from '../network/network.js'
import type { Scenario, ScenarioEvent } from '../scenario/types.js'
import type { AbortOptions } from '@libp2p/interface'

const log = logger('kilomesh:sim:driver')

/** Actions that only ask running agents to do something; the timeline waits for them at most MAX_EVENT_WAIT_MS. */
const AGENT_REQUESTS: Array<ScenarioEvent['action']['kind']> = ['subscribe', 'unsubscribe', 'publish']

/**
 * Maximum time the timeline waits for an agent request before it moves on.
 * On a loaded machine a publish can take many seconds, which would shift
 * every later event; events that change the fleet (crash, restart, join)
 * are always awaited, because the events after them depend on their result.
 */
const MAX_EVENT_WAIT_MS = 1_000

interface Settled {
  text: string
  error?: Error
}

/** Waits for an event's outcome and turns a rejection into a value. */
async function settle (outcome: Promise<string>): Promise<Settled> {
  try {
    return { text: await outcome }
  } catch (err: any) {
    return { text: '', error: err instanceof Error ? err : new Error(String(err)) }
  }
}

/** Like settle, but returns undefined when the outcome takes longer than `timeoutMs`. */
async function settleWithin (outcome: Promise<string>, timeoutMs: number): Promise<Settled | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, timeoutMs) })
  try {
    return await Promise.race([settle(outcome), timeout])
  } finally {
    clearTimeout(timer)
  }
}

export interface DriverInit {
  scenario: Scenario
  fleet: Fleet
  network: SimNetwork
  holdings: HoldingTracker
  timeline: Timeline
  recorder: Recorder
  images: Map<string, ImageInfo>
}

export class Driver {
  readonly expectations: ExpectationState[]
  readonly events: EventRecord[] = []
  readonly failures: string[] = []
  private appliedThrough = -1
  private readonly background = new Set<Promise<void>>()

  constructor (private readonly init: DriverInit) {
    this.expectations = init.scenario.expectations.map(expectation => ({ expectation, text: describeCheck(expectation.check), status: 'pending' }))
  }

  /** Runs the timeline to its end; the caller has started the fleet and set the timeline's zero. */
  async run (options: AbortOptions = {}): Promise<void> {
    const { scenario, timeline } = this.init
    const ticker = setInterval(() => { this.tick() }, scenario.run.sampleIntervalMs)
    // A check exactly at each deadline, so a late tick cannot pass a tag that arrived after it.
    const deadlines = this.expectations.map(state => setTimeout(() => { this.judge() }, state.expectation.byMs - timeline.now()))
    this.tick()

    try {
      for (const event of scenario.events) {
        await sleep(event.atMs - timeline.now(), options.signal)
        await this.apply(event, options)
      }
      while (!this.finished()) {
        await sleep(Math.min(scenario.run.sampleIntervalMs, 100), options.signal)
      }
    } finally {
      clearInterval(ticker)
      deadlines.forEach(timer => { clearTimeout(timer) })
    }

    this.tick()
    await this.waitForBackground(scenario.run.stopTimeoutMs)
  }

  /**
   * Reports the expectations that the run ended before deciding, and lists
   * every failed one in the failure list, in the scenario's order; call
   * after `run`. Decided expectations were printed when they were decided.
   */
  summarise (): void {
    for (const state of this.expectations) {
      if (state.status === 'pending') {
        state.status = 'failed'
        this.report(state)
      }
      if (state.status === 'failed') {
        const by = formatSeconds(state.expectation.byMs).trim()
        this.failures.push(`expectation ${state.expectation.index} FAILED: ${state.text} by ${by}: ${state.reason ?? 'the run ended before it was decided'}`)
      }
    }
  }

  private async apply (event: ScenarioEvent, options: AbortOptions): Promise<void> {
    const { timeline, recorder } = this.init
    timeline.flush((ref, digest, kind) => recorder.countHolding(ref, digest, kind))
    const appliedAtMs = timeline.now()
    const record: EventRecord = {
      index: event.index,
      source: event.source,
      scheduledAtMs: event.atMs,
      appliedAtMs: Math.round(appliedAtMs),
      durationMs: 0,
      text: describeAction(event.action),
      totalsBefore: recorder.totals(),
      protocolsBefore: recorder.protocolTotals()
    }

    const outcome = applyEvent(event, this.eventContext(), options)
    const finished = AGENT_REQUESTS.includes(event.action.kind) ? await settleWithin(outcome, MAX_EVENT_WAIT_MS) : await settle(outcome)

    if (finished == null) {
      // The request is taking long: let it finish in the background rather
      // than hold back every later event, and report how it ended.
      record.text = `${describeAction(event.action)} (still running after ${MAX_EVENT_WAIT_MS} ms)`
      timeline.add('event', record.text, appliedAtMs)
      const task = settle(outcome).then(late => {
        if (late.error == null) {
          timeline.add('note', `${event.source} finished after ${Math.round(timeline.now() - appliedAtMs)} ms: ${late.text}`)
        } else {
          this.recordFailure(event, late.error, record)
        }
      })
      this.background.add(task)
      void task.finally(() => this.background.delete(task))
    } else if (finished.error == null) {
      record.text = finished.text
      timeline.add('event', record.text, appliedAtMs)
    } else {
      if (options.signal?.aborted === true) {
        throw finished.error
      }
      this.recordFailure(event, finished.error, record, appliedAtMs)
    }

    record.durationMs = Math.round(timeline.now() - appliedAtMs)
    this.events.push(record)
    this.appliedThrough = event.index
    this.judge()
  }

  private recordFailure (event: ScenarioEvent, error: Error, record: EventRecord, atMs?: number): void {
    record.error = error.message
    const text = `event ${event.source} (${describeAction(event.action)}) failed: ${error.message}`
    this.failures.push(text)
    this.init.timeline.add('error', text, atMs)
    log.error('%s', text)
  }

  private eventContext (): EventContext {
    return {
      fleet: this.init.fleet,
      network: this.init.network,
      holdings: this.init.holdings,
      images: this.init.images,
      stopTimeoutMs: this.init.scenario.run.stopTimeoutMs,
      note: text => { this.init.timeline.add('note', text) },
      background: this.background
    }
  }

  private tick (): void {
    const { fleet, holdings, timeline, recorder } = this.init
    holdings.tick(fleet.running())
    timeline.flush((ref, digest, kind) => recorder.countHolding(ref, digest, kind))
    recorder.sample(timeline.now())
    this.judge()
  }

  /** Decides the expectations whose window is open: every event up to their deadline has been applied. */
  private judge (): void {
    const nowMs = this.init.timeline.now()
    for (const state of this.expectations) {
      if (state.status !== 'pending') {
        continue
      }
      const byMs = state.expectation.byMs
      const lastEvent = this.init.scenario.events.findLastIndex(event => event.atMs <= byMs)
      if (lastEvent > this.appliedThrough) {
        continue
      }

      const reason = evaluate(state.expectation.check, { nodes: this.init.fleet.nodes, holdings: this.init.holdings, images: this.init.images })
      if (reason == null) {
        state.status = 'met'
        state.decidedAtMs = Math.round(nowMs)
        this.report(state)
      } else if (nowMs >= byMs) {
        state.status = 'failed'
        state.decidedAtMs = Math.round(nowMs)
        state.reason = reason
        this.report(state)
      }
    }
  }

  /** Adds an expectation's result to the timeline, which prints it at once. */
  private report (state: ExpectationState): void {
    const by = formatSeconds(state.expectation.byMs).trim()
    const text = state.status === 'met'
      ? `expectation ${state.expectation.index} met: ${state.text} (deadline ${by})`
      : `expectation ${state.expectation.index} FAILED: ${state.text} by ${by}: ${state.reason ?? 'the run ended before it was decided'}`
    this.init.timeline.add('expectation', text, state.decidedAtMs)
  }

  private finished (): boolean {
    return this.appliedThrough === this.init.scenario.events.length - 1 &&
      this.expectations.every(state => state.status !== 'pending') &&
      this.init.timeline.now() >= this.init.scenario.run.minDurationMs
  }

  private async waitForBackground (timeoutMs: number): Promise<void> {
    if (this.background.size === 0) {
      return
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      Promise.allSettled([...this.background]),
      new Promise(resolve => { timer = setTimeout(resolve, timeoutMs) })
    ])
    clearTimeout(timer)
  }
}
