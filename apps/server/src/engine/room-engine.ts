/**
 * The room engine: creates rooms, builds, authorises, signs and persists local events,
 * persists events received over federation after the auth checks, and answers questions
 * about rooms (state at an event, auth chains, visibility, joined servers).
 *
 * Every write happens in one storage transaction: the event row, the state group of the
 * state before it, the room's current state and forward extremities, and whatever the
 * {@link PersistHook}s add (the outbound federation queue), so a crash never leaves half an
 * event behind (hostile-federation §5: nothing correct depends on process memory).
 *
 * @module
 */

import type { AuthDecision, AuthState, RoomEvent, StateKey } from "@myelin/rooms";
import { authTypesForEvent, checkAuth, checkAuthAgainstState, checkPduFormat, selectAuthEvents, stateKey, toRoomEvent } from "@myelin/rooms";
import type { SigningKey } from "@myelin/signing";
import { CanonicalJsonError, computeReferenceHash, computeRoomIdV12, encodeBase64, encodeCanonicalJson } from "@myelin/signing";
import type { JsonObject, JsonValue, RoomVersionRules } from "@myelin/types";
import { DEFAULT_ROOM_VERSION, MatrixError, findRoomVersion, getRoomVersion } from "@myelin/types";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { PendingInviteRow, RoomRow, Storage, StorageTx, StoredEvent, TimelinePosition } from "../storage/storage.js";
import type { BuiltEvent, EventDraft, EventReference } from "./build-event.js";
import { buildEvent, depthAfter, newLegacyRoomId } from "./build-event.js";
import type { CreateRoomOptions } from "./create-room.js";
import { planRoom } from "./create-room.js";
import { scalarLevel, userPowerLevel } from "./power.js";
import type { StateMap } from "./room-reader.js";
import { RoomReader, parseStoredPdu, sameState, storedStateKey } from "./room-reader.js";
import { canServerSeeEvent, canUserSeeEvent, membershipIn, serverOf } from "./visibility.js";

/**
 * How many forward extremities a new local event cites as `prev_events`, deepest first.
 * Synapse cites up to 10 (`get_prev_events_for_room`); the PDU format allows 20.
 */
export const MAX_PREV_EVENTS_FOR_NEW_EVENT = 10;

/**
 * State shown to a user invited to or knocking on a room (client-server "Stripped state":
 * what a client needs to show the room).
 */
export const STRIPPED_STATE_TYPES: readonly string[] = [
  "m.room.create",
  "m.room.join_rules",
  "m.room.name",
  "m.room.avatar",
  "m.room.canonical_alias",
  "m.room.encryption",
  "m.room.topic",
];

const CREATE_KEY = stateKey("m.room.create", "");
const POWER_KEY = stateKey("m.room.power_levels", "");

/** An event as the engine hands it out: its stored row, parsed PDU and room version. */
export interface EngineEvent {
  readonly eventId: string;
  readonly roomId: string;
  readonly rules: RoomVersionRules;
  /** The PDU as stored (what was signed, or the redacted copy kept after a hash mismatch). */
  readonly pdu: JsonObject;
  readonly stored: StoredEvent;
}

/** An event the engine has just persisted (local or received). */
export interface PersistedEvent extends EngineEvent {
  /** Whether its sender is one of our users (so it must be sent to the room's other servers). */
  readonly local: boolean;
}

/**
 * Runs inside the transaction that persists an event, after the event and the room heads
 * are written: what it writes commits (or rolls back) with the event. The outbound
 * federation queue enqueues PDUs for the room's other servers here.
 */
export type PersistHook = (tx: StorageTx, event: PersistedEvent) => Promise<void> | void;

/** Called after the transaction that persisted an event has committed (to wake senders). */
export type PersistListener = (event: PersistedEvent) => void;

/** Options of {@link RoomEngine}. */
export interface RoomEngineOptions {
  readonly storage: Storage;
  readonly serverName: string;
  /** Our signing key: every local event is signed with it. */
  readonly signingKey: SigningKey;
  /** The version of rooms created without one. Default {@link DEFAULT_ROOM_VERSION} ("12"). */
  readonly defaultRoomVersion?: string;
  /** The clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  readonly logger?: Logger;
}

/** What {@link RoomEngine.sendLocalEvent} sends. */
export interface LocalEventInput {
  readonly roomId: string;
  /** A local user. */
  readonly sender: string;
  readonly type: string;
  /** Present (possibly `""`) for a state event. */
  readonly stateKey?: string | undefined;
  readonly content: JsonObject;
  /**
   * The client transaction (device and txn ID) that asks for the event: a repeated
   * transaction returns the event it made the first time instead of sending another.
   */
  readonly txn?: { readonly deviceId: string; readonly txnId: string } | undefined;
  /** Rooms 1-10 only: top-level `redacts` (use {@link RoomEngine.redact}). */
  readonly redacts?: string | undefined;
}

/** What {@link RoomEngine.createRoom} made. */
export interface CreatedRoom {
  readonly roomId: string;
  readonly roomVersion: string;
  /** Every event sent, in order (create first). */
  readonly events: readonly PersistedEvent[];
  /** Invitees on other servers: the engine did not invite them (that needs federation `/invite`). */
  readonly remoteInvitees: readonly string[];
}

/** A received PDU that passed the format, signature and hash checks (checks on receipt 1-3). */
export interface IncomingEventInput {
  readonly roomId: string;
  /** The PDU (redacted copy when its content hash did not match). */
  readonly pdu: JsonObject;
  readonly eventId: string;
  /** The exact text to store; default the canonical JSON of `pdu`. */
  readonly json?: string | undefined;
  /**
   * The state before the event, when the caller knows it better than the engine (a
   * `send_join` response's state, or `/state_ids` fetched because prev events are missing).
   * Every event it names must be stored (outliers are fine). Without it the engine resolves
   * the states after the event's `prev_events`.
   */
  readonly stateBefore?: ReadonlyMap<StateKey, string> | undefined;
  /**
   * A historical event fetched with `/backfill`: given this stream ordering (reserved with
   * `StorageTx.reserveBackfillOrderings`, below every one so far) rather than the newest
   * one; the timeline, ordered by depth first, places it by its depth. History is not news: it is not checked against the current
   * state (never soft-failed), leaves the forward extremities and the current state alone,
   * and is not handed to the persist hooks (there is nothing to send) nor to listeners.
   */
  readonly backfilled?: { readonly streamOrdering: number } | undefined;
}

/** What {@link RoomEngine.persistIncomingEvent} did. */
export type IncomingOutcome =
  /** Stored and placed in the DAG; `softFailed` when the current state refuses it (not shown, not an extremity). */
  | { readonly outcome: "persisted"; readonly event: PersistedEvent; readonly softFailed: boolean }
  /** Stored as rejected (auth against its auth events or the state before it failed). */
  | { readonly outcome: "rejected"; readonly event: PersistedEvent; readonly decision: AuthDecision }
  /** Already stored in the DAG: nothing done. */
  | { readonly outcome: "duplicate"; readonly event: EngineEvent }
  /** Some `auth_events` are not stored: fetch them (`/event_auth`), persist them as outliers, retry. */
  | { readonly outcome: "missing-auth-events"; readonly missing: readonly string[] }
  /** Some `prev_events` are unknown or have no state: fetch them or `/state_ids`, retry. */
  | { readonly outcome: "missing-prev-state"; readonly missing: readonly string[] }
  /** The room is not known here (see {@link RoomEngine.registerRoom}). */
  | { readonly outcome: "unknown-room" };

/** What {@link RoomEngine.persistOutliers} did. */
export interface OutliersOutcome {
  /** Stored now (accepted or rejected). */
  readonly stored: readonly string[];
  /** Stored as rejected, with the rule that refused them. */
  readonly rejected: readonly { readonly eventId: string; readonly decision: AuthDecision }[];
  /** Not stored because their auth events are neither stored nor in the batch. */
  readonly missingAuth: readonly { readonly eventId: string; readonly missing: readonly string[] }[];
}

/** An unsigned event built for another server to sign (`make_join`, `make_leave`). */
export interface EventTemplate {
  readonly roomVersion: string;
  /** The event without `hashes`, `signatures` (and without `event_id` in rooms 1-2). */
  readonly pdu: JsonObject;
}

/**
 * A local user's invite that has not been answered: received from another server through
 * federation `/invite` (the room may be unknown here but for it), or made in a room we are
 * in (then the room's current state says `invite`).
 */
export interface PendingInvite {
  readonly roomId: string;
  readonly roomVersion: string;
  /** The invited local user. */
  readonly userId: string;
  /** Who invited (the invite's sender); their server can be asked to join or reject through. */
  readonly inviter: string;
  /** The invite event. */
  readonly event: EngineEvent;
  /**
   * The room's stripped state shown with the invite (`invite_room_state`): what the inviting
   * server sent, or for a room we are in, {@link RoomEngine.getStrippedState}.
   */
  readonly inviteRoomState: readonly JsonObject[];
}

/** What {@link RoomEngine.recordInvite} stores. */
export interface InviteInput {
  readonly roomId: string;
  readonly roomVersion: string;
  readonly eventId: string;
  /** The invite as signed by both servers (without `unsigned`). */
  readonly pdu: JsonObject;
  /** The stripped state the inviting server sent (already sanitised). */
  readonly inviteRoomState: readonly JsonObject[];
}

/** Membership changes one local user makes (reason is copied into the member event). */
export interface MembershipOptions {
  readonly reason?: string | undefined;
}

/**
 * The room engine. One per server; all methods are safe to call concurrently (storage
 * serialises transactions).
 */
export class RoomEngine {
  readonly serverName: string;
  readonly defaultRoomVersion: string;
  private readonly storage: Storage;
  private readonly signingKey: SigningKey;
  private readonly now: () => number;
  private readonly logger: Logger;
  private readonly hooks: PersistHook[] = [];
  private readonly listeners = new Set<PersistListener>();

  constructor(options: RoomEngineOptions) {
    this.storage = options.storage;
    this.serverName = options.serverName;
    this.signingKey = options.signingKey;
    this.now = options.now ?? Date.now;
    this.logger = options.logger ?? silentLogger;
    const version = options.defaultRoomVersion ?? DEFAULT_ROOM_VERSION;
    getRoomVersion(version);
    this.defaultRoomVersion = version;
  }

  // ---------------------------------------------------------------------------------------
  // Notifications

  /** Adds a hook run inside every persisting transaction (see {@link PersistHook}). */
  addPersistHook(hook: PersistHook): void {
    this.hooks.push(hook);
  }

  /**
   * Calls `listener` after each persisted event's transaction commits (local events and
   * received ones, rejected ones excluded). Returns a function that removes it.
   */
  onEventPersisted(listener: PersistListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether a user ID belongs to this server. */
  isLocalUser(userId: string): boolean {
    return serverOf(userId) === this.serverName;
  }

  // ---------------------------------------------------------------------------------------
  // Creating rooms and sending events

  /**
   * Creates a room (client-server `POST /createRoom`): every event, the alias and the
   * directory listing in one transaction, so a refused event leaves no room behind.
   *
   * @throws `MatrixError`: `M_UNSUPPORTED_ROOM_VERSION`, `M_ROOM_IN_USE` (alias taken),
   *   `M_INVALID_ROOM_STATE` (an event the auth rules refuse, e.g. an override that removes
   *   the creator's power), `M_INVALID_PARAM`, `M_BAD_JSON`, `M_TOO_LARGE`.
   */
  async createRoom(options: CreateRoomOptions): Promise<CreatedRoom> {
    const version = options.roomVersion ?? this.defaultRoomVersion;
    const rules = findRoomVersion(version);
    if (rules === undefined) {
      throw new MatrixError("M_UNSUPPORTED_ROOM_VERSION", `room version ${JSON.stringify(version)} is not supported`);
    }
    if (!this.isLocalUser(options.creator)) throw new MatrixError("M_FORBIDDEN", "only local users can create rooms here");
    const invitees = [...new Set(options.invite ?? [])].filter((user) => user !== options.creator);
    const localInvitees = invitees.filter((user) => this.isLocalUser(user));
    const remoteInvitees = invitees.filter((user) => !this.isLocalUser(user));

    const persisted = await this.storage.transaction(async (tx) => {
      if (options.alias !== undefined && (await tx.getAlias(options.alias)) !== undefined) {
        throw new MatrixError("M_ROOM_IN_USE", `room alias ${options.alias} is already in use`);
      }
      const profile = await tx.getProfile(options.creator);
      const plan = planRoom(options, rules, localInvitees, {
        ...(profile?.displayname == null ? {} : { displayname: profile.displayname }),
        ...(profile?.avatarUrl == null ? {} : { avatar_url: profile.avatarUrl }),
      });
      const create = this.buildChecked({ type: "m.room.create", sender: options.creator, stateKey: "", content: plan.createContent }, {
        rules,
        roomId: rules.eventFormat === "v12" ? undefined : newLegacyRoomId(this.serverName),
        prevEvents: [],
        authEvents: [],
      });
      const roomId = rules.eventFormat === "v12" ? computeRoomIdV12(create.pdu, rules) : (create.pdu["room_id"] as string);
      const createView = toRoomEvent(create.pdu, { rules, eventId: create.eventId });
      const createDecision = checkAuth(createView, [], rules);
      if (!createDecision.allowed) throw new MatrixError("M_INVALID_ROOM_STATE", createDecision.message);
      const ts = this.now();
      await tx.insertRoom({ roomId, roomVersion: rules.id, creator: options.creator, createdTs: ts });
      const reader = new RoomReader(tx, roomId, rules);
      const emptyGroup = await tx.createStateGroup(roomId, null, new Map());
      const stored = await tx.insertEvent({
        ...rowFields(create, roomId),
        outlier: false,
        stateGroupBefore: emptyGroup,
        receivedTs: ts,
      });
      reader.remember(stored, create.pdu);
      const afterCreate = await tx.createStateGroup(roomId, emptyGroup, new Map([[CREATE_KEY, create.eventId]]));
      await tx.setCurrentStateGroup(roomId, afterCreate);
      await tx.setForwardExtremities(roomId, [create.eventId]);
      const events: PersistedEvent[] = [await this.afterPersist(tx, reader, stored, create.pdu)];

      for (const draft of plan.events) {
        if (draft.type === "m.room.canonical_alias" && options.alias !== undefined) {
          await tx.putAlias(options.alias, roomId, options.creator);
        }
        try {
          events.push(await this.appendLocal(reader, draft));
        } catch (error) {
          if (error instanceof MatrixError && error.errcode === "M_FORBIDDEN") {
            throw new MatrixError("M_INVALID_ROOM_STATE", `the room's initial ${draft.type} event is refused: ${error.message}`);
          }
          throw error;
        }
      }
      if (options.visibility === "public") await tx.setRoomPublic(roomId, true);
      return { roomId, events };
    });
    this.emit(persisted.events);
    return { roomId: persisted.roomId, roomVersion: rules.id, events: persisted.events, remoteInvitees };
  }

  /**
   * Builds, authorises, signs and persists a local user's event (client-server `send`,
   * state `PUT`, and every membership change). The event cites the room's forward
   * extremities (up to {@link MAX_PREV_EVENTS_FOR_NEW_EVENT}) and the auth events the
   * selection rules pick from the state before it.
   *
   * A state event identical to the current one (same sender, same content) is not sent
   * again: the current event is returned (as Synapse does).
   *
   * @throws `MatrixError`: `M_NOT_FOUND` (room unknown), `M_FORBIDDEN` with the denying
   *   auth rule's message, `M_BAD_JSON` (not canonical JSON), `M_TOO_LARGE`.
   */
  async sendLocalEvent(input: LocalEventInput): Promise<EngineEvent> {
    const { event, fresh } = await this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, input.roomId);
      if (input.txn !== undefined) {
        const earlier = await tx.getClientTxn(input.sender, input.txn.deviceId, input.txn.txnId);
        if (earlier !== undefined) {
          const row = await reader.row(earlier);
          if (row !== undefined) return { event: await this.engineEvent(reader, row), fresh: false };
        }
      }
      if (input.stateKey !== undefined) {
        const same = await this.sameAsCurrent(reader, input);
        if (same !== undefined) return { event: same, fresh: false };
      }
      const event = await this.appendLocal(reader, {
        type: input.type,
        sender: input.sender,
        content: input.content,
        stateKey: input.stateKey,
        redacts: input.redacts,
      });
      if (input.txn !== undefined) {
        await tx.putClientTxn({ userId: input.sender, deviceId: input.txn.deviceId, txnId: input.txn.txnId, eventId: event.eventId, ts: this.now() });
      }
      return { event, fresh: true };
    });
    if (fresh) this.emit([event as PersistedEvent]);
    return event;
  }

  /**
   * Redacts an event (client-server `PUT /rooms/{roomId}/redact/{eventId}/{txnId}`): rooms
   * 11+ put `redacts` in the content, rooms 1-10 at the top level. Redacting someone else's
   * event needs the `redact` power level (client-server "Redactions"); one's own needs only
   * the level for sending `m.room.redaction`, which the auth rules check.
   *
   * @throws `MatrixError` `M_NOT_FOUND` (unknown event or room), `M_FORBIDDEN`.
   */
  async redact(input: {
    readonly roomId: string;
    readonly sender: string;
    readonly eventId: string;
    readonly reason?: string | undefined;
    readonly txn?: { readonly deviceId: string; readonly txnId: string } | undefined;
  }): Promise<EngineEvent> {
    const rules = await this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, input.roomId);
      const target = await reader.row(input.eventId);
      if (target === undefined) throw new MatrixError("M_NOT_FOUND", `event ${input.eventId} not found in ${input.roomId}`);
      if (target.sender !== input.sender) {
        const { state } = await reader.currentState();
        const create = await this.stateEvent(reader, state, CREATE_KEY);
        const power = await this.stateEvent(reader, state, POWER_KEY);
        if (userPowerLevel(input.sender, create, power, reader.rules) < scalarLevel("redact", power, reader.rules)) {
          throw new MatrixError("M_FORBIDDEN", "you need the redact power level to redact other users' events");
        }
      }
      return reader.rules;
    });
    const content: JsonObject = {};
    if (input.reason !== undefined) content["reason"] = input.reason;
    if (rules.auth.redactsInContent) content["redacts"] = input.eventId;
    return this.sendLocalEvent({
      roomId: input.roomId,
      sender: input.sender,
      type: "m.room.redaction",
      content,
      txn: input.txn,
      redacts: rules.auth.redactsInContent ? undefined : input.eventId,
    });
  }

  // ---------------------------------------------------------------------------------------
  // Local membership

  /**
   * A local user joins a room this server is in. Already joined: the current member event is
   * returned. Profile (display name, avatar) is copied into the event.
   */
  async join(roomId: string, userId: string, options: MembershipOptions = {}): Promise<EngineEvent> {
    const current = await this.getMembership(roomId, userId);
    if (current?.membership === "join") return current.event;
    const content: JsonObject = { membership: "join", ...(await this.profileContent(userId)) };
    if (options.reason !== undefined) content["reason"] = options.reason;
    return this.sendLocalEvent({ roomId, sender: userId, type: "m.room.member", stateKey: userId, content });
  }

  /**
   * A local user invites a local user. (Inviting a user of another server needs federation
   * `/invite`: build the event with {@link RoomEngine.buildLocalEvent}, have it co-signed,
   * then persist it with {@link RoomEngine.persistIncomingEvent}.)
   */
  async invite(roomId: string, sender: string, target: string, options: MembershipOptions & { readonly isDirect?: boolean } = {}): Promise<EngineEvent> {
    if (!this.isLocalUser(target)) throw new MatrixError("M_FORBIDDEN", `${target} is not a user of this server: inviting needs federation`);
    const content: JsonObject = { membership: "invite" };
    if (options.reason !== undefined) content["reason"] = options.reason;
    if (options.isDirect === true) content["is_direct"] = true;
    const profile = await this.profileContent(target);
    Object.assign(content, profile);
    return this.sendLocalEvent({ roomId, sender, type: "m.room.member", stateKey: target, content });
  }

  /** A local user leaves a room, or rejects an invite (the auth rules refuse a leave from `leave`). */
  async leave(roomId: string, userId: string, options: MembershipOptions = {}): Promise<EngineEvent> {
    return this.sendMembership(roomId, userId, userId, "leave", options);
  }

  /**
   * Kicks a member: only a joined, invited or knocking user can be kicked.
   *
   * @throws `MatrixError` `M_BAD_STATE` when the target is not in the room, `M_FORBIDDEN`.
   */
  async kick(roomId: string, sender: string, target: string, options: MembershipOptions = {}): Promise<EngineEvent> {
    const current = await this.getMembership(roomId, target);
    const membership = current?.membership;
    if (membership !== "join" && membership !== "invite" && membership !== "knock") {
      throw new MatrixError("M_BAD_STATE", `${target} is not in the room`);
    }
    return this.sendMembership(roomId, sender, target, "leave", options);
  }

  /** Bans a user (members or not). */
  async ban(roomId: string, sender: string, target: string, options: MembershipOptions = {}): Promise<EngineEvent> {
    return this.sendMembership(roomId, sender, target, "ban", options);
  }

  /**
   * Lifts a ban (membership `leave`).
   *
   * @throws `MatrixError` `M_BAD_STATE` when the target is not banned (client-server errors:
   *   "attempting to unban a user who is not banned"), `M_FORBIDDEN`.
   */
  async unban(roomId: string, sender: string, target: string, options: MembershipOptions = {}): Promise<EngineEvent> {
    const current = await this.getMembership(roomId, target);
    if (current?.membership !== "ban") throw new MatrixError("M_BAD_STATE", `${target} is not banned`);
    return this.sendMembership(roomId, sender, target, "leave", options);
  }

  private async sendMembership(roomId: string, sender: string, target: string, membership: string, options: MembershipOptions): Promise<EngineEvent> {
    const content: JsonObject = { membership };
    if (options.reason !== undefined) content["reason"] = options.reason;
    return this.sendLocalEvent({ roomId, sender, type: "m.room.member", stateKey: target, content });
  }

  private async profileContent(userId: string): Promise<JsonObject> {
    if (!this.isLocalUser(userId)) return {};
    const profile = await this.storage.transaction((tx) => tx.getProfile(userId));
    const content: JsonObject = {};
    if (profile?.displayname != null) content["displayname"] = profile.displayname;
    if (profile?.avatarUrl != null) content["avatar_url"] = profile.avatarUrl;
    return content;
  }

  // ---------------------------------------------------------------------------------------
  // Invites

  /**
   * Stores an invite of a local user received from another server (federation `/invite`),
   * in one transaction: the room is registered if unknown (so the invite has a room), the
   * invite kept as an outlier with the stripped state in `unsigned.invite_room_state` (the
   * inviting server sends it again through `/send` if we are in the room, which places it
   * in the DAG), and recorded as the user's pending invite.
   */
  async recordInvite(input: InviteInput): Promise<void> {
    const rules = getRoomVersion(input.roomVersion);
    const view = toRoomEvent(input.pdu, { rules, eventId: input.eventId });
    const target = view.state_key;
    if (view.type !== "m.room.member" || target === undefined || view.content["membership"] !== "invite") {
      throw new MatrixError("M_BAD_JSON", "not an invite");
    }
    if (!this.isLocalUser(target)) throw new MatrixError("M_BAD_JSON", `${target} is not a user of this server`);
    const create = input.inviteRoomState.find((e) => e["type"] === "m.room.create" && e["state_key"] === "");
    const creator = typeof create?.["sender"] === "string" ? create["sender"] : view.sender;
    const stored: JsonObject = { ...input.pdu, unsigned: { invite_room_state: [...input.inviteRoomState] } };
    await this.storage.transaction(async (tx) => {
      if ((await tx.getRoom(input.roomId)) === undefined) {
        await tx.insertRoom({ roomId: input.roomId, roomVersion: rules.id, creator, createdTs: this.now() });
      }
      if (!(await tx.hasEvents([input.eventId])).has(input.eventId)) {
        await tx.insertEvent({ ...rowFieldsOf(stored, view, serializeLenient(stored)), roomId: input.roomId, outlier: true, receivedTs: this.now() });
      }
      await tx.putPendingInvite({
        roomId: input.roomId,
        userId: target,
        eventId: input.eventId,
        sender: view.sender,
        roomState: JSON.stringify(input.inviteRoomState),
        receivedTs: this.now(),
      });
    });
  }

  /**
   * A local user's unanswered invite to a room, or `undefined`. An invite received over
   * federation counts until the user joins, rejects it or a later membership of theirs is
   * known here; in a room we are in, the current state decides.
   */
  async getPendingInvite(roomId: string, userId: string): Promise<PendingInvite | undefined> {
    return this.storage.transaction(async (tx) => {
      const row = await tx.getPendingInvite(roomId, userId);
      const room = await tx.getRoom(roomId);
      if (room === undefined) return undefined;
      return this.pendingInviteIn(tx, room, userId, row);
    });
  }

  /** A local user's unanswered invites (see {@link RoomEngine.getPendingInvite}), by room ID. */
  async getPendingInvites(userId: string): Promise<PendingInvite[]> {
    return this.storage.transaction(async (tx) => {
      const rows = new Map((await tx.listPendingInvites(userId)).map((row) => [row.roomId, row]));
      const invites: PendingInvite[] = [];
      // A scan of every room, as getJoinedRooms: fine for the reference server's scale.
      for (const room of await tx.listRooms()) {
        const invite = await this.pendingInviteIn(tx, room, userId, rows.get(room.roomId));
        if (invite !== undefined) invites.push(invite);
      }
      return invites;
    });
  }

  /** Forgets a local user's invite received over federation (answered through another server). */
  async forgetPendingInvite(roomId: string, userId: string): Promise<void> {
    await this.storage.transaction((tx) => tx.deletePendingInvite(roomId, userId));
  }

  /**
   * The room's stripped state (client-server "Stripped state"): the current state events of
   * {@link STRIPPED_STATE_TYPES}, as full PDUs (v1.16: invite and knock room state entries
   * are PDUs). Empty when the room has no current state here.
   */
  async getStrippedState(roomId: string): Promise<JsonObject[]> {
    return this.storage.transaction(async (tx) => (await this.strippedStateIn(await this.readerFor(tx, roomId))).map((e) => e.pdu));
  }

  private async strippedStateIn(reader: RoomReader): Promise<EngineEvent[]> {
    const { state } = await reader.currentState();
    const events = await this.eventsOf(reader, STRIPPED_STATE_TYPES.flatMap((type) => state.get(stateKey(type, "")) ?? []));
    // Every room's create event is in its state; should it be missing, room 12 names it by the room ID.
    if (reader.rules.auth.privilegedCreators && !events.some((e) => e.stored.type === "m.room.create")) {
      const create = await reader.row(`$${reader.roomId.slice(1)}`);
      if (create !== undefined) events.unshift(await this.engineEvent(reader, create));
    }
    return events;
  }

  /**
   * The user's pending invite in one room: the current state's when it says `invite`;
   * else the federation invite `row`, unless a membership of the user at least as deep as
   * it is in the current state (the user joined, left or was invited again since).
   */
  private async pendingInviteIn(tx: StorageTx, room: RoomRow, userId: string, row: PendingInviteRow | undefined): Promise<PendingInvite | undefined> {
    const reader = new RoomReader(tx, room.roomId, getRoomVersion(room.roomVersion));
    const { state } = await reader.currentState();
    const currentId = state.get(stateKey("m.room.member", userId));
    const current = currentId === undefined ? undefined : await reader.row(currentId);
    const base = { roomId: room.roomId, roomVersion: room.roomVersion, userId };
    if (current !== undefined && (await reader.event(current.eventId))?.content["membership"] === "invite") {
      const event = await this.engineEvent(reader, current);
      const fromRow = row?.eventId === current.eventId ? parseRoomState(row.roomState) : undefined;
      const inviteRoomState = fromRow ?? (await this.strippedStateIn(reader)).map((e) => e.pdu);
      return { ...base, inviter: current.sender, event, inviteRoomState };
    }
    if (row === undefined) return undefined;
    const invite = await reader.row(row.eventId);
    if (invite === undefined) return undefined;
    if (current !== undefined && (current.eventId === invite.eventId || current.depth >= invite.depth)) return undefined;
    return { ...base, inviter: row.sender, event: await this.engineEvent(reader, invite), inviteRoomState: parseRoomState(row.roomState) };
  }

  // ---------------------------------------------------------------------------------------
  // Events for federation

  /**
   * Builds, authorises and signs a local user's event without persisting it: the outbound
   * half of federation `/invite` (the invitee's server co-signs it, then
   * {@link RoomEngine.persistIncomingEvent} stores the returned copy).
   *
   * @throws `MatrixError` as {@link RoomEngine.sendLocalEvent}.
   */
  async buildLocalEvent(input: LocalEventInput): Promise<EngineEvent & { readonly roomVersion: string }> {
    return this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, input.roomId);
      const { built } = await this.prepareLocal(reader, {
        type: input.type,
        sender: input.sender,
        content: input.content,
        stateKey: input.stateKey,
        redacts: input.redacts,
      });
      const stored: StoredEvent = {
        ...rowFields(built, input.roomId),
        rejectedReason: null,
        softFailed: false,
        outlier: true,
        stateGroupBefore: null,
        streamOrdering: null,
        receivedTs: this.now(),
      };
      return { eventId: built.eventId, roomId: input.roomId, rules: reader.rules, pdu: built.pdu, stored, roomVersion: reader.rules.id };
    });
  }

  /**
   * An unsigned event for a remote user, built on the current room heads (federation
   * `make_join` / `make_leave` / `make_knock`): `prev_events`, `auth_events`, `depth`,
   * `origin_server_ts`. The engine checks that the event would pass the auth rules now,
   * counting it as signed by the sender's server (which signs it before `send_*`) and by
   * ours: a restricted join naming one of our users in `join_authorised_via_users_server`
   * gets our signature at `send_join` (rooms v8 auth rule 4.3.2; server-server
   * "Restricted rooms").
   *
   * @throws `MatrixError` `M_NOT_FOUND` (room unknown), `M_FORBIDDEN` (the auth rules would refuse it).
   */
  async buildEventTemplate(draft: EventDraft & { readonly roomId: string }): Promise<EventTemplate> {
    return this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, draft.roomId);
      const { rules } = reader;
      const { prevs, before } = await this.headsFor(reader);
      const authIds = selectAuthEvents({ type: draft.type, sender: draft.sender, state_key: draft.stateKey, content: draft.content }, before.state, rules);
      const v1 = rules.eventFormat === "v1";
      const pdu: JsonObject = {
        auth_events: v1 ? await this.v1References(reader, authIds) : authIds,
        content: draft.content,
        depth: depthAfter(prevs, rules),
        origin_server_ts: this.now(),
        prev_events: v1 ? await this.v1References(reader, prevs.map((p) => p.eventId)) : prevs.map((p) => p.eventId),
        room_id: draft.roomId,
        sender: draft.sender,
        type: draft.type,
      };
      if (draft.stateKey !== undefined) pdu["state_key"] = draft.stateKey;
      const view = toRoomEvent(pdu, { rules, eventId: v1 ? `$template:${serverOf(draft.sender)}` : "$template" });
      const decision = await this.authorise(reader, view, authIds, before.state, [serverOf(draft.sender), this.serverName]);
      if (!decision.allowed) throw new MatrixError("M_FORBIDDEN", decision.message);
      return { roomVersion: rules.id, pdu };
    });
  }

  /**
   * Records a room learnt of over federation (joining or invited), unless already known.
   * Its events then come through {@link RoomEngine.persistOutliers} and
   * {@link RoomEngine.persistIncomingEvent}.
   */
  async registerRoom(room: { readonly roomId: string; readonly roomVersion: string; readonly creator: string }): Promise<void> {
    getRoomVersion(room.roomVersion);
    await this.storage.transaction(async (tx) => {
      if ((await tx.getRoom(room.roomId)) === undefined) await tx.insertRoom({ ...room, createdTs: this.now() });
    });
  }

  /**
   * Persists events that are not placed in the DAG (auth chains, the state of a
   * `send_join` or `/state` response): each is checked against its own auth events (checks
   * on receipt, step 4) and stored as an outlier, as rejected when that fails. The batch may
   * come in any order; auth events are taken from the batch or from storage. Events already
   * stored are skipped.
   */
  async persistOutliers(roomId: string, events: readonly { readonly pdu: JsonObject; readonly eventId: string; readonly json?: string }[]): Promise<OutliersOutcome> {
    return this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, roomId);
      const { rules } = reader;
      const pending = new Map<string, { pdu: JsonObject; view: RoomEvent; json: string | undefined }>();
      const known = await tx.hasEvents(events.map((e) => e.eventId));
      for (const event of events) {
        if (known.has(event.eventId) || pending.has(event.eventId)) continue;
        pending.set(event.eventId, { pdu: event.pdu, view: toRoomEvent(event.pdu, { rules, eventId: event.eventId }), json: event.json });
      }
      const stored: string[] = [];
      const rejected: { eventId: string; decision: AuthDecision }[] = [];
      const missingAuth: { eventId: string; missing: string[] }[] = [];
      const createId = rules.auth.privilegedCreators ? `$${roomId.slice(1)}` : undefined;
      // Repeatedly store the events whose auth events are all available (topological order).
      let progress = true;
      while (pending.size > 0 && progress) {
        progress = false;
        for (const [eventId, entry] of pending) {
          const needed = [...entry.view.auth_events, ...(createId !== undefined && eventId !== createId ? [createId] : [])];
          await reader.load(needed);
          if (needed.some((id) => pending.has(id))) continue;
          const missing: string[] = [];
          for (const id of needed) if ((await reader.row(id)) === undefined) missing.push(id);
          pending.delete(eventId);
          progress = true;
          if (missing.length > 0) {
            missingAuth.push({ eventId, missing });
            continue;
          }
          const decision = await this.authoriseAgainstAuthEvents(reader, entry.view);
          const row = await tx.insertEvent({
            ...rowFieldsOf(entry.pdu, entry.view, entry.json),
            roomId,
            rejectedReason: decision.allowed ? null : describe(decision),
            outlier: true,
            stateGroupBefore: null,
            receivedTs: this.now(),
          });
          reader.remember(row, entry.pdu);
          stored.push(eventId);
          if (!decision.allowed) rejected.push({ eventId, decision });
        }
      }
      for (const [eventId, entry] of pending) {
        missingAuth.push({ eventId, missing: entry.view.auth_events.filter((id) => pending.has(id)) });
      }
      return { stored, rejected, missingAuth };
    });
  }

  /**
   * Persists a received PDU that passed the format, signature and hash checks (checks on
   * receipt 1-3), running the rest of the pipeline in one transaction:
   * 4. auth against its own `auth_events` (rejected when refused);
   * 5. auth against the state before it: `input.stateBefore`, or the resolution of the
   *    states after its `prev_events` (rejected when refused);
   * 6. auth against the room's current state (soft-failed when refused: stored, not shown
   *    to clients, not a forward extremity).
   * Then it records the state group of the state before it, and, when accepted, updates the
   * forward extremities and the current state (the resolution of the states after every
   * forward extremity). An outlier of the same ID is promoted into the DAG.
   */
  async persistIncomingEvent(input: IncomingEventInput): Promise<IncomingOutcome> {
    const outcome = await this.storage.transaction(async (tx): Promise<IncomingOutcome> => {
      const room = await tx.getRoom(input.roomId);
      if (room === undefined) return { outcome: "unknown-room" };
      const rules = getRoomVersion(room.roomVersion);
      const reader = new RoomReader(tx, input.roomId, rules);
      const existing = await reader.row(input.eventId);
      if (existing !== undefined && !existing.outlier) {
        return { outcome: "duplicate", event: await this.engineEvent(reader, existing) };
      }
      const view = toRoomEvent(input.pdu, { rules, eventId: input.eventId });
      const createId = rules.auth.privilegedCreators ? `$${input.roomId.slice(1)}` : undefined;
      const neededAuth = [...view.auth_events, ...(createId !== undefined && createId !== input.eventId ? [createId] : [])];
      await reader.load(neededAuth);
      const missingAuth = [];
      for (const id of neededAuth) if ((await reader.row(id)) === undefined) missingAuth.push(id);
      if (missingAuth.length > 0) return { outcome: "missing-auth-events", missing: missingAuth };

      let before: StateMap;
      if (input.stateBefore !== undefined) {
        before = new Map(input.stateBefore);
      } else if (view.type === "m.room.create") {
        before = new Map();
      } else {
        const states: StateMap[] = [];
        const missing: string[] = [];
        for (const prev of view.prev_events) {
          const state = await reader.stateAfter(prev);
          if (state === undefined) missing.push(prev);
          else states.push(state);
        }
        if (missing.length > 0) return { outcome: "missing-prev-state", missing };
        before = await reader.resolve(states);
      }

      let decision = await this.authoriseAgainstAuthEvents(reader, view);
      if (decision.allowed) decision = await this.authoriseAgainstState(reader, view, before);
      const current = await reader.currentState();
      const placement = input.backfilled?.streamOrdering;
      let softFailed = false;
      if (placement === undefined && decision.allowed && current.groupId !== undefined && !sameState(current.state, before)) {
        softFailed = !(await this.authoriseAgainstState(reader, view, current.state)).allowed;
      }
      const groupBefore = await reader.saveState(before, current.groupId);
      const fields = {
        rejectedReason: decision.allowed ? null : describe(decision),
        softFailed,
        stateGroupBefore: groupBefore,
      };
      const row =
        existing === undefined
          ? await tx.insertEvent({
              ...rowFieldsOf(input.pdu, view, input.json),
              roomId: input.roomId,
              ...fields,
              outlier: false,
              receivedTs: this.now(),
              ...(placement === undefined ? {} : { streamOrdering: placement }),
            })
          : await tx.updateEvent(input.eventId, { ...fields, outlier: false, streamOrdering: placement ?? "assign" });
      reader.remember(row, input.pdu);
      if (decision.allowed && !softFailed && placement === undefined) await this.advanceHeads(reader, row, current.groupId);
      const persisted = await this.afterPersist(tx, reader, row, input.pdu, decision.allowed && placement === undefined);
      if (!decision.allowed) return { outcome: "rejected", event: persisted, decision };
      return { outcome: "persisted", event: persisted, softFailed };
    });
    if (outcome.outcome === "persisted" && input.backfilled === undefined) this.emit([outcome.event]);
    return outcome;
  }

  /**
   * Stores a received event as rejected for a reason found before the auth rules (e.g. a
   * field over the byte limits in rooms 1-10, which `checkPduFormat` flags
   * `persistAsRejected`), so it is not fetched again and later events citing it can still be
   * processed (hostile-federation T22). When the states after all its prev events are known,
   * the state before it is recorded (the state after a rejected event is the state before
   * it); otherwise it is stored as an outlier. It never becomes state, a forward extremity,
   * or visible to clients; hooks and listeners are not called.
   */
  async persistRejectedEvent(input: {
    readonly roomId: string;
    readonly pdu: JsonObject;
    readonly eventId: string;
    readonly json?: string | undefined;
    readonly reason: string;
  }): Promise<{ readonly outcome: "rejected" | "duplicate"; readonly event: EngineEvent } | { readonly outcome: "unknown-room" }> {
    return this.storage.transaction(async (tx) => {
      const room = await tx.getRoom(input.roomId);
      if (room === undefined) return { outcome: "unknown-room" as const };
      const reader = new RoomReader(tx, input.roomId, getRoomVersion(room.roomVersion));
      const existing = await reader.row(input.eventId);
      if (existing !== undefined) return { outcome: "duplicate" as const, event: await this.engineEvent(reader, existing) };
      const view = toRoomEvent(input.pdu, { rules: reader.rules, eventId: input.eventId });
      const states: StateMap[] = [];
      for (const prev of view.prev_events) {
        const state = await reader.stateAfter(prev);
        if (state !== undefined) states.push(state);
      }
      const known = view.prev_events.length > 0 && states.length === view.prev_events.length;
      const groupBefore = known ? await reader.saveState(await reader.resolve(states), (await reader.currentState()).groupId) : null;
      const row = await tx.insertEvent({
        ...rowFieldsOf(input.pdu, view, input.json),
        roomId: input.roomId,
        rejectedReason: input.reason,
        outlier: groupBefore === null,
        stateGroupBefore: groupBefore,
        receivedTs: this.now(),
      });
      reader.remember(row, input.pdu);
      return { outcome: "rejected" as const, event: await this.engineEvent(reader, row) };
    });
  }

  /**
   * Resolves state sets of a room with its version's algorithm, reading events from storage
   * (e.g. the states after an event's prev events, some fetched with `/state_ids`). Every
   * event the sets name must be stored.
   */
  async resolveStates(roomId: string, stateSets: readonly ReadonlyMap<StateKey, string>[]): Promise<StateMap> {
    return this.storage.transaction(async (tx) => (await this.readerFor(tx, roomId)).resolve(stateSets.map((set) => new Map(set))));
  }

  // ---------------------------------------------------------------------------------------
  // Reading

  /** The room row, or `undefined` when the room is unknown. */
  async getRoom(roomId: string): Promise<RoomRow | undefined> {
    return this.storage.transaction((tx) => tx.getRoom(roomId));
  }

  /** An event by ID (any room, any status), or `undefined`. */
  async getEvent(eventId: string): Promise<EngineEvent | undefined> {
    return this.storage.transaction(async (tx) => {
      const row = await tx.getEvent(eventId);
      if (row === undefined) return undefined;
      const reader = await this.readerFor(tx, row.roomId);
      return this.engineEvent(reader, row);
    });
  }

  /** The stored ones of `eventIds` (any room), keyed by ID. */
  async getEvents(eventIds: readonly string[]): Promise<Map<string, EngineEvent>> {
    return this.storage.transaction(async (tx) => {
      const rows = await tx.getEvents(eventIds);
      const readers = new Map<string, RoomReader>();
      const found = new Map<string, EngineEvent>();
      for (const row of rows.values()) {
        let reader = readers.get(row.roomId);
        if (reader === undefined) {
          reader = await this.readerFor(tx, row.roomId);
          readers.set(row.roomId, reader);
        }
        found.set(row.eventId, await this.engineEvent(reader, row));
      }
      return found;
    });
  }

  /** The room's current state (state key -> event ID). @throws `MatrixError` `M_NOT_FOUND`. */
  async getCurrentStateIds(roomId: string): Promise<StateMap> {
    return this.storage.transaction(async (tx) => (await (await this.readerFor(tx, roomId)).currentState()).state);
  }

  /** The room's current state events. @throws `MatrixError` `M_NOT_FOUND`. */
  async getCurrentState(roomId: string): Promise<EngineEvent[]> {
    return this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, roomId);
      const { state } = await reader.currentState();
      return this.eventsOf(reader, state.values());
    });
  }

  /** One current state event, or `undefined`. @throws `MatrixError` `M_NOT_FOUND` (room unknown). */
  async getCurrentStateEvent(roomId: string, type: string, key: string): Promise<EngineEvent | undefined> {
    return this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, roomId);
      const { state } = await reader.currentState();
      const id = state.get(stateKey(type, key));
      const row = id === undefined ? undefined : await reader.row(id);
      return row === undefined ? undefined : this.engineEvent(reader, row);
    });
  }

  /** A user's current membership and its event, or `undefined`. @throws `MatrixError` `M_NOT_FOUND`. */
  async getMembership(roomId: string, userId: string): Promise<{ membership: string; event: EngineEvent } | undefined> {
    const event = await this.getCurrentStateEvent(roomId, "m.room.member", userId);
    const membership = event?.pdu["content"] !== undefined ? (event.pdu["content"] as JsonObject)["membership"] : undefined;
    return event === undefined || typeof membership !== "string" ? undefined : { membership, event };
  }

  /**
   * The state before an event (its state group), or `undefined` when not known (outliers,
   * unknown events). Federation `/state_ids` and `/state` serve this.
   */
  async getStateBefore(eventId: string): Promise<StateMap | undefined> {
    return this.storage.transaction(async (tx) => {
      const row = await tx.getEvent(eventId);
      if (row === undefined || row.stateGroupBefore === null) return undefined;
      return (await this.readerFor(tx, row.roomId)).stateGroup(row.stateGroupBefore);
    });
  }

  /** The state after an event (before, plus the event if it is an accepted state event), or `undefined`. */
  async getStateAfter(eventId: string): Promise<StateMap | undefined> {
    return this.storage.transaction(async (tx) => {
      const row = await tx.getEvent(eventId);
      if (row === undefined) return undefined;
      return (await this.readerFor(tx, row.roomId)).stateAfter(eventId);
    });
  }

  /**
   * The auth chain of events (federation `/event_auth`, `/state_ids`, `send_join`): every
   * event reachable through `auth_events`, from storage. Returns the IDs; fetch the events
   * with {@link RoomEngine.getEvents}.
   */
  async getAuthChainIds(eventIds: readonly string[]): Promise<Set<string>> {
    return this.storage.transaction((tx) => tx.getAuthChainIds(eventIds));
  }

  /** The room's forward extremities (the `prev_events` of its next event). */
  async getForwardExtremities(roomId: string): Promise<string[]> {
    return this.storage.transaction((tx) => tx.getForwardExtremities(roomId));
  }

  /**
   * The servers with at least one joined member in the room's current state, ours included
   * when we have one (sorted). Outbound federation sends new events to all but ourselves.
   */
  async getJoinedServers(roomId: string): Promise<string[]> {
    const members = await this.getJoinedMembers(roomId);
    return [...new Set([...members.keys()].map(serverOf))].sort();
  }

  /** The joined members of a room (current state) with their member event content. */
  async getJoinedMembers(roomId: string): Promise<Map<string, JsonObject>> {
    return this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, roomId);
      const { state } = await reader.currentState();
      const members = new Map<string, JsonObject>();
      const ids = [...state].filter(([key]) => key.startsWith('["m.room.member",')).map(([, id]) => id);
      for (const view of (await reader.events(ids)).values()) {
        if (view.content["membership"] === "join" && view.state_key !== undefined) members.set(view.state_key, view.content);
      }
      return members;
    });
  }

  /**
   * Whether a local user is currently joined (this server is "resident" and can send events
   * itself). When not, joining needs federation (`make_join`/`send_join`).
   */
  async isResident(roomId: string): Promise<boolean> {
    const room = await this.getRoom(roomId);
    if (room === undefined) return false;
    const members = await this.getJoinedMembers(roomId);
    return [...members.keys()].some((user) => this.isLocalUser(user));
  }

  /** The rooms a user is joined to now (current state), sorted. */
  async getJoinedRooms(userId: string): Promise<string[]> {
    return this.storage.transaction(async (tx) => {
      const joined: string[] = [];
      // A scan of every room: fine for the reference server's scale (storage has no
      // membership index yet).
      for (const room of await tx.listRooms()) {
        const reader = new RoomReader(tx, room.roomId, getRoomVersion(room.roomVersion));
        const { state } = await reader.currentState();
        if ((await membershipIn(reader, state, userId)) === "join") joined.push(room.roomId);
      }
      return joined.sort();
    });
  }

  /**
   * A page of the room's timeline (accepted events in topological order, by depth then
   * stream ordering; soft-failed and rejected ones left out): `"b"` goes back from `from`
   * (default the newest), `"f"` forward from it (default the oldest). See
   * {@link TimelinePosition}.
   */
  async getTimeline(roomId: string, query: { readonly from?: TimelinePosition | undefined; readonly dir: "b" | "f"; readonly limit: number }): Promise<EngineEvent[]> {
    return this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, roomId);
      const rows = await tx.getRoomTimeline(roomId, {
        dir: query.dir,
        limit: query.limit,
        ...(query.from === undefined ? {} : { from: query.from }),
      });
      const events: EngineEvent[] = [];
      for (const row of rows) events.push(await this.engineEvent(reader, row));
      return events;
    });
  }

  /** The highest stream ordering of the room's timeline (0 when empty). */
  async getMaxStream(roomId: string): Promise<number> {
    return this.storage.transaction((tx) => tx.getMaxStream(roomId));
  }

  /**
   * The redactions that apply to `eventIds`: for each redacted event, the first accepted
   * redaction of it. In rooms 3+ a redaction applies when its sender is on the redacted
   * event's server or had the `redact` power level (rooms v3 "Handling redactions"); in
   * rooms 1-2 the auth rules already checked that.
   *
   * The scan reads the room's whole timeline (storage has no index of redactions yet).
   */
  async getRedactions(roomId: string, eventIds: readonly string[]): Promise<Map<string, EngineEvent>> {
    if (eventIds.length === 0) return new Map();
    return this.storage.transaction(async (tx) => {
      const reader = await this.readerFor(tx, roomId);
      const wanted = new Set(eventIds);
      const found = new Map<string, EngineEvent>();
      let from: TimelinePosition | undefined;
      for (;;) {
        const page = await tx.getRoomTimeline(roomId, { dir: "f", limit: 500, ...(from === undefined ? {} : { from }) });
        for (const row of page) {
          if (row.type !== "m.room.redaction") continue;
          const view = await reader.event(row.eventId);
          const target = view === undefined ? undefined : redactsOf(view, reader.rules);
          if (target === undefined || !wanted.has(target) || found.has(target)) continue;
          if (await this.redactionApplies(reader, row, target)) found.set(target, await this.engineEvent(reader, row));
        }
        const last = page.at(-1);
        if (page.length < 500 || last?.streamOrdering == null) break;
        from = { depth: last.depth, stream: last.streamOrdering };
      }
      return found;
    });
  }

  private async redactionApplies(reader: RoomReader, redaction: StoredEvent, targetId: string): Promise<boolean> {
    const target = await reader.row(targetId);
    if (target === undefined) return false;
    if (reader.rules.auth.redactionDomainCheck) return true;
    if (serverOf(target.sender) === serverOf(redaction.sender)) return true;
    if (redaction.stateGroupBefore === null) return false;
    const state = await reader.stateGroup(redaction.stateGroupBefore);
    const create = await this.stateEvent(reader, state, CREATE_KEY);
    const power = await this.stateEvent(reader, state, POWER_KEY);
    return userPowerLevel(redaction.sender, create, power, reader.rules) >= scalarLevel("redact", power, reader.rules);
  }

  /** Whether a user may see an event (history visibility at the event). */
  async canUserSeeEvent(userId: string, event: EngineEvent | string): Promise<boolean> {
    return this.storage.transaction(async (tx) => {
      const row = typeof event === "string" ? await tx.getEvent(event) : event.stored;
      if (row === undefined) return false;
      return canUserSeeEvent(await this.readerFor(tx, row.roomId), userId, row);
    });
  }

  /** The events of `events` a user may see, in the same order. */
  async filterEventsForUser(userId: string, events: readonly EngineEvent[]): Promise<EngineEvent[]> {
    if (events.length === 0) return [];
    return this.storage.transaction(async (tx) => {
      const readers = new Map<string, RoomReader>();
      const visible: EngineEvent[] = [];
      for (const event of events) {
        let reader = readers.get(event.roomId);
        if (reader === undefined) {
          reader = await this.readerFor(tx, event.roomId);
          readers.set(event.roomId, reader);
        }
        if (await canUserSeeEvent(reader, userId, event.stored)) visible.push(event);
      }
      return visible;
    });
  }

  /** Whether a server may see an event (history visibility at the event, Synapse's rules for servers). */
  async canServerSeeEvent(serverName: string, event: EngineEvent | string): Promise<boolean> {
    return this.storage.transaction(async (tx) => {
      const row = typeof event === "string" ? await tx.getEvent(event) : event.stored;
      if (row === undefined) return false;
      return canServerSeeEvent(await this.readerFor(tx, row.roomId), serverName, row);
    });
  }

  // ---------------------------------------------------------------------------------------
  // Internals

  private async readerFor(tx: StorageTx, roomId: string): Promise<RoomReader> {
    const room = await tx.getRoom(roomId);
    if (room === undefined) throw new MatrixError("M_NOT_FOUND", `room ${roomId} is not known to this server`);
    return new RoomReader(tx, roomId, getRoomVersion(room.roomVersion));
  }

  private async engineEvent(reader: RoomReader, row: StoredEvent): Promise<EngineEvent> {
    const pdu = (await reader.pdu(row.eventId)) ?? parseStoredPdu(row.json);
    return { eventId: row.eventId, roomId: row.roomId, rules: reader.rules, pdu, stored: row };
  }

  private async eventsOf(reader: RoomReader, ids: Iterable<string>): Promise<EngineEvent[]> {
    const list = [...ids];
    await reader.load(list);
    const events: EngineEvent[] = [];
    for (const id of list) {
      const row = await reader.row(id);
      if (row !== undefined) events.push(await this.engineEvent(reader, row));
    }
    return events;
  }

  private async stateEvent(reader: RoomReader, state: StateMap, key: StateKey): Promise<RoomEvent | undefined> {
    const id = state.get(key);
    return id === undefined ? undefined : reader.event(id);
  }

  /** The current event when a state event would repeat it (same sender and content). */
  private async sameAsCurrent(reader: RoomReader, input: LocalEventInput): Promise<EngineEvent | undefined> {
    const { state } = await reader.currentState();
    const id = state.get(stateKey(input.type, input.stateKey ?? ""));
    if (id === undefined) return undefined;
    const view = await reader.event(id);
    if (view === undefined || view.sender !== input.sender) return undefined;
    try {
      if (encodeCanonicalJson(view.content) !== encodeCanonicalJson(input.content)) return undefined;
    } catch {
      return undefined;
    }
    const row = await reader.row(id);
    return row === undefined ? undefined : this.engineEvent(reader, row);
  }

  /**
   * The prev events of a new local event (the forward extremities, deepest first, at most
   * {@link MAX_PREV_EVENTS_FOR_NEW_EVENT}) and the state before it: the current state when
   * it cites every extremity, otherwise the resolution of the states after those it cites.
   */
  private async headsFor(reader: RoomReader): Promise<{
    prevs: StoredEvent[];
    before: { groupId: number | undefined; state: StateMap };
    current: { groupId: number | undefined; state: StateMap };
    extremities: string[];
  }> {
    const extremities = await reader.tx.getForwardExtremities(reader.roomId);
    await reader.load(extremities);
    const rows: StoredEvent[] = [];
    for (const id of extremities) {
      const row = await reader.row(id);
      if (row !== undefined) rows.push(row);
    }
    rows.sort((a, b) => b.depth - a.depth || (a.eventId < b.eventId ? -1 : 1));
    const prevs = rows.slice(0, MAX_PREV_EVENTS_FOR_NEW_EVENT);
    const current = await reader.currentState();
    if (prevs.length === extremities.length) return { prevs, before: current, current, extremities };
    const states: StateMap[] = [];
    for (const prev of prevs) {
      const state = await reader.stateAfter(prev.eventId);
      if (state !== undefined) states.push(state);
    }
    return { prevs, before: { groupId: undefined, state: await reader.resolve(states) }, current, extremities };
  }

  /** Rooms 1-2 references: `[event ID, {sha256: reference hash}]`. */
  private async v1References(reader: RoomReader, ids: readonly string[]): Promise<JsonValue[]> {
    const refs: JsonValue[] = [];
    for (const id of ids) {
      const pdu = await reader.pdu(id);
      refs.push([id, pdu === undefined ? {} : { sha256: encodeBase64(computeReferenceHash(pdu, reader.rules)) }]);
    }
    return refs;
  }

  /** Builds, format-checks and authorises a local event on the current heads. */
  private async prepareLocal(reader: RoomReader, draft: EventDraft) {
    const { rules } = reader;
    if (!this.isLocalUser(draft.sender)) throw new MatrixError("M_FORBIDDEN", `${draft.sender} is not a user of this server`);
    const heads = await this.headsFor(reader);
    const authIds = selectAuthEvents({ type: draft.type, sender: draft.sender, state_key: draft.stateKey, content: draft.content }, heads.before.state, rules);
    const refs = async (ids: readonly string[]): Promise<EventReference[]> => {
      const out: EventReference[] = [];
      for (const id of ids) {
        const row = await reader.row(id);
        const pdu = await reader.pdu(id);
        if (row !== undefined && pdu !== undefined) out.push({ eventId: id, depth: row.depth, pdu });
      }
      return out;
    };
    const built = this.buildChecked(draft, {
      rules,
      roomId: reader.roomId,
      prevEvents: await refs(heads.prevs.map((p) => p.eventId)),
      authEvents: await refs(authIds),
    });
    const view = toRoomEvent(built.pdu, { rules, eventId: built.eventId });
    const decision = await this.authorise(reader, view, authIds, heads.before.state);
    if (!decision.allowed) throw new MatrixError("M_FORBIDDEN", decision.message, { extra: { "org.myelin.auth_rule": decision.rule } });
    return { built, heads };
  }

  /** Builds a local event and checks its format, mapping failures to Matrix errors. */
  private buildChecked(draft: EventDraft, context: { rules: RoomVersionRules; roomId: string | undefined; prevEvents: EventReference[]; authEvents: EventReference[] }): BuiltEvent {
    let built: BuiltEvent;
    try {
      built = buildEvent(draft, { ...context, serverName: this.serverName, signingKey: this.signingKey, originServerTs: this.now() });
    } catch (error) {
      if (error instanceof CanonicalJsonError) throw new MatrixError("M_BAD_JSON", `the event is not canonical JSON: ${error.message}`);
      throw error;
    }
    const createEventId = context.rules.eventFormat === "v12" && context.roomId !== undefined ? `$${context.roomId.slice(1)}` : undefined;
    const format = checkPduFormat(built.pdu, context.rules, { eventId: built.eventId, ...(createEventId === undefined ? {} : { createEventId }) });
    if (!format.ok) {
      const { violation } = format;
      if (violation.reason === "too_large") throw new MatrixError("M_TOO_LARGE", `the event is too large: ${violation.message}`);
      throw new MatrixError(violation.reason === "not_canonical_json" ? "M_BAD_JSON" : "M_INVALID_PARAM", violation.message);
    }
    return built;
  }

  /** Builds, authorises, signs and persists a local event on the current heads (inside a transaction). */
  private async appendLocal(reader: RoomReader, draft: EventDraft): Promise<PersistedEvent> {
    const { tx } = reader;
    const { built, heads } = await this.prepareLocal(reader, draft);
    const groupBefore = heads.before.groupId ?? (await reader.saveState(heads.before.state, heads.current.groupId));
    const row = await tx.insertEvent({
      ...rowFields(built, reader.roomId),
      outlier: false,
      stateGroupBefore: groupBefore,
      receivedTs: this.now(),
    });
    reader.remember(row, built.pdu);
    await this.advanceHeads(reader, row, heads.current.groupId);
    return this.afterPersist(tx, reader, row, built.pdu);
  }

  /**
   * Updates the forward extremities and the current state for an accepted event in the DAG:
   * the event replaces the extremities it cites (unless stored events already cite it), and
   * the current state becomes the resolution of the states after the extremities.
   */
  private async advanceHeads(reader: RoomReader, row: StoredEvent, currentGroup: number | undefined): Promise<void> {
    const { tx, roomId } = reader;
    const old = await tx.getForwardExtremities(roomId);
    const prevs = new Set(row.prevEvents);
    const next = old.filter((id) => !prevs.has(id) && id !== row.eventId);
    const children = await tx.getChildEventIds([row.eventId]);
    if (children.size === 0) next.push(row.eventId);
    if (next.length === 0) next.push(row.eventId);
    await tx.setForwardExtremities(roomId, next);

    if (next.length === 1 && next[0] === row.eventId && row.stateGroupBefore !== null) {
      // The event is the only head: the current state is the state after it. For a state
      // event that is a one-key delta over the group before it; otherwise that group itself.
      const key = storedStateKey(row);
      const group = key === undefined ? row.stateGroupBefore : await tx.createStateGroup(roomId, row.stateGroupBefore, new Map([[key, row.eventId]]));
      await tx.setCurrentStateGroup(roomId, group);
      return;
    }
    const states: StateMap[] = [];
    for (const id of next) {
      const after = await reader.stateAfter(id);
      if (after !== undefined) states.push(after);
    }
    await tx.setCurrentStateGroup(roomId, await reader.saveState(await reader.resolve(states), currentGroup));
  }

  /** Runs the persist hooks; returns the event as persisted. */
  private async afterPersist(tx: StorageTx, reader: RoomReader, row: StoredEvent, pdu: JsonObject, runHooks = true): Promise<PersistedEvent> {
    const event: PersistedEvent = { eventId: row.eventId, roomId: row.roomId, rules: reader.rules, pdu, stored: row, local: this.isLocalUser(row.sender) };
    if (runHooks) for (const hook of this.hooks) await hook(tx, event);
    return event;
  }

  private emit(events: readonly PersistedEvent[]): void {
    for (const event of events) {
      for (const listener of this.listeners) {
        try {
          listener(event);
        } catch (error) {
          this.logger.error("an event-persisted listener failed", { eventId: event.eventId, error: (error as Error).message });
        }
      }
    }
  }

  /** The room's create event (room 12: named by the room ID), when stored. */
  private async createEventOf(reader: RoomReader, state: StateMap | undefined): Promise<RoomEvent | undefined> {
    if (reader.rules.auth.privilegedCreators) return reader.event(`$${reader.roomId.slice(1)}`);
    const id = state?.get(CREATE_KEY);
    return id === undefined ? undefined : reader.event(id);
  }

  /** Auth against the event's own auth events (checks on receipt, step 4). */
  private async authoriseAgainstAuthEvents(reader: RoomReader, view: RoomEvent): Promise<AuthDecision> {
    const authEvents = await reader.events(view.auth_events);
    const createEvent = await this.createEventOf(reader, undefined);
    return checkAuth(view, authEvents.values(), reader.rules, {
      createEvent,
      isRejected: (id) => reader.isRejected(id),
    });
  }

  /** Auth against a state map (checks on receipt, steps 5 and 6). */
  private async authoriseAgainstState(reader: RoomReader, view: RoomEvent, state: StateMap): Promise<AuthDecision> {
    const keys = new Set<StateKey>([CREATE_KEY, POWER_KEY, ...authTypesForEvent(view, reader.rules)]);
    const authState: AuthState = await reader.stateEvents(state, keys);
    const createEvent = await this.createEventOf(reader, state);
    return checkAuthAgainstState(view, authState, reader.rules, { createEvent, isRejected: (id) => reader.isRejected(id) });
  }

  /**
   * Auth for a local event: against the auth events selected from the state before it.
   * `signedBy`: servers counted as having signed it (a template nobody has signed yet).
   */
  private async authorise(reader: RoomReader, view: RoomEvent, authIds: readonly string[], before: StateMap, signedBy?: readonly string[]): Promise<AuthDecision> {
    const authEvents = await reader.events(authIds);
    const createEvent = await this.createEventOf(reader, before);
    return checkAuth(view, authEvents.values(), reader.rules, {
      createEvent,
      isRejected: (id) => reader.isRejected(id),
      ...(signedBy === undefined ? {} : { isSignedBy: (_event: RoomEvent, server: string) => signedBy.includes(server) }),
    });
  }
}

/** The `NewEvent` columns of a built local event. */
function rowFields(built: BuiltEvent, roomId: string) {
  const pdu = built.pdu;
  return {
    eventId: built.eventId,
    roomId,
    json: encodeCanonicalJson(pdu),
    type: pdu["type"] as string,
    stateKey: typeof pdu["state_key"] === "string" ? pdu["state_key"] : null,
    sender: pdu["sender"] as string,
    depth: pdu["depth"] as number,
    originServerTs: pdu["origin_server_ts"] as number,
    prevEvents: refIds(pdu["prev_events"]),
    authEvents: refIds(pdu["auth_events"]),
  };
}

/** The `NewEvent` columns of a received PDU. */
function rowFieldsOf(pdu: JsonObject, view: RoomEvent, json: string | undefined) {
  return {
    eventId: view.event_id,
    json: json ?? encodeCanonicalJson(pdu),
    type: view.type,
    stateKey: view.state_key ?? null,
    sender: view.sender,
    depth: view.depth,
    originServerTs: view.origin_server_ts,
    prevEvents: view.prev_events,
    authEvents: view.auth_events,
  };
}

/** Canonical JSON, or plain JSON for the rare room-1-5 event canonical JSON cannot encode (floats). */
function serializeLenient(pdu: JsonObject): string {
  try {
    return encodeCanonicalJson(pdu);
  } catch (error) {
    if (!(error instanceof CanonicalJsonError)) throw error;
    return JSON.stringify(pdu);
  }
}

/** The stripped state recorded with an invite (an empty list when unreadable). */
function parseRoomState(text: string): JsonObject[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((e): e is JsonObject => typeof e === "object" && e !== null && !Array.isArray(e)) : [];
  } catch {
    return [];
  }
}

function refIds(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.map((entry) => (Array.isArray(entry) ? String(entry[0]) : String(entry)));
}

/** The event a redaction redacts: `content.redacts` in rooms 11+, top-level before. */
export function redactsOf(event: RoomEvent, rules: RoomVersionRules): string | undefined {
  const value = rules.auth.redactsInContent ? event.content["redacts"] : event.redacts;
  return typeof value === "string" ? value : undefined;
}

function describe(decision: AuthDecision): string {
  return `auth rule ${decision.rule} (${decision.name}): ${decision.message}`;
}
