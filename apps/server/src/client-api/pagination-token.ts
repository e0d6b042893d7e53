/**
 * `/messages` pagination tokens (client-server API § "Pagination"; the spec leaves their
 * form to the server). A token names a place between two events in the room's topological
 * order ({@link TimelinePosition}): `t<depth>_<stream>` is the place just after the event
 * at that depth and stream ordering. Synapse's room tokens have the same two parts
 * (`t<topological_ordering>-<stream_ordering>`); the separator here is `_` because stream
 * orderings of backfilled events are negative.
 *
 * Earlier versions of this server handed out `s<N>` tokens (a place in stream order, just
 * after stream ordering N). They are still accepted: the caller maps them to a topological
 * place (see {@link PaginationToken}).
 *
 * @module
 */

import type { TimelinePosition } from "../storage/storage.js";

/** A parsed pagination token. */
export type PaginationToken =
  | { readonly kind: "topological"; readonly position: TimelinePosition }
  /** An `s<N>` token of an earlier version: just after stream ordering `stream`. */
  | { readonly kind: "stream"; readonly stream: number };

const TOPOLOGICAL = /^t(-?\d{1,16})_(-?\d{1,16})$/;
const STREAM = /^s(-?\d{1,16})$/;

/** The token of a timeline position: `t<depth>_<stream>`. */
export function formatPaginationToken(position: TimelinePosition): string {
  return `t${position.depth}_${position.stream}`;
}

/**
 * Reads a token this server handed out (`t<depth>_<stream>`, or an older `s<N>`), or
 * `undefined` if `text` is not one (the caller answers `M_INVALID_PARAM`).
 */
export function parsePaginationToken(text: string): PaginationToken | undefined {
  const topological = TOPOLOGICAL.exec(text);
  if (topological !== null) {
    const depth = Number(topological[1]);
    const stream = Number(topological[2]);
    if (!Number.isSafeInteger(depth) || !Number.isSafeInteger(stream)) return undefined;
    // `+ 0` turns "-0" into 0, so that equal positions compare and print equal.
    return { kind: "topological", position: { depth: depth + 0, stream: stream + 0 } };
  }
  const stream = STREAM.exec(text);
  if (stream !== null) {
    const value = Number(stream[1]);
    return Number.isSafeInteger(value) ? { kind: "stream", stream: value + 0 } : undefined;
  }
  return undefined;
}

/** Orders two timeline positions: negative if `a` comes first, 0 if equal, positive if `b` does. */
export function comparePositions(a: TimelinePosition, b: TimelinePosition): number {
  if (a.depth !== b.depth) return a.depth < b.depth ? -1 : 1;
  if (a.stream !== b.stream) return a.stream < b.stream ? -1 : 1;
  return 0;
}
