// The basic federation scenario, in room versions 10, 11 and 12: a room created on A, users
// of B and C joining it over federation, messages in every direction, and all three servers
// agreeing on the room's current state.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CsClient } from "@myelin/test-support";
import { ROOM_VERSIONS, waitForEvent, waitForIdenticalState, waitForMembership } from "./room-helpers.js";
import { useCluster } from "./use-cluster.js";

const cluster = useCluster({ names: ["a", "b", "c"] });
let alice: CsClient;
let bob: CsClient;
let carol: CsClient;

beforeAll(async () => {
  alice = await cluster().server("a").newClient("alice");
  bob = await cluster().server("b").newClient("bob");
  carol = await cluster().server("c").newClient("carol");
});

afterAll(() => {
  for (const client of [alice, bob, carol]) client?.close();
});

describe.each(ROOM_VERSIONS)("room version %s", (version) => {
  let roomId: string | undefined;
  let alias: string;
  const room = (): string => {
    if (roomId === undefined) throw new Error("the room was not created (see the first test of this block)");
    return roomId;
  };

  it("creates a public room on A in that version, with an alias on A", async () => {
    roomId = (await alice.createRoom({ preset: "public_chat", room_version: version, name: `federation v${version}` })).room_id;
    const create = await alice.getState<{ room_version?: string }>(roomId, "m.room.create");
    // Spec CS API § "Creation": room_version defaults to "1" when absent from the content.
    expect(create.room_version ?? "1").toBe(version);
    alias = `#rooms-v${version}-${randomUUID().slice(0, 8)}:${cluster().server("a").serverName}`;
    await alice.putAlias(alias, roomId);
    expect((await alice.getAlias(alias)).room_id).toBe(roomId);
  });

  it("lets a user of B join through A's alias and a user of C through the room ID via A", async () => {
    expect((await bob.getAlias(alias)).room_id).toBe(room());
    expect((await bob.join(alias)).room_id).toBe(room());
    expect((await carol.join(room(), [cluster().server("a").serverName])).room_id).toBe(room());
    for (const viewer of [alice, bob, carol]) {
      for (const member of [alice, bob, carol]) await waitForMembership(viewer, room(), member.userId, "join");
    }
    expect(await bob.joinedRooms()).toContain(room());
    expect(await carol.joinedRooms()).toContain(room());
  });

  it("delivers a message from each server to the other two, with sender and content intact", async () => {
    for (const sender of [alice, bob, carol]) {
      const body = `from ${sender.userId} in v${version}`;
      const { event_id } = await sender.sendMessage(room(), body);
      for (const receiver of [alice, bob, carol].filter((c) => c !== sender)) {
        const event = await waitForEvent(receiver, room(), event_id, { what: `${receiver.userId} sees the message of ${sender.userId}` });
        expect(event).toMatchObject({ sender: sender.userId, type: "m.room.message", room_id: room(), content: { msgtype: "m.text", body } });
        expect((await receiver.event(room(), event_id)).content["body"]).toBe(body);
      }
    }
  });

  it("ends with the same current state on all three servers: three joined members and the room's settings", async () => {
    const state = await waitForIdenticalState([alice, bob, carol], room());
    for (const member of [alice, bob, carol]) expect(state.some((line) => line.startsWith(`m.room.member|${member.userId} -> `))).toBe(true);
    for (const type of ["m.room.create", "m.room.power_levels", "m.room.join_rules", "m.room.name"]) {
      expect(state.some((line) => line.startsWith(`${type}| -> `))).toBe(true);
    }
  });
});
