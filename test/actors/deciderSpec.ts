import { expect } from "vitest"
import type { Decider } from "../../src/actors/decider/decide.js"

/**
 * `given(events).when(input).then(events)` for any decider (emmett's deciderSpecification): the
 * state is the fold of the given events, the decision is compared with the expected events.
 * `then` also folds the decided events, so an evolve that throws fails the spec too.
 */
export const deciderSpec =
  <I, S, E>(decider: Decider<I, S, E>) =>
  (given: ReadonlyArray<E>) => {
    const state = () => given.reduce(decider.evolve, decider.initialState)
    return {
      when: (input: I) => ({
        then: async (expected: ReadonlyArray<E>): Promise<S> => {
          const s = state()
          const decided = await decider.decide(input, s)
          expect(decided).toEqual(expected)
          return decided.reduce(decider.evolve, s)
        },
        thenThrows: async (check?: (error: unknown) => void): Promise<void> => {
          let thrown: unknown = undefined
          try {
            await decider.decide(input, state())
          } catch (e) {
            thrown = e ?? new Error("undefined thrown")
          }
          expect(thrown, "the decider should have refused the input").toBeDefined()
          check?.(thrown)
        }
      })
    }
  }
