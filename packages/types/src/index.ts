export {
  DEFAULT_ROOM_VERSION,
  ROOM_VERSIONS,
  UnsupportedRoomVersionError,
  findRoomVersion,
  getRoomVersion,
} from "./room-versions.js";
export type {
  AuthRuleFlags,
  EventFormat,
  EventIdFormat,
  RedactionAlgorithm,
  RoomVersionRules,
  StateResolutionAlgorithm,
} from "./room-versions.js";
export { ERRCODES, MatrixError } from "./errors.js";
export type { Errcode, MatrixErrorBody } from "./errors.js";
export type { JsonObject, JsonValue } from "./json.js";
