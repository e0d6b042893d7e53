import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { removeTemporaryDirectories } from "../../test-helpers.js";
import { StorageError } from "../storage-error.js";
import type { StorageFailure } from "../storage-error.js";
import type { Storage, StorageTx, TimelinePosition } from "../storage.js";
import { openSqliteStorage } from "./sqlite-storage.js";
import { newEvent, openTemporaryStorage, withStorage } from "./test-fixtures.js";

afterAll(removeTemporaryDirectories);

const ROOM = "!room:example.org";

/** Awaits `promise` and returns the reason of the StorageError it rejects with. */
async function failureOf(promise: Promise<unknown>): Promise<StorageFailure> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof StorageError) return error.reason;
    throw error;
  }
  throw new Error("expected a StorageError, but the promise resolved");
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 1));

describe("rooms", () => {
  it("records rooms, refuses a duplicate room ID and lists them by ID", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertRoom({ roomId: "!b:x", roomVersion: "12", creator: "@a:x", createdTs: 5 });
        await tx.insertRoom({ roomId: "!a:x", roomVersion: "10", creator: "@a:x", createdTs: 6 });
        expect(await failureOf(tx.insertRoom({ roomId: "!a:x", roomVersion: "11", creator: "@z:x", createdTs: 7 }))).toBe(
          "conflict",
        );
      });
      await storage.transaction(async (tx) => {
        expect(await tx.getRoom("!a:x")).toEqual({
          roomId: "!a:x",
          roomVersion: "10",
          creator: "@a:x",
          createdTs: 6,
          isPublic: false,
        });
        expect(await tx.getRoom("!nope:x")).toBeUndefined();
        expect((await tx.listRooms()).map((room) => room.roomId)).toEqual(["!a:x", "!b:x"]);
      });
    });
  });

  it("lists exactly the rooms made public, and unlisting removes them", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        for (const roomId of ["!a:x", "!b:x", "!c:x"]) {
          await tx.insertRoom({ roomId, roomVersion: "12", creator: "@a:x", createdTs: 1 });
        }
        await tx.setRoomPublic("!c:x", true);
        await tx.setRoomPublic("!a:x", true);
        expect((await tx.listPublicRooms()).map((room) => room.roomId)).toEqual(["!a:x", "!c:x"]);
        await tx.setRoomPublic("!a:x", false);
        expect((await tx.listPublicRooms()).map((room) => room.roomId)).toEqual(["!c:x"]);
        expect((await tx.getRoom("!c:x"))?.isPublic).toBe(true);
        expect(await failureOf(tx.setRoomPublic("!unknown:x", true))).toBe("not-found");
      });
    });
  });
});

describe("events", () => {
  it("stores the JSON text byte for byte and reads every column back", async () => {
    // Not canonical on purpose: storage must never re-serialise what it was given.
    const json = '{"type":"m.room.member",  "content":{"membership":"join","n":1.0e0},"x":"\\u00e9"}';
    await withStorage(async (storage) => {
      const inserted = await storage.transaction((tx) =>
        tx.insertEvent(
          newEvent("$member", {
            json,
            type: "m.room.member",
            stateKey: "@alice:example.org",
            depth: 7,
            originServerTs: 1234,
            prevEvents: ["$p1", "$p2"],
            authEvents: ["$a1"],
            stateGroupBefore: null,
            receivedTs: 99,
          }),
        ),
      );
      const read = await storage.transaction((tx) => tx.getEvent("$member"));
      expect(read).toEqual(inserted);
      expect(read).toEqual({
        eventId: "$member",
        roomId: ROOM,
        json,
        type: "m.room.member",
        stateKey: "@alice:example.org",
        sender: "@alice:example.org",
        depth: 7,
        originServerTs: 1234,
        prevEvents: ["$p1", "$p2"],
        authEvents: ["$a1"],
        rejectedReason: null,
        softFailed: false,
        outlier: false,
        stateGroupBefore: null,
        streamOrdering: 1,
        receivedTs: 99,
      });
    });
  });

  it("refuses to insert an event ID twice", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$e"));
        expect(await failureOf(tx.insertEvent(newEvent("$e", { depth: 9 })))).toBe("conflict");
        expect((await tx.getEvent("$e"))?.depth).toBe(1);
      });
    });
  });

  it("gives non-outliers increasing stream orderings across rooms and outliers none", async () => {
    await withStorage(async (storage) => {
      const events = await storage.transaction(async (tx) => [
        await tx.insertEvent(newEvent("$1")),
        await tx.insertEvent(newEvent("$out", { outlier: true })),
        await tx.insertEvent(newEvent("$2", { roomId: "!other:x" })),
        await tx.insertEvent(newEvent("$3")),
      ]);
      expect(events.map((event) => event.streamOrdering)).toEqual([1, null, 2, 3]);
      await storage.transaction(async (tx) => {
        expect(await tx.getMaxStream()).toBe(3);
        expect(await tx.getMaxStream(ROOM)).toBe(3);
        expect(await tx.getMaxStream("!other:x")).toBe(2);
        expect(await tx.getMaxStream("!empty:x")).toBe(0);
      });
    });
  });

  it("reads a batch larger than SQLite's bound-variable limit in one call", async () => {
    await withStorage(async (storage) => {
      const ids = Array.from({ length: 40_000 }, (_, i) => `$e${i}`);
      await storage.transaction(async (tx) => {
        for (const id of ids.slice(0, 2_000)) await tx.insertEvent(newEvent(id, { outlier: true }));
      });
      await storage.transaction(async (tx) => {
        const found = await tx.getEvents(ids);
        expect(found.size).toBe(2_000);
        expect(found.get("$e1999")?.eventId).toBe("$e1999");
        expect(found.has("$e2000")).toBe(false);
        const present = await tx.hasEvents([...ids, "$e0", "$e0"]);
        expect(present.size).toBe(2_000);
        expect(present.has("$e0")).toBe(true);
        expect(await tx.getEvents([])).toEqual(new Map());
      });
    });
  });

  it("updates status columns, leaving the others alone", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$e", { stateGroupBefore: null }));
        const group = await tx.createStateGroup(ROOM, null, new Map([["k", "$e"]]));
        const rejected = await tx.updateEvent("$e", { rejectedReason: "auth failed", stateGroupBefore: group });
        expect(rejected).toMatchObject({ rejectedReason: "auth failed", stateGroupBefore: group, softFailed: false });
        const soft = await tx.updateEvent("$e", { softFailed: true });
        expect(soft).toMatchObject({ rejectedReason: "auth failed", stateGroupBefore: group, softFailed: true });
        const cleared = await tx.updateEvent("$e", { rejectedReason: null, softFailed: false });
        expect(cleared).toMatchObject({ rejectedReason: null, softFailed: false, streamOrdering: 1 });
        expect(await tx.getEvent("$e")).toEqual(cleared);
        expect(await failureOf(tx.updateEvent("$missing", { softFailed: true }))).toBe("not-found");
      });
    });
  });

  it("assigns a stream ordering when an outlier is de-outliered, once", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$out", { outlier: true }));
        await tx.insertEvent(newEvent("$in"));
        const assigned = await tx.updateEvent("$out", { outlier: false, streamOrdering: "assign" });
        expect(assigned).toMatchObject({ outlier: false, streamOrdering: 2 });
        const again = await tx.updateEvent("$out", { streamOrdering: "assign" });
        expect(again.streamOrdering).toBe(2);
        // Setting outlier:false alone keeps the invariant "non-outliers have a position".
        await tx.insertEvent(newEvent("$out2", { outlier: true }));
        expect((await tx.updateEvent("$out2", { outlier: false })).streamOrdering).toBe(3);
      });
    });
  });

  it("pages the timeline both ways from a position, hiding outliers, rejected and soft-failed events", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$1"));
        await tx.insertEvent(newEvent("$rejected", { rejectedReason: "bad" }));
        await tx.insertEvent(newEvent("$2"));
        await tx.insertEvent(newEvent("$soft", { softFailed: true }));
        await tx.insertEvent(newEvent("$other", { roomId: "!other:x" }));
        await tx.insertEvent(newEvent("$out", { outlier: true }));
        await tx.insertEvent(newEvent("$3"));
        await tx.insertEvent(newEvent("$4"));
      });
      await storage.transaction(async (tx) => {
        const ids = async (query: Parameters<StorageTx["getRoomTimeline"]>[1]): Promise<string[]> =>
          (await tx.getRoomTimeline(ROOM, query)).map((event) => event.eventId);
        expect(await ids({ dir: "b", limit: 10 })).toEqual(["$4", "$3", "$2", "$1"]);
        expect(await ids({ dir: "b", limit: 2 })).toEqual(["$4", "$3"]);
        // All at depth 1: stream ordering decides. A position is the place just after an event.
        const three = (await tx.getEvent("$3"))?.streamOrdering ?? 0;
        expect(await ids({ dir: "b", limit: 10, from: { depth: 1, stream: three - 1 } })).toEqual(["$2", "$1"]);
        expect(await ids({ dir: "b", limit: 10, from: { depth: 1, stream: three } })).toEqual(["$3", "$2", "$1"]);
        expect(await ids({ dir: "f", limit: 10 })).toEqual(["$1", "$2", "$3", "$4"]);
        const two = (await tx.getEvent("$2"))?.streamOrdering ?? -1;
        expect(await ids({ dir: "f", limit: 1, from: { depth: 1, stream: two } })).toEqual(["$3"]);
        expect(await failureOf(tx.getRoomTimeline(ROOM, { dir: "b", limit: 1, from: { depth: 1.5, stream: 0 } }))).toBe("invalid-argument");
        expect(await ids({ dir: "f", limit: 0 })).toEqual([]);
        expect(await failureOf(tx.getRoomTimeline(ROOM, { dir: "f", limit: -1 }))).toBe("invalid-argument");
      });
    });
  });

  it("finds the timeline event nearest a timestamp in each direction", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$t100", { originServerTs: 100 }));
        await tx.insertEvent(newEvent("$t200", { originServerTs: 200 }));
        await tx.insertEvent(newEvent("$t250soft", { originServerTs: 250, softFailed: true }));
        await tx.insertEvent(newEvent("$t300", { originServerTs: 300 }));
        expect(await tx.getEventIdNearTs(ROOM, 200, "f")).toBe("$t200");
        expect(await tx.getEventIdNearTs(ROOM, 201, "f")).toBe("$t300");
        expect(await tx.getEventIdNearTs(ROOM, 299, "b")).toBe("$t200");
        expect(await tx.getEventIdNearTs(ROOM, 300, "b")).toBe("$t300");
        expect(await tx.getEventIdNearTs(ROOM, 99, "b")).toBeUndefined();
        expect(await tx.getEventIdNearTs(ROOM, 301, "f")).toBeUndefined();
        expect(await tx.getEventIdNearTs("!other:x", 200, "f")).toBeUndefined();
      });
    });
  });

  it("computes auth chains transitively through stored edges, across cycles and shared ancestors", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$create", { outlier: true }));
        await tx.insertEvent(newEvent("$pl", { authEvents: ["$create", "$join"], outlier: true }));
        await tx.insertEvent(newEvent("$join", { authEvents: ["$create", "$pl"], outlier: true })); // cycle with $pl
        await tx.insertEvent(newEvent("$msg", { authEvents: ["$create", "$join", "$pl"] }));
        await tx.insertEvent(newEvent("$partial", { authEvents: ["$unknown"] }));
        expect(await tx.getAuthChainIds(["$msg"])).toEqual(new Set(["$create", "$join", "$pl"]));
        expect(await tx.getAuthChainIds(["$create"])).toEqual(new Set());
        expect(await tx.getAuthChainIds(["$partial", "$create"])).toEqual(new Set(["$unknown"]));
        expect(await tx.getAuthChainIds([])).toEqual(new Set());
      });
    });
  });

  it("finds the non-rejected children of events through prev edges", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$root"));
        await tx.insertEvent(newEvent("$a", { prevEvents: ["$root"] }));
        await tx.insertEvent(newEvent("$b", { prevEvents: ["$root", "$a"] }));
        await tx.insertEvent(newEvent("$bad", { prevEvents: ["$b"], rejectedReason: "no" }));
        await tx.insertEvent(newEvent("$auth-only", { authEvents: ["$b"] }));
        expect(await tx.getChildEventIds(["$root"])).toEqual(new Set(["$a", "$b"]));
        expect(await tx.getChildEventIds(["$a", "$b"])).toEqual(new Set(["$b"]));
        expect(await tx.getChildEventIds(["$bad"])).toEqual(new Set());
      });
    });
  });

  it("lists events at or below a depth, deepest first, for backfill", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$d1", { depth: 1 }));
        await tx.insertEvent(newEvent("$d2", { depth: 2 }));
        await tx.insertEvent(newEvent("$d2b", { depth: 2 }));
        await tx.insertEvent(newEvent("$d3", { depth: 3 }));
        await tx.insertEvent(newEvent("$d2rej", { depth: 2, rejectedReason: "no" }));
        await tx.insertEvent(newEvent("$d2out", { depth: 2, outlier: true }));
        const ids = (await tx.getEventsBeforeDepth(ROOM, { maxDepth: 2, limit: 10 })).map((event) => event.eventId);
        expect(ids).toEqual(["$d2b", "$d2", "$d1"]);
        expect((await tx.getEventsBeforeDepth(ROOM, { maxDepth: 3, limit: 2 })).map((event) => event.eventId)).toEqual([
          "$d3",
          "$d2b",
        ]);
      });
    });
  });
});

describe("backfill", () => {
  it("reserves blocks of stream orderings below every one handed out, never reusing one", async () => {
    await withStorage(async (storage, path) => {
      const first = await storage.transaction((tx) => tx.reserveBackfillOrderings(3));
      expect(first).toBe(-3);
      expect(await storage.transaction((tx) => tx.reserveBackfillOrderings(2))).toBe(-5);
      // A rolled-back reservation is given out again; a committed one never is.
      await expect(
        storage.transaction(async (tx) => {
          await tx.reserveBackfillOrderings(10);
          throw new Error("abandon");
        }),
      ).rejects.toThrow("abandon");
      expect(await storage.transaction((tx) => tx.reserveBackfillOrderings(1))).toBe(-6);
      expect(await failureOf(storage.transaction((tx) => tx.reserveBackfillOrderings(0)))).toBe("invalid-argument");
      await storage.close();
      const reopened = await openSqliteStorage(path);
      try {
        expect(await reopened.transaction((tx) => tx.reserveBackfillOrderings(1))).toBe(-7);
      } finally {
        await reopened.close();
      }
    });
  });

  it("places backfilled events in the timeline by depth, whether inserted or de-outliered", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$join", { depth: 10 }));
        await tx.insertEvent(newEvent("$later", { depth: 11 }));
        await tx.insertEvent(newEvent("$state", { depth: 8, outlier: true }));
        const lowest = await tx.reserveBackfillOrderings(3);
        // Oldest first: the lowest position goes to the shallowest event.
        await tx.insertEvent(newEvent("$old7", { depth: 7, streamOrdering: lowest }));
        await tx.updateEvent("$state", { outlier: false, streamOrdering: lowest + 1 });
        await tx.insertEvent(newEvent("$old9", { depth: 9, streamOrdering: lowest + 2 }));
        const ids = async (query: Parameters<StorageTx["getRoomTimeline"]>[1]): Promise<string[]> =>
          (await tx.getRoomTimeline(ROOM, query)).map((event) => event.eventId);
        expect(await ids({ dir: "b", limit: 10 })).toEqual(["$later", "$join", "$old9", "$state", "$old7"]);
        expect(await ids({ dir: "f", limit: 10 })).toEqual(["$old7", "$state", "$old9", "$join", "$later"]);
        expect(await ids({ dir: "b", limit: 10, from: { depth: 9, stream: lowest + 1 } })).toEqual(["$state", "$old7"]);
        expect(await tx.getMaxStream(ROOM)).toBe((await tx.getEvent("$later"))?.streamOrdering);
        expect(await failureOf(tx.insertEvent(newEvent("$bad", { outlier: true, streamOrdering: -100 })))).toBe("invalid-argument");
      });
    });
  });

  it("orders the timeline by depth, then stream ordering: history backfilled after a rejoin goes between the events received live around it", async () => {
    await withStorage(async (storage) => {
      // What a server holds after a user left a room and rejoined: the events it received
      // live during the first membership (depths 1-5), the rejoin (depth 28), and then the
      // history it missed (depths 6-27), backfilled, so with stream orderings below all.
      const expected = ["$create", "$m0", "$fork", "$m1", "$m2", "$leave"];
      for (let i = 3; i <= 24; i++) expected.push(`$m${i}`);
      expected.push("$rejoin");
      await storage.transaction(async (tx) => {
        for (const [index, id] of ["$create", "$m0", "$m1", "$m2", "$leave"].entries()) await tx.insertEvent(newEvent(id, { depth: index + 1 }));
        await tx.insertEvent(newEvent("$rejoin", { depth: 28, prevEvents: ["$m24"] }));
        const backfilled = expected.filter((id) => /^\$m([3-9]|1\d|2[0-4])$/.test(id));
        // A branch the server never saw, at the depth of $m1: at equal depth, the one placed later (lower stream ordering) comes first.
        const lowest = await tx.reserveBackfillOrderings(backfilled.length + 1);
        await tx.insertEvent(newEvent("$fork", { depth: 3, streamOrdering: lowest }));
        for (const [index, id] of backfilled.entries()) await tx.insertEvent(newEvent(id, { depth: index + 6, streamOrdering: lowest + 1 + index }));
      });
      await storage.transaction(async (tx) => {
        // Stream order alone would list the backfilled history before what was seen live.
        const byStream = [...(await tx.getEvents(expected)).values()].sort((a, b) => (a.streamOrdering ?? 0) - (b.streamOrdering ?? 0));
        expect(byStream.map((e) => e.eventId)).not.toEqual(expected);

        expect((await tx.getRoomTimeline(ROOM, { dir: "f", limit: 100 })).map((e) => e.eventId)).toEqual(expected);
        expect((await tx.getRoomTimeline(ROOM, { dir: "b", limit: 100 })).map((e) => e.eventId)).toEqual([...expected].reverse());
        // Paged the way /messages pages: each page starts at the place next to the previous page's last event.
        const walk = async (dir: "b" | "f", limit: number): Promise<string[]> => {
          const seen: string[] = [];
          let from: TimelinePosition | undefined;
          for (;;) {
            const page = await tx.getRoomTimeline(ROOM, { dir, limit, ...(from === undefined ? {} : { from }) });
            seen.push(...page.map((e) => e.eventId));
            const last = page.at(-1);
            if (page.length < limit || last === undefined) return seen;
            const stream = last.streamOrdering ?? 0;
            from = { depth: last.depth, stream: dir === "b" ? stream - 1 : stream };
          }
        };
        for (const limit of [1, 4, 7]) {
          expect(await walk("b", limit)).toEqual([...expected].reverse());
          expect(await walk("f", limit)).toEqual(expected);
        }
      });
    });
  });

  it("finds the greatest timeline depth up to a stream ordering, to read a position in stream order", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$a", { depth: 4 }));
        await tx.insertEvent(newEvent("$b", { depth: 2 }));
        await tx.insertEvent(newEvent("$deep-rejected", { depth: 50, rejectedReason: "no" }));
        await tx.insertEvent(newEvent("$deep-outlier", { depth: 60, outlier: true }));
        await tx.insertEvent(newEvent("$elsewhere", { roomId: "!other:x", depth: 70 }));
        await tx.insertEvent(newEvent("$c", { depth: 9 }));
        const stream = async (id: string): Promise<number> => (await tx.getEvent(id))?.streamOrdering ?? Number.NaN;
        expect(await tx.getMaxDepthUpToStream(ROOM, await stream("$a"))).toBe(4);
        expect(await tx.getMaxDepthUpToStream(ROOM, await stream("$elsewhere"))).toBe(4);
        expect(await tx.getMaxDepthUpToStream(ROOM, await stream("$c"))).toBe(9);
        expect(await tx.getMaxDepthUpToStream(ROOM, (await stream("$a")) - 1)).toBeUndefined();
        expect(await failureOf(tx.getMaxDepthUpToStream(ROOM, 0.5))).toBe("invalid-argument");
      });
    });
  });

  it("lists the prev events the timeline cites but does not hold, deepest child first", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.insertEvent(newEvent("$known", { depth: 4 }));
        await tx.insertEvent(newEvent("$outlier", { depth: 3, outlier: true }));
        await tx.insertEvent(newEvent("$join", { depth: 5, prevEvents: ["$known", "$missing-a"] }));
        await tx.insertEvent(newEvent("$msg", { depth: 6, prevEvents: ["$join", "$outlier"] }));
        await tx.insertEvent(newEvent("$known2", { depth: 3, prevEvents: ["$missing-a", "$missing-b"] }));
        // Neither rejected nor outlier events nor other rooms' events count as citing.
        await tx.insertEvent(newEvent("$rejected", { depth: 9, prevEvents: ["$missing-r"], rejectedReason: "no" }));
        await tx.insertEvent(newEvent("$out2", { depth: 9, prevEvents: ["$missing-o"], outlier: true }));
        await tx.insertEvent(newEvent("$elsewhere", { roomId: "!other:x", depth: 9, prevEvents: ["$missing-x"] }));
        expect(await tx.getBackwardExtremities(ROOM, 10)).toEqual([
          { eventId: "$outlier", childDepth: 6 },
          { eventId: "$missing-a", childDepth: 5 },
          { eventId: "$missing-b", childDepth: 3 },
        ]);
        expect((await tx.getBackwardExtremities(ROOM, 1)).map((e) => e.eventId)).toEqual(["$outlier"]);
        // Only citations by events in the depth range count, and childDepth is the deepest of those.
        expect(await tx.getBackwardExtremities(ROOM, 10, { max: 5 })).toEqual([
          { eventId: "$missing-a", childDepth: 5 },
          { eventId: "$missing-b", childDepth: 3 },
        ]);
        expect(await tx.getBackwardExtremities(ROOM, 10, { max: 4 })).toEqual([
          { eventId: "$missing-a", childDepth: 3 },
          { eventId: "$missing-b", childDepth: 3 },
        ]);
        expect(await tx.getBackwardExtremities(ROOM, 10, { min: 4, max: 5 })).toEqual([{ eventId: "$missing-a", childDepth: 5 }]);
        expect(await tx.getBackwardExtremities(ROOM, 10, { min: 6 })).toEqual([{ eventId: "$outlier", childDepth: 6 }]);
        expect(await tx.getBackwardExtremities(ROOM, 10, { min: 7 })).toEqual([]);
        // Once placed in the timeline, it is no longer one.
        await tx.updateEvent("$outlier", { outlier: false, streamOrdering: await tx.reserveBackfillOrderings(1) });
        expect((await tx.getBackwardExtremities(ROOM, 10)).map((e) => e.eventId)).toEqual(["$missing-a", "$missing-b"]);
      });
    });
  });
});

describe("pending invites", () => {
  it("records one invite per room and user, replaces it, lists a user's and forgets them", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        for (const id of ["$inv1", "$inv2", "$inv3"]) await tx.insertEvent(newEvent(id, { type: "m.room.member", outlier: true }));
        const invite = { roomId: "!b:x", userId: "@u:x", eventId: "$inv1", sender: "@s:y", roomState: "[]", receivedTs: 5 };
        await tx.putPendingInvite(invite);
        await tx.putPendingInvite({ ...invite, roomId: "!a:x", eventId: "$inv2" });
        await tx.putPendingInvite({ ...invite, userId: "@other:x", eventId: "$inv3" });
        expect(await tx.getPendingInvite("!b:x", "@u:x")).toEqual(invite);
        await tx.putPendingInvite({ ...invite, eventId: "$inv3", sender: "@t:z", roomState: '[{"type":"m.room.name"}]' });
        expect(await tx.getPendingInvite("!b:x", "@u:x")).toMatchObject({ eventId: "$inv3", sender: "@t:z", roomState: '[{"type":"m.room.name"}]' });
        expect((await tx.listPendingInvites("@u:x")).map((i) => i.roomId)).toEqual(["!a:x", "!b:x"]);
        expect(await tx.deletePendingInvite("!b:x", "@u:x")).toBe(true);
        expect(await tx.deletePendingInvite("!b:x", "@u:x")).toBe(false);
        expect(await tx.getPendingInvite("!b:x", "@u:x")).toBeUndefined();
        expect(await failureOf(tx.putPendingInvite({ ...invite, eventId: "$never-stored" }))).toBe("not-found");
      });
    });
  });
});

describe("state groups", () => {
  it("resolves deltas over a previous group, including removals", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        const g1 = await tx.createStateGroup(ROOM, null, new Map([["a", "$a1"], ["b", "$b1"]]));
        const g2 = await tx.createStateGroup(ROOM, g1, new Map([["b", "$b2"], ["c", "$c1"]]));
        const g3 = await tx.createStateGroup(ROOM, g2, new Map<string, string | null>([["a", null]]));
        expect(await tx.getStateGroup(g1)).toEqual(new Map([["a", "$a1"], ["b", "$b1"]]));
        expect(await tx.getStateGroup(g2)).toEqual(new Map([["a", "$a1"], ["b", "$b2"], ["c", "$c1"]]));
        expect(await tx.getStateGroup(g3)).toEqual(new Map([["b", "$b2"], ["c", "$c1"]]));
        expect(await failureOf(tx.getStateGroup(g3 + 100))).toBe("not-found");
        expect(await failureOf(tx.createStateGroup(ROOM, g3 + 100, new Map()))).toBe("not-found");
        expect(await failureOf(tx.createStateGroup("!other:x", g3, new Map()))).toBe("invalid-argument");
      });
    });
  });

  it("returns a copy: changing a returned map does not change the group", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        const group = await tx.createStateGroup(ROOM, null, new Map([["a", "$a"]]));
        (await tx.getStateGroup(group)).set("a", "$changed");
        expect(await tx.getStateGroup(group)).toEqual(new Map([["a", "$a"]]));
      });
    });
  });

  it("reads a state group correctly from a fresh process cache after reopen", async () => {
    const { storage, path } = await openTemporaryStorage();
    const groups = await storage.transaction(async (tx) => {
      let prev: number | null = null;
      const ids: number[] = [];
      for (let i = 0; i < 250; i++) {
        prev = await tx.createStateGroup(ROOM, prev, new Map([[`k${i % 7}`, `$e${i}`]]));
        ids.push(prev);
      }
      return ids;
    });
    await storage.close();
    const reopened = await openSqliteStorage(path);
    try {
      const last = await reopened.transaction((tx) => tx.getStateGroup(groups[249] ?? -1));
      expect(last).toEqual(new Map(Array.from({ length: 7 }, (_, k) => [`k${k}`, `$e${249 - ((249 - k) % 7)}`])));
      const early = await reopened.transaction((tx) => tx.getStateGroup(groups[3] ?? -1));
      expect(early).toEqual(new Map([["k0", "$e0"], ["k1", "$e1"], ["k2", "$e2"], ["k3", "$e3"]]));
    } finally {
      await reopened.close();
    }
  });

  it("does not serve a rolled-back group from memory when its ID is reused", async () => {
    await withStorage(async (storage) => {
      let rolledBack = -1;
      await expect(
        storage.transaction(async (tx) => {
          rolledBack = await tx.createStateGroup(ROOM, null, new Map([["a", "$ghost"]]));
          await tx.getStateGroup(rolledBack); // caches it
          throw new Error("abort");
        }),
      ).rejects.toThrow("abort");
      const reused = await storage.transaction((tx) => tx.createStateGroup(ROOM, null, new Map([["a", "$real"]])));
      expect(reused).toBe(rolledBack);
      expect(await storage.transaction((tx) => tx.getStateGroup(reused))).toEqual(new Map([["a", "$real"]]));
    });
  });
});

describe("room heads", () => {
  it("replaces forward extremities and records the current state group", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        expect(await tx.getForwardExtremities(ROOM)).toEqual([]);
        await tx.setForwardExtremities(ROOM, ["$b", "$a"]);
        await tx.setForwardExtremities("!other:x", ["$z"]);
        expect(await tx.getForwardExtremities(ROOM)).toEqual(["$a", "$b"]);
        await tx.setForwardExtremities(ROOM, new Set(["$c"]));
        expect(await tx.getForwardExtremities(ROOM)).toEqual(["$c"]);
        expect(await tx.getForwardExtremities("!other:x")).toEqual(["$z"]);

        expect(await tx.getCurrentStateGroup(ROOM)).toBeUndefined();
        const g1 = await tx.createStateGroup(ROOM, null, new Map());
        const g2 = await tx.createStateGroup(ROOM, g1, new Map([["a", "$a"]]));
        await tx.setCurrentStateGroup(ROOM, g1);
        await tx.setCurrentStateGroup(ROOM, g2);
        expect(await tx.getCurrentStateGroup(ROOM)).toBe(g2);
        expect(await failureOf(tx.setCurrentStateGroup(ROOM, g2 + 50))).toBe("not-found");
      });
    });
  });
});

describe("users", () => {
  it("creates users once, with tokens, profiles and revocation", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.createUser({ userId: "@alice:x", createdTs: 10, passwordHash: "hash" });
        await tx.createUser({ userId: "@bob:x", createdTs: 11 });
        expect(await failureOf(tx.createUser({ userId: "@alice:x", createdTs: 12 }))).toBe("conflict");
        expect(await tx.getUser("@alice:x")).toEqual({ userId: "@alice:x", createdTs: 10, passwordHash: "hash" });
        expect(await tx.getUser("@bob:x")).toEqual({ userId: "@bob:x", createdTs: 11, passwordHash: null });
        expect(await tx.getUser("@carol:x")).toBeUndefined();

        await tx.createAccessToken({ token: "t1", userId: "@alice:x", deviceId: "D1", createdTs: 1 });
        expect(await failureOf(tx.createAccessToken({ token: "t1", userId: "@bob:x", deviceId: "D2", createdTs: 1 }))).toBe(
          "conflict",
        );
        expect(
          await failureOf(tx.createAccessToken({ token: "t2", userId: "@carol:x", deviceId: "D", createdTs: 1 })),
        ).toBe("not-found");
        expect(await tx.getAccessToken("t1")).toEqual({ userId: "@alice:x", deviceId: "D1" });
        expect(await tx.deleteAccessToken("t1")).toBe(true);
        expect(await tx.deleteAccessToken("t1")).toBe(false);
        expect(await tx.getAccessToken("t1")).toBeUndefined();

        expect(await tx.getProfile("@alice:x")).toEqual({ displayname: null, avatarUrl: null });
        await tx.setProfile("@alice:x", { displayname: "Alice" });
        await tx.setProfile("@alice:x", { avatarUrl: "mxc://x/a" });
        expect(await tx.getProfile("@alice:x")).toEqual({ displayname: "Alice", avatarUrl: "mxc://x/a" });
        await tx.setProfile("@alice:x", { displayname: null });
        expect(await tx.getProfile("@alice:x")).toEqual({ displayname: null, avatarUrl: "mxc://x/a" });
        expect(await tx.getProfile("@carol:x")).toBeUndefined();
        expect(await failureOf(tx.setProfile("@carol:x", { displayname: "C" }))).toBe("not-found");
      });
    });
  });
});

describe("aliases and client transactions", () => {
  it("maps aliases once, lists them per room and deletes them", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.putAlias("#b:x", ROOM, "@alice:x");
        await tx.putAlias("#a:x", ROOM, "@alice:x");
        await tx.putAlias("#c:x", "!other:x", "@bob:x");
        expect(await failureOf(tx.putAlias("#a:x", "!other:x", "@bob:x"))).toBe("conflict");
        expect(await tx.getAlias("#a:x")).toEqual({ alias: "#a:x", roomId: ROOM, creator: "@alice:x" });
        expect(await tx.listAliases(ROOM)).toEqual(["#a:x", "#b:x"]);
        expect(await tx.deleteAlias("#a:x")).toBe(true);
        expect(await tx.deleteAlias("#a:x")).toBe(false);
        expect(await tx.getAlias("#a:x")).toBeUndefined();
        expect(await tx.listAliases(ROOM)).toEqual(["#b:x"]);
      });
    });
  });

  it("remembers which event a client transaction ID produced, per device", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.putClientTxn({ userId: "@a:x", deviceId: "D1", txnId: "t", eventId: "$e1", ts: 1 });
        await tx.putClientTxn({ userId: "@a:x", deviceId: "D2", txnId: "t", eventId: "$e2", ts: 1 });
        expect(await failureOf(tx.putClientTxn({ userId: "@a:x", deviceId: "D1", txnId: "t", eventId: "$e3", ts: 2 }))).toBe(
          "conflict",
        );
        expect(await tx.getClientTxn("@a:x", "D1", "t")).toBe("$e1");
        expect(await tx.getClientTxn("@a:x", "D2", "t")).toBe("$e2");
        expect(await tx.getClientTxn("@b:x", "D1", "t")).toBeUndefined();
      });
    });
  });
});

describe("inbound federation", () => {
  it("keeps the first response of a received transaction and prunes old ones", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        expect(await tx.putReceivedTransaction("a.org", "t1", '{"pdus":{}}', 100)).toBe(true);
        expect(await tx.putReceivedTransaction("a.org", "t1", '{"pdus":{"$x":{}}}', 150)).toBe(false);
        expect(await tx.putReceivedTransaction("b.org", "t1", '{"b":1}', 200)).toBe(true);
        expect(await tx.getReceivedTransaction("a.org", "t1")).toBe('{"pdus":{}}');
        expect(await tx.getReceivedTransaction("a.org", "t2")).toBeUndefined();
        expect(await tx.pruneReceivedTransactions(200)).toBe(1);
        expect(await tx.getReceivedTransaction("a.org", "t1")).toBeUndefined();
        expect(await tx.getReceivedTransaction("b.org", "t1")).toBe('{"b":1}');
      });
    });
  });

  it("stages PDUs in arrival order per room, once per event ID", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        const first = await tx.stagePdu({ origin: "a.org", roomId: "!r2:x", eventId: "$1", json: "{1}", receivedTs: 1 });
        const second = await tx.stagePdu({ origin: "a.org", roomId: "!r1:x", eventId: "$2", json: "{2}", receivedTs: 2 });
        const third = await tx.stagePdu({ origin: "b.org", roomId: "!r2:x", eventId: null, json: "{3}", receivedTs: 3 });
        const fourth = await tx.stagePdu({ origin: "b.org", roomId: "!r2:x", eventId: null, json: "{3}", receivedTs: 3 });
        const again = await tx.stagePdu({ origin: "b.org", roomId: "!r2:x", eventId: "$1", json: "{1'}", receivedTs: 4 });
        expect(again).toBe(first);
        expect(new Set([first, second, third, fourth]).size).toBe(4);
        expect(await tx.listStagedRooms()).toEqual(["!r1:x", "!r2:x"]);
        expect(await tx.countStagedPdus()).toBe(4);
        expect(await tx.countStagedPdus("!r2:x")).toBe(3);
        const next = await tx.nextStagedPdus("!r2:x", 2);
        expect(next).toEqual([
          { id: first, origin: "a.org", roomId: "!r2:x", eventId: "$1", json: "{1}", receivedTs: 1 },
          { id: third, origin: "b.org", roomId: "!r2:x", eventId: null, json: "{3}", receivedTs: 3 },
        ]);
        expect(await tx.deleteStagedPdu(first)).toBe(true);
        expect(await tx.deleteStagedPdu(first)).toBe(false);
        expect((await tx.nextStagedPdus("!r2:x", 10)).map((pdu) => pdu.id)).toEqual([third, fourth]);
        await tx.deleteStagedPdu(second);
        expect(await tx.listStagedRooms()).toEqual(["!r2:x"]);
      });
    });
  });

  it("grants a lease to one holder at a time until it expires or is released", async () => {
    let now = 1_000;
    await withStorage(
      async (storage) => {
        await storage.transaction(async (tx) => {
          expect(await tx.tryAcquireLease("room:!r", "worker-a", 1_500)).toBe(true);
          expect(await tx.tryAcquireLease("room:!r", "worker-b", 1_600)).toBe(false);
          expect(await tx.tryAcquireLease("room:!other", "worker-b", 1_600)).toBe(true);
          // The holder renews.
          expect(await tx.tryAcquireLease("room:!r", "worker-a", 2_000)).toBe(true);
          expect(await tx.getLease("room:!r")).toEqual({ name: "room:!r", holder: "worker-a", untilTs: 2_000 });
        });
        now = 1_999;
        expect(await storage.transaction((tx) => tx.tryAcquireLease("room:!r", "worker-b", 3_000))).toBe(false);
        now = 2_000; // expired at its until_ts
        expect(await storage.transaction((tx) => tx.tryAcquireLease("room:!r", "worker-b", 3_000))).toBe(true);
        await storage.transaction(async (tx) => {
          expect(await tx.releaseLease("room:!r", "worker-a")).toBe(false);
          expect(await tx.getLease("room:!r")).toEqual({ name: "room:!r", holder: "worker-b", untilTs: 3_000 });
          expect(await tx.releaseLease("room:!r", "worker-b")).toBe(true);
          expect(await tx.getLease("room:!r")).toBeUndefined();
          expect(await tx.tryAcquireLease("room:!r", "worker-a", 2_500)).toBe(true);
        });
      },
      { now: () => now },
    );
  });

  it("keeps a lease in the database, where another handle on the same file sees it", async () => {
    const { storage: first, path } = await openTemporaryStorage();
    const second = await openSqliteStorage(path);
    try {
      const until = Date.now() + 60_000;
      expect(await first.transaction((tx) => tx.tryAcquireLease("l", "first", until))).toBe(true);
      expect(await second.transaction((tx) => tx.tryAcquireLease("l", "second", until))).toBe(false);
      expect(await second.transaction((tx) => tx.getLease("l"))).toEqual({ name: "l", holder: "first", untilTs: until });
    } finally {
      await first.close();
      await second.close();
    }
  });
});

describe("outbound federation", () => {
  it("peeks PDUs and EDUs in queue order within the per-kind limits", async () => {
    await withStorage(
      async (storage) => {
        await storage.transaction(async (tx) => {
          const ids: number[] = [];
          for (let i = 0; i < 60; i++) {
            ids.push(await tx.enqueueOutbound("b.org", { kind: "pdu", eventId: `$p${i}` }));
            if (i % 2 === 0) ids.push(await tx.enqueueOutbound("b.org", { kind: "edu", json: `{"n":${i}}` }));
          }
          await tx.enqueueOutbound("c.org", { kind: "pdu", eventId: "$elsewhere" });
          expect(ids).toEqual([...ids].sort((a, b) => a - b));
          const batch = await tx.peekOutbound("b.org", { maxPdus: 50, maxEdus: 10 });
          const pdus = batch.filter((item) => item.kind === "pdu");
          const edus = batch.filter((item) => item.kind === "edu");
          expect(pdus.map((item) => item.eventId)).toEqual(Array.from({ length: 50 }, (_, i) => `$p${i}`));
          expect(edus.map((item) => item.json)).toEqual(Array.from({ length: 10 }, (_, i) => `{"n":${i * 2}}`));
          expect(batch.map((item) => item.id)).toEqual([...batch.map((item) => item.id)].sort((a, b) => a - b));
          expect(batch[0]).toEqual({ id: ids[0], destination: "b.org", kind: "pdu", eventId: "$p0", enqueuedTs: 42 });
          expect(await tx.countOutbound("b.org")).toBe(90);
          expect(await tx.deleteOutbound(batch.map((item) => item.id))).toBe(60);
          expect(await tx.deleteOutbound(batch.map((item) => item.id))).toBe(0);
          const rest = await tx.peekOutbound("b.org", { maxPdus: 50, maxEdus: 100 });
          expect(rest.filter((item) => item.kind === "pdu").map((item) => item.eventId)).toEqual(
            Array.from({ length: 10 }, (_, i) => `$p${i + 50}`),
          );
          expect(rest.filter((item) => item.kind === "edu")).toHaveLength(20);
          expect(await tx.peekOutbound("nobody.org", { maxPdus: 50, maxEdus: 100 })).toEqual([]);
        });
      },
      { now: () => 42 },
    );
  });

  it("drops only the volatile EDUs of one destination", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.enqueueOutbound("b.org", { kind: "edu", json: '{"typing":1}', volatile: true });
        await tx.enqueueOutbound("b.org", { kind: "edu", json: '{"to_device":1}' });
        await tx.enqueueOutbound("b.org", { kind: "pdu", eventId: "$p" });
        await tx.enqueueOutbound("c.org", { kind: "edu", json: '{"typing":2}', volatile: true });
        expect(await tx.dropVolatileOutbound("b.org")).toBe(1);
        const left = await tx.peekOutbound("b.org", { maxPdus: 50, maxEdus: 100 });
        expect(left.map((item) => (item.kind === "pdu" ? item.eventId : item.json))).toEqual(['{"to_device":1}', "$p"]);
        expect(left[0]).toMatchObject({ kind: "edu", volatile: false });
        expect(await tx.countOutbound("c.org")).toBe(1);
      });
    });
  });

  it("persists destination retry state field by field and lists destinations due", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        expect(await tx.getDestination("b.org")).toBeUndefined();
        await tx.setDestination("b.org", { failures: 2, retryAtTs: 500 });
        await tx.setDestination("b.org", { lastSuccessTs: 50 });
        expect(await tx.getDestination("b.org")).toEqual({ failures: 2, retryAtTs: 500, lastSuccessTs: 50 });
        await tx.setDestination("new.org", { lastSuccessTs: 7 });
        expect(await tx.getDestination("new.org")).toEqual({ failures: 0, retryAtTs: null, lastSuccessTs: 7 });

        await tx.enqueueOutbound("b.org", { kind: "pdu", eventId: "$1" });
        await tx.enqueueOutbound("a.org", { kind: "pdu", eventId: "$1" });
        await tx.enqueueOutbound("a.org", { kind: "pdu", eventId: "$2" });
        expect(await tx.listDestinationsDue(499)).toEqual(["a.org"]);
        expect(await tx.listDestinationsDue(500)).toEqual(["a.org", "b.org"]);
        await tx.setDestination("b.org", { failures: 0, retryAtTs: null });
        expect(await tx.getDestination("b.org")).toEqual({ failures: 0, retryAtTs: null, lastSuccessTs: 50 });
        expect(await tx.listDestinationsDue(0)).toEqual(["a.org", "b.org"]);
      });
    });
  });
});

describe("transactions", () => {
  it("rolls back every write of a transaction that throws, and rethrows", async () => {
    await withStorage(async (storage) => {
      await storage.transaction((tx) => tx.createUser({ userId: "@before:x", createdTs: 1 }));
      const failure = new Error("boom");
      await expect(
        storage.transaction(async (tx) => {
          await tx.createUser({ userId: "@during:x", createdTs: 1 });
          await tx.insertEvent(newEvent("$e"));
          await tx.createStateGroup(ROOM, null, new Map([["a", "$e"]]));
          await tx.enqueueOutbound("b.org", { kind: "pdu", eventId: "$e" });
          await tx.setForwardExtremities(ROOM, ["$e"]);
          await tick();
          throw failure;
        }),
      ).rejects.toBe(failure);
      await storage.transaction(async (tx) => {
        expect(await tx.getUser("@before:x")).toBeDefined();
        expect(await tx.getUser("@during:x")).toBeUndefined();
        expect(await tx.getEvent("$e")).toBeUndefined();
        expect(await tx.countOutbound("b.org")).toBe(0);
        expect(await tx.getForwardExtremities(ROOM)).toEqual([]);
        expect(await tx.getMaxStream()).toBe(0);
        // The stream counter rolled back with the event: the next one is 1 again.
        expect((await tx.insertEvent(newEvent("$next"))).streamOrdering).toBe(1);
      });
    });
  });

  it("commits a transaction in which a caught conflict was handled", async () => {
    await withStorage(async (storage) => {
      await storage.transaction(async (tx) => {
        await tx.createUser({ userId: "@a:x", createdTs: 1 });
        await tx.createUser({ userId: "@a:x", createdTs: 1 }).catch(() => undefined);
        await tx.createUser({ userId: "@b:x", createdTs: 1 });
      });
      const users = await storage.transaction(async (tx) => [await tx.getUser("@a:x"), await tx.getUser("@b:x")]);
      expect(users.every((user) => user !== undefined)).toBe(true);
    });
  });

  it("returns the value of the function, sync or async", async () => {
    await withStorage(async (storage) => {
      expect(await storage.transaction(() => 7)).toBe(7);
      expect(await storage.transaction(async () => "async")).toBe("async");
    });
  });

  it("never interleaves two concurrent transactions, even across awaits", async () => {
    await withStorage(async (storage) => {
      const log: string[] = [];
      const body = (name: string) => async (tx: StorageTx) => {
        log.push(`${name}:start`);
        for (let i = 0; i < 5; i++) {
          const count = (await tx.listRooms()).length;
          await tick();
          await tx.insertRoom({ roomId: `!${name}${i}:x`, roomVersion: "12", creator: "@a:x", createdTs: count });
        }
        log.push(`${name}:end`);
        return (await tx.listRooms()).length;
      };
      const [a, b] = await Promise.all([storage.transaction(body("a")), storage.transaction(body("b"))]);
      expect(log).toEqual(["a:start", "a:end", "b:start", "b:end"]);
      expect([a, b]).toEqual([5, 10]);
      // Each saw only its own and committed writes: b started from a's five rooms.
      const rooms = await storage.transaction((tx) => tx.listRooms());
      expect(rooms.find((room) => room.roomId === "!b0:x")?.createdTs).toBe(5);
    });
  });

  it("keeps running queued transactions after one fails", async () => {
    await withStorage(async (storage) => {
      const failing = storage.transaction(async () => {
        await tick();
        throw new Error("first fails");
      });
      const next = storage.transaction((tx) => tx.createUser({ userId: "@ok:x", createdTs: 1 }));
      await expect(failing).rejects.toThrow("first fails");
      await next;
      expect(await storage.transaction((tx) => tx.getUser("@ok:x"))).toBeDefined();
    });
  });

  it("refuses a nested transaction instead of deadlocking", async () => {
    await withStorage(async (storage) => {
      const reason = await storage
        .transaction(async () => failureOf(storage.transaction(() => 1)))
        .catch((error: unknown) => error);
      expect(reason).toBe("nested-transaction");
    });
  });

  it("refuses to use a transaction object after its transaction ended", async () => {
    await withStorage(async (storage) => {
      let leaked: StorageTx | undefined;
      await storage.transaction((tx) => {
        leaked = tx;
      });
      expect(leaked).toBeDefined();
      if (leaked !== undefined) expect(await failureOf(leaked.getUser("@a:x"))).toBe("closed");
    });
  });

  it("fails with busy, and recovers, when another connection holds the write lock past the timeout", async () => {
    await withStorage(
      async (storage, path) => {
        const other = new Database(path);
        other.exec("BEGIN IMMEDIATE");
        try {
          expect(await failureOf(storage.transaction((tx) => tx.createUser({ userId: "@a:x", createdTs: 1 })))).toBe("busy");
        } finally {
          other.exec("ROLLBACK");
          other.close();
        }
        await storage.transaction((tx) => tx.createUser({ userId: "@a:x", createdTs: 1 }));
        expect(await storage.transaction((tx) => tx.getUser("@a:x"))).toBeDefined();
      },
      { busyTimeoutMs: 50 },
    );
  });

  it("reports a damaged event row as corrupt", async () => {
    await withStorage(async (storage, path) => {
      await storage.transaction((tx) => tx.insertEvent(newEvent("$e", { prevEvents: ["$p"] })));
      const other = new Database(path);
      other.prepare("UPDATE events SET prev_events = '{\"not\":\"a list\"}'").run();
      other.close();
      expect(await failureOf(storage.transaction((tx) => tx.getEvent("$e")))).toBe("corrupt");
    });
  });

  it("keeps committed data across close and reopen", async () => {
    const { storage, path } = await openTemporaryStorage();
    await storage.transaction(async (tx) => {
      await tx.createUser({ userId: "@a:x", createdTs: 1 });
      await tx.insertEvent(newEvent("$e", { json: '{"keep":"me"}' }));
      await tx.stagePdu({ origin: "o", roomId: ROOM, eventId: "$s", json: "{}", receivedTs: 1 });
      await tx.enqueueOutbound("b.org", { kind: "pdu", eventId: "$e" });
    });
    await storage.close();
    expect(await failureOf(storage.transaction(() => 1))).toBe("closed");
    const reopened: Storage = await openSqliteStorage(path);
    try {
      await reopened.transaction(async (tx) => {
        expect(await tx.getUser("@a:x")).toBeDefined();
        expect((await tx.getEvent("$e"))?.json).toBe('{"keep":"me"}');
        expect(await tx.countStagedPdus()).toBe(1);
        expect(await tx.countOutbound("b.org")).toBe(1);
        // The stream continues where it was.
        expect((await tx.insertEvent(newEvent("$f"))).streamOrdering).toBe(2);
      });
    } finally {
      await reopened.close();
    }
  });

  it("waits for queued transactions before closing", async () => {
    const { storage, path } = await openTemporaryStorage();
    const pending = storage.transaction(async (tx) => {
      await tick();
      await tx.createUser({ userId: "@late:x", createdTs: 1 });
    });
    await storage.close();
    await pending;
    const reopened = await openSqliteStorage(path);
    try {
      expect(await reopened.transaction((tx) => tx.getUser("@late:x"))).toBeDefined();
    } finally {
      await reopened.close();
    }
  });
});
