/**
 * `@myelin/rooms`: Matrix authorisation rules, PDU format checks, auth chains and state
 * resolution (v1, v2, v2.1) for room versions 1-12, as pure functions over a small
 * event-lookup interface.
 *
 * @module
 */

export { MalformedEventError, compareCodePoints, parseStateKey, stateKey, stateKeyOf, toRoomEvent } from "./events.js";
export type { RoomEvent, StateKey } from "./events.js";

export { createMemoryLookup } from "./lookup.js";
export type { EventLookup, MemoryLookupOptions } from "./lookup.js";

export { listRules, ruleNumber } from "./rules.js";
export type { RuleName } from "./rules.js";

export { MissingAuthEventError, checkAuth, checkAuthAgainstState, checkCreate, verifyThirdPartySignature } from "./auth.js";
export type { AuthDecision, AuthOptions, AuthState, JsonSignatureVerifier } from "./auth.js";

export { authTypesForEvent, selectAuthEvents } from "./auth-events.js";
export type { AuthEventsInput } from "./auth-events.js";

export { parsePowerLevelValue, validatePowerLevels } from "./power-levels.js";
export type { PowerLevels, PowerLevelsProblem, ScalarLevel } from "./power-levels.js";

export { authChain, authChainDifference, conflictedStateSubgraph } from "./auth-chain.js";

export { resolveState } from "./resolve.js";
export { isPowerEvent } from "./state-res-v2.js";
export type {
  AuthCheckTrace,
  MainlineOrderTrace,
  PowerOrderTrace,
  ResolutionTrace,
  ResolvedState,
  ResolveStateOptions,
  StateMap,
  StateSetInput,
  TracePowerLevel,
  V1KeyTrace,
  V1ResolutionTrace,
  V2ResolutionTrace,
} from "./state-res-types.js";

export { checkPduFormat, jsonByteLength } from "./format.js";
export type { FormatCheckOptions, FormatCheckResult, FormatViolation, FormatViolationReason } from "./format.js";
