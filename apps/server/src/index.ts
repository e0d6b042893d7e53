/**
 * `@myelin/homeserver`: the Myelin reference homeserver (`myelin-server`). This first
 * part serves the federation version, key server and notary endpoints over a data
 * directory holding its signing key; rooms come later. The exports let tests and tools
 * run it in-process.
 *
 * @packageDocumentation
 */

export { DATABASE_FILE, HOMESERVER_VERSION, HomeserverStartError, createHomeserver } from "./app.js";
export type {
  Homeserver,
  HomeserverAddress,
  HomeserverInfo,
  HomeserverOptions,
  HomeserverStartFailure,
} from "./app.js";
export { CLIENT_VERSIONS, createClientApi, federationUnavailable, registerLocalUser } from "./client-api/index.js";
export type { ClientApiOptions, RegisteredUser, RemoteMembership, RemoteQueries } from "./client-api/index.js";
export { RoomEngine } from "./engine/index.js";
export type {
  CreateRoomOptions,
  CreatedRoom,
  EngineEvent,
  IncomingOutcome,
  LocalEventInput,
  PersistedEvent,
  RoomEngineOptions,
} from "./engine/index.js";
export {
  ConfigError,
  DEFAULTS,
  USAGE,
  formatListenAddress,
  parseCommandLine,
  parseListenAddress,
} from "./config.js";
export type { CommandLine, ConfigFailure, HomeserverConfig, ListenAddress } from "./config.js";
export { DataDirError, SERVER_NAME_FILE, SIGNING_KEY_FILE, openDataDir } from "./data-dir.js";
export type { DataDir, DataDirFailure } from "./data-dir.js";
export { createOutboundFederation } from "./federation.js";
export type { OutboundFederation, OutboundFederationOptions } from "./federation.js";
export { LOG_LEVELS, createLogger, isLogLevel, silentLogger } from "./log.js";
export type { LineSink, LogContext, LogLevel, Logger, LoggerOptions } from "./log.js";
export { EXIT_START_FAILED, EXIT_USAGE, launch } from "./main.js";
export type { CommandIo, LaunchOutcome } from "./main.js";
