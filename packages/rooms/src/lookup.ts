/**
 * The event-lookup interface state resolution and auth-chain walks read events through, so
 * that any storage can back them, and an in-memory implementation.
 *
 * @module
 */

import type { RoomEvent } from "./events.js";

/**
 * Where resolution reads events from. Only `getEvent` is required; `getEvents` lets storage
 * answer a whole frontier at once, and `isRejected` says whether an event was rejected
 * (rejected events are never used as auth events, and never admitted into resolved state).
 */
export interface EventLookup {
  /** The event with this ID, or `undefined` when it is unknown. */
  getEvent(eventId: string): Promise<RoomEvent | undefined>;
  /** The known events among `eventIds` (unknown IDs are simply absent from the map). */
  getEvents?(eventIds: readonly string[]): Promise<ReadonlyMap<string, RoomEvent>>;
  /** Whether the event was rejected. Default: nothing is rejected. */
  isRejected?(eventId: string): boolean | Promise<boolean>;
}

/** Options for {@link createMemoryLookup}. */
export interface MemoryLookupOptions {
  /** IDs of events that were rejected. */
  readonly rejected?: Iterable<string>;
}

/** An {@link EventLookup} over events held in memory. */
export function createMemoryLookup(events: Iterable<RoomEvent>, options: MemoryLookupOptions = {}): EventLookup {
  const byId = new Map<string, RoomEvent>();
  for (const event of events) byId.set(event.event_id, event);
  const rejected = new Set(options.rejected ?? []);
  return {
    getEvent: (eventId) => Promise.resolve(byId.get(eventId)),
    getEvents: (eventIds) => {
      const found = new Map<string, RoomEvent>();
      for (const id of eventIds) {
        const event = byId.get(id);
        if (event !== undefined) found.set(id, event);
      }
      return Promise.resolve(found);
    },
    isRejected: (eventId) => rejected.has(eventId),
  };
}

/**
 * A per-resolution cache in front of an {@link EventLookup}: events are fetched once, in
 * batches, and read synchronously afterwards.
 */
export class EventCache {
  private readonly events = new Map<string, RoomEvent | null>();
  private readonly rejected = new Map<string, boolean>();

  /**
   * @param roomId When given, events from any other room are treated as unknown: a hostile
   *   server may cite another room's events to borrow power there (Synapse 1.7.1; hostile-federation T42).
   */
  constructor(
    private readonly lookup: EventLookup,
    private readonly roomId?: string,
  ) {}

  private inRoom(event: RoomEvent): boolean {
    if (this.roomId === undefined || event.room_id === this.roomId) return true;
    // A room-12 create event has no room_id: the room ID is derived from its event ID.
    return event.room_id === undefined && event.type === "m.room.create" && `!${event.event_id.slice(1)}` === this.roomId;
  }

  private keep(event: RoomEvent | undefined): RoomEvent | null {
    return event !== undefined && this.inRoom(event) ? event : null;
  }

  /** Fetches every not-yet-fetched event among `ids` (and whether it was rejected). */
  async load(ids: Iterable<string>): Promise<void> {
    const missing: string[] = [];
    const wanted = new Set<string>();
    for (const id of ids) {
      if (!this.events.has(id) && !wanted.has(id)) {
        wanted.add(id);
        missing.push(id);
      }
    }
    if (missing.length === 0) return;
    if (this.lookup.getEvents !== undefined) {
      const found = await this.lookup.getEvents(missing);
      for (const id of missing) this.events.set(id, this.keep(found.get(id)));
    } else {
      const found = await Promise.all(missing.map((id) => this.lookup.getEvent(id)));
      missing.forEach((id, i) => this.events.set(id, this.keep(found[i])));
    }
    const isRejected = this.lookup.isRejected?.bind(this.lookup);
    if (isRejected === undefined) {
      for (const id of missing) this.rejected.set(id, false);
      return;
    }
    const flags = await Promise.all(missing.map((id) => (this.events.get(id) === null ? false : isRejected(id))));
    missing.forEach((id, i) => this.rejected.set(id, flags[i] === true));
  }

  /** A fetched event, or `undefined` if it is unknown (or was never loaded). */
  get(id: string): RoomEvent | undefined {
    return this.events.get(id) ?? undefined;
  }

  /** Whether a fetched event was rejected. */
  isRejected(id: string): boolean {
    return this.rejected.get(id) === true;
  }

  /** Whether `id` was looked up and found to be unknown. */
  isUnknown(id: string): boolean {
    return this.events.get(id) === null;
  }

  /**
   * Breadth-first walk over `auth_events` from `start`, one batched fetch per level.
   * `visit` is called once per reachable event (the start events included) and may return
   * `false` to stop the walk from going past that event.
   */
  async walkAuthEvents(start: Iterable<string>, visit: (id: string) => boolean): Promise<void> {
    const seen = new Set<string>();
    let frontier: string[] = [];
    for (const id of start) {
      if (!seen.has(id)) {
        seen.add(id);
        frontier.push(id);
      }
    }
    while (frontier.length > 0) {
      await this.load(frontier);
      const next: string[] = [];
      for (const id of frontier) {
        if (!visit(id)) continue;
        const event = this.get(id);
        if (event === undefined) continue;
        for (const authId of event.auth_events) {
          if (!seen.has(authId)) {
            seen.add(authId);
            next.push(authId);
          }
        }
      }
      frontier = next;
    }
  }
}
