/** Errors raised while loading and running a simulation scenario. */

/** A scenario file that cannot run as written: the message names the field, the value and the fix. */
export class InvalidScenarioError extends Error {
  static override readonly name = 'InvalidScenarioError'
  override readonly name = 'InvalidScenarioError'
}

/** The simulated fleet could not be set up: a node did not start or an image could not be imported. */
export class SimulationSetupError extends Error {
  static override readonly name = 'SimulationSetupError'
  override readonly name = 'SimulationSetupError'
}

/** A timeline event could not be applied, for example a publish on a node that is not running. */
export class EventFailedError extends Error {
  static override readonly name = 'EventFailedError'
  override readonly name = 'EventFailedError'
}

/** A connection the fault layer refuses, because one of its ends is down or the link is cut. */
export class LinkDownError extends Error {
  static override readonly name = 'LinkDownError'
  override readonly name = 'LinkDownError'
}
