/**
 * `@myelin/homeserver`: the Myelin reference Matrix homeserver (`myelin-server`). It keeps
 * rooms in SQLite, federates them (transactions, joins, invites, leaves, knocks, backfill,
 * the read endpoints, the durable outbound queue) and serves a Client-Server API subset to
 * its local users, next to the version, key server and notary endpoints.
 *
 * The exports let tests and tools run it in-process ({@link createHomeserver}), or compose
 * its layers themselves: storage ({@link openSqliteStorage}), the room engine
 * ({@link RoomEngine}), the federation layer ({@link createFederationLayer}) and the
 * client API ({@link createClientApi}).
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
export type { ClientApiOptions, RegisteredUser, RemoteHistory, RemoteMembership, RemoteQueries } from "./client-api/index.js";
export { RoomEngine, STRIPPED_STATE_TYPES } from "./engine/index.js";
export type {
  CreateRoomOptions,
  CreatedRoom,
  EngineEvent,
  EventTemplate,
  IncomingEventInput,
  IncomingOutcome,
  InviteInput,
  LocalEventInput,
  PendingInvite,
  PersistHook,
  PersistListener,
  PersistedEvent,
  RoomEngineOptions,
} from "./engine/index.js";
export {
  BACKFILL_BATCH,
  Backfiller,
  DEFAULT_BACKOFF,
  DEFAULT_INSTANCE_NAME,
  FederationSender,
  IncomingPipeline,
  MembershipRefusedError,
  StagingWorker,
  checkPdus,
  createFederationLayer,
  retryDelayMs,
} from "./federation/index.js";
export type {
  BackfillerOptions,
  BackoffSchedule,
  CheckPdusOptions,
  CheckedPdu,
  DroppedPdu,
  FederationLayer,
  FederationLayerOptions,
  FederationSenderOptions,
  IncomingPipelineOptions,
  IngestOutcome,
  PduCheck,
  StagingWorkerOptions,
} from "./federation/index.js";
export { StorageError, openSqliteStorage } from "./storage/storage.js";
export type {
  BackwardExtremity,
  ChildDepthRange,
  DestinationState,
  NewEvent,
  PendingInviteRow,
  SqliteStorageOptions,
  Storage,
  StorageFailure,
  StorageTx,
  StoredEvent,
  TimelinePosition,
} from "./storage/storage.js";
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
