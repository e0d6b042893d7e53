/**
 * The room engine (see {@link RoomEngine}): what the client API and the federation layer
 * build on.
 *
 * @module
 */

export { MAX_PREV_EVENTS_FOR_NEW_EVENT, RoomEngine, STRIPPED_STATE_TYPES, redactsOf } from "./room-engine.js";
export type {
  CreatedRoom,
  EngineEvent,
  EventTemplate,
  IncomingEventInput,
  IncomingOutcome,
  InviteInput,
  LocalEventInput,
  MembershipOptions,
  OutliersOutcome,
  PendingInvite,
  PersistHook,
  PersistListener,
  PersistedEvent,
  RoomEngineOptions,
} from "./room-engine.js";
export { defaultPowerLevels, planRoom } from "./create-room.js";
export type { CreateRoomOptions, InitialStateEvent, RoomPlan, RoomPreset } from "./create-room.js";
export { buildEvent, depthAfter, newLegacyRoomId } from "./build-event.js";
export type { BuildContext, BuiltEvent, EventDraft, EventReference } from "./build-event.js";
export type { StateMap } from "./room-reader.js";
export { serverOf } from "./visibility.js";
export type { HistoryVisibility } from "./visibility.js";
