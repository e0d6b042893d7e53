// Membership across servers: invites into an invite-only room (accepted and declined),
// leaving, a kick by a moderator of another server, and a ban that keeps a remote user out
// until the unban. Each change made on one server must show on the others (spec CS API
// § "Room membership", server-server API § "Inviting to a room", "Leaving Rooms").
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CsClient } from "@myelin/test-support";
import { CsRequestError, waitFor } from "@myelin/test-support";
import { ROOM_VERSIONS, waitForIdenticalState, waitForMembership } from "./room-helpers.js";
import { useCluster } from "./use-cluster.js";

const cluster = useCluster({ names: ["a", "b", "c"] });
let alice: CsClient;
let bob: CsClient;
let carol: CsClient;
/** A user of C who is never invited anywhere. */
let dave: CsClient;

beforeAll(async () => {
  alice = await cluster().server("a").newClient("alice");
  bob = await cluster().server("b").newClient("bob");
  carol = await cluster().server("c").newClient("carol");
  dave = await cluster().server("c").newClient("dave");
});

afterAll(() => {
  for (const client of [alice, bob, carol, dave]) client?.close();
});

async function expectMatrixError(call: Promise<unknown>, status: number, errcode: string): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected ${status} ${errcode}, but the call succeeded`).toBeInstanceOf(CsRequestError);
  expect({ status: (error as CsRequestError).status, errcode: (error as CsRequestError).errcode }).toEqual({ status, errcode });
}

/** Waits until every one of `viewers` sees `userId`'s membership as `membership`, set by `sender`. */
async function waitEverywhere(viewers: readonly CsClient[], roomId: string, userId: string, membership: string, sender: string): Promise<void> {
  for (const viewer of viewers) {
    await waitForMembership(viewer, roomId, userId, membership);
    const event = (await viewer.roomState(roomId)).find((e) => e.type === "m.room.member" && e.state_key === userId);
    expect(event?.sender, `${viewer.userId}'s view of ${userId}'s membership`).toBe(sender);
  }
}

describe.each(ROOM_VERSIONS)("room version %s", (version) => {
  describe("an invite-only room on A", () => {
    let roomId: string | undefined;
    const room = (): string => {
      if (roomId === undefined) throw new Error("the room was not set up (see the first test of this block)");
      return roomId;
    };

    it("invites a user of B, who joins through A", async () => {
      roomId = (await alice.createRoom({ preset: "private_chat", room_version: version })).room_id;
      expect((await alice.getState<{ join_rule: string }>(room(), "m.room.join_rules")).join_rule).toBe("invite");
      await alice.invite(room(), bob.userId);
      await waitForMembership(alice, room(), bob.userId, "invite");
      await bob.join(room(), [cluster().server("a").serverName]);
      await waitEverywhere([alice, bob], room(), bob.userId, "join", bob.userId);
      expect(await bob.joinedRooms()).toContain(room());
    });

    it("lets a user of C decline an invite, and A sees the leave", async () => {
      await alice.invite(room(), carol.userId);
      await waitForMembership(alice, room(), carol.userId, "invite");
      await carol.leave(room());
      await waitEverywhere([alice, bob], room(), carol.userId, "leave", carol.userId);
      expect(await carol.joinedRooms()).not.toContain(room());
    });

    it("refuses a user of C who joins without an invite, and nothing changes on A", async () => {
      const before = await waitForIdenticalState([alice, bob], room());
      await expectMatrixError(dave.join(room(), [cluster().server("a").serverName]), 403, "M_FORBIDDEN");
      expect(await waitForIdenticalState([alice, bob], room())).toEqual(before);
      expect(await dave.joinedRooms()).not.toContain(room());
    });

    it("shows B's user leaving on A, and B no longer lists the room", async () => {
      await bob.leave(room());
      await waitEverywhere([alice], room(), bob.userId, "leave", bob.userId);
      await waitFor(async () => !(await bob.joinedRooms()).includes(room()), { what: `${bob.userId}'s joined_rooms no longer lists ${room()}` });
    });
  });

  describe("a public room on A with members on B and C", () => {
    let roomId: string | undefined;
    const room = (): string => {
      if (roomId === undefined) throw new Error("the room was not set up (see the first test of this block)");
      return roomId;
    };
    const via = (): string[] => [cluster().server("a").serverName];

    it("makes the user of B a moderator once B and C joined", async () => {
      roomId = (await alice.createRoom({ preset: "public_chat", room_version: version })).room_id;
      await bob.join(room(), via());
      await carol.join(room(), via());
      const levels = await alice.getState<{ users?: Record<string, number> }>(room(), "m.room.power_levels");
      await alice.putState(room(), "m.room.power_levels", "", { ...levels, users: { ...levels.users, [bob.userId]: 50 } });
      await waitFor(async () => (await bob.getState<{ users?: Record<string, number> }>(room(), "m.room.power_levels")).users?.[bob.userId] === 50, {
        what: `B sees ${bob.userId} at power level 50`,
      });
      await waitForIdenticalState([alice, bob, carol], room());
    });

    it("lets the moderator on B kick the user of C; all three see it and C's user may join again", async () => {
      await bob.kick(room(), carol.userId, "testing kicks");
      await waitEverywhere([alice, bob, carol], room(), carol.userId, "leave", bob.userId);
      await waitFor(async () => !(await carol.joinedRooms()).includes(room()), { what: `${carol.userId}'s joined_rooms no longer lists ${room()}` });
      await carol.join(room(), via());
      await waitEverywhere([alice, bob, carol], room(), carol.userId, "join", carol.userId);
    });

    it("bans the user of C from A; C's user cannot join again until unbanned", async () => {
      await alice.ban(room(), carol.userId, "testing bans");
      await waitEverywhere([alice, bob, carol], room(), carol.userId, "ban", alice.userId);
      const before = await waitForIdenticalState([alice, bob], room());
      await expectMatrixError(carol.join(room(), via()), 403, "M_FORBIDDEN");
      expect(await waitForIdenticalState([alice, bob], room())).toEqual(before);

      await alice.unban(room(), carol.userId);
      await waitEverywhere([alice, bob], room(), carol.userId, "leave", alice.userId);
      await carol.join(room(), via());
      await waitEverywhere([alice, bob, carol], room(), carol.userId, "join", carol.userId);
      await waitForIdenticalState([alice, bob, carol], room());
    });
  });
});
