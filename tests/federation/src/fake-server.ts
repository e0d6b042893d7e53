/**
 * A hand-driven federating server for hostile-input tests: an HTTPS endpoint on loopback
 * with a certificate from the cluster's CA, a signing key and a `localhost:<port>` name.
 * It publishes its keys (so the server under test can verify what it signs), accepts the
 * transactions sent to it, and otherwise does only what a test tells it to: join a room
 * with make_join/send_join and send crafted PDUs, transactions and membership requests.
 *
 * @module
 */

import { once } from "node:events";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { computeEventId, encodePublicKey, generateSigningKey, signEvent, signJson, type SigningKey } from "@myelin/signing";
import type { TestCa } from "@myelin/test-support";
import { getRoomVersion, type JsonObject, type JsonValue, type RoomVersionRules } from "@myelin/types";
import type { FederationRequest, RawResponse } from "./federation-request.js";
import { sendFederationRequest } from "./federation-request.js";
import type { TestServer } from "./harness.js";

/** A federating server the test plays; see the module comment. */
export interface FakeServer {
  readonly serverName: string;
  readonly key: SigningKey;
  /** PDUs other servers sent to it, as received. */
  readonly receivedPdus: JsonObject[];
  /** Sends a federation request signed as this server to `target` (overrides allowed for forgery). */
  request(target: TestServer, request: Omit<FederationRequest, "origin" | "key" | "destination"> & Partial<Pick<FederationRequest, "origin" | "key">>): Promise<RawResponse>;
  close(): Promise<void>;
}

/** Starts a {@link FakeServer} whose certificate the test CA vouches for. */
export async function startFakeServer(ca: TestCa): Promise<FakeServer> {
  const key = generateSigningKey();
  const receivedPdus: JsonObject[] = [];
  let serverName = "";
  const server: Server = createServer(ca.issue(["localhost", "127.0.0.1"]), (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = (req.url ?? "").split("?")[0] ?? "";
      const reply = (status: number, body: unknown): void => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      };
      if (req.method === "GET" && path === "/_matrix/key/v2/server") {
        const keys = signJson(
          { server_name: serverName, valid_until_ts: Date.now() + 3_600_000, verify_keys: { [key.keyId]: { key: encodePublicKey(key) } }, old_verify_keys: {} },
          serverName,
          key,
        );
        return reply(200, keys);
      }
      if (req.method === "GET" && path === "/_matrix/federation/v1/version") return reply(200, { server: { name: "myelin-federation-tests fake server", version: "0" } });
      if (req.method === "PUT" && path.startsWith("/_matrix/federation/v1/send/")) {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as { pdus?: JsonObject[] };
        receivedPdus.push(...(body.pdus ?? []));
        return reply(200, { pdus: {} });
      }
      return reply(404, { errcode: "M_UNRECOGNIZED", error: "Unrecognized request" });
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  serverName = `localhost:${(server.address() as AddressInfo).port}`;
  return {
    serverName,
    key,
    receivedPdus,
    request(target, request) {
      return sendFederationRequest({ port: target.port, ca: ca.cert }, { origin: serverName, key, destination: target.serverName, ...request });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What the fake server knows of a room it joined. */
interface RoomView {
  createId: string;
  powerLevelsId: string;
  joinRulesId: string;
  memberId: string;
  /** The event new events follow (prev_events). */
  head: string;
  depth: number;
}

/** A built and signed PDU with its event ID. */
export interface BuiltPdu {
  readonly pdu: JsonObject;
  readonly eventId: string;
}

/**
 * A user of the fake server, joined to one room of `target` through make_join and
 * send_join (spec server-server API § "Joining Rooms"), who can then craft events in it.
 */
export class RemoteMember {
  readonly userId: string;
  readonly rules: RoomVersionRules;
  private view: RoomView | undefined;

  constructor(
    readonly fake: FakeServer,
    readonly target: TestServer,
    readonly roomId: string,
    readonly roomVersion: string,
    localpart = "mallory",
  ) {
    this.userId = `@${localpart}:${fake.serverName}`;
    this.rules = getRoomVersion(roomVersion);
  }

  /** Joins through `target`; throws with the server's answer when a step is refused. */
  async join(): Promise<void> {
    const template = await this.makeJoin(this.userId);
    const join = this.sign({ ...template, origin_server_ts: Date.now() });
    const response = await this.fake.request(this.target, {
      method: "PUT",
      path: `/_matrix/federation/v2/send_join/${encodeURIComponent(this.roomId)}/${encodeURIComponent(join.eventId)}`,
      body: join.pdu,
    });
    if (response.status !== 200) throw new Error(`send_join for ${this.userId} answered ${response.status}: ${response.text}`);
    const state = (response.body as { state: JsonObject[] }).state;
    const idOf = (type: string): string => {
      const event = state.find((e) => e["type"] === type && e["state_key"] === "");
      if (event === undefined) throw new Error(`the send_join answer has no ${type} in its state`);
      return computeEventId(event, this.rules);
    };
    this.view = {
      createId: idOf("m.room.create"),
      powerLevelsId: idOf("m.room.power_levels"),
      joinRulesId: idOf("m.room.join_rules"),
      memberId: join.eventId,
      head: join.eventId,
      depth: template["depth"] as number,
    };
  }

  /** `GET /make_join` for `userId` (any user, for forgeries); returns the event template. */
  async makeJoin(userId: string): Promise<JsonObject> {
    const versions = ["10", "11", "12"].map((v) => `ver=${v}`).join("&");
    const response = await this.fake.request(this.target, {
      method: "GET",
      path: `/_matrix/federation/v1/make_join/${encodeURIComponent(this.roomId)}/${encodeURIComponent(userId)}?${versions}`,
    });
    if (response.status !== 200) throw new Error(`make_join for ${userId} answered ${response.status}: ${response.text}`);
    return (response.body as { event: JsonObject }).event;
  }

  /** The room as the member knows it. */
  get room(): Readonly<RoomView> {
    if (this.view === undefined) throw new Error(`${this.userId} has not joined ${this.roomId}`);
    return this.view;
  }

  /** The auth events of an event by this member (spec § "Auth events selection"; v12 leaves out the create event). */
  authEvents(extra: readonly string[] = []): string[] {
    const room = this.room;
    const create = this.rules.eventFormat === "v12" ? [] : [room.createId];
    return [...create, room.powerLevelsId, room.memberId, ...extra];
  }

  /**
   * An unsigned event by this member following the room's head: room, sender, depth,
   * prev and auth events filled in; `fields` override or add anything.
   */
  draft(fields: JsonObject): JsonObject {
    const room = this.room;
    return {
      room_id: this.roomId,
      sender: this.userId,
      origin_server_ts: Date.now(),
      depth: room.depth + 1,
      prev_events: [room.head],
      auth_events: this.authEvents(),
      ...fields,
    };
  }

  /** A message event (with a unique body when none is given), hashed and signed by the fake server. */
  message(body = `mallory says ${randomUUID()}`, fields: JsonObject = {}): BuiltPdu {
    return this.sign(this.draft({ type: "m.room.message", content: { msgtype: "m.text", body }, ...fields }));
  }

  /** Hashes and signs `event` as the fake server (with `key`, by default its own) and computes its ID. */
  sign(event: JsonObject, key: SigningKey = this.fake.key): BuiltPdu {
    const pdu = signEvent(event, this.fake.serverName, key, this.rules);
    return { pdu, eventId: computeEventId(pdu, this.rules) };
  }

  /** Makes `event` the room's head (after the target accepted it). */
  advance(event: BuiltPdu): void {
    const room = this.room as RoomView;
    room.head = event.eventId;
    room.depth = Math.max(room.depth, event.pdu["depth"] as number);
  }

  /** `PUT /send/{txnId}` with these PDUs (and EDUs); the body fields may be overridden. */
  sendTransaction(pdus: readonly JsonObject[], options: { txnId?: string; edus?: readonly JsonObject[]; body?: JsonObject; request?: Partial<FederationRequest> } = {}): Promise<RawResponse> {
    const txnId = options.txnId ?? randomUUID();
    const body: JsonObject = {
      origin: this.fake.serverName,
      origin_server_ts: Date.now(),
      pdus: pdus as JsonValue[],
      ...(options.edus === undefined ? {} : { edus: options.edus as JsonValue[] }),
      ...options.body,
    };
    return this.fake.request(this.target, { method: "PUT", path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`, body, ...options.request });
  }
}
