/**
 * Benchmark of state resolution on generated rooms: 1,000 and 10,000 state events, 10% and
 * 50% of keys conflicted, two branches, under v2 (room 11) and v2.1 (room 12).
 *
 * Not part of the build. Run with `pnpm bench -- state-resolution` from the repository root
 * (or through `pnpm bench` once wired); `runStateResBench()` prints one line per case and
 * returns the measurements.
 *
 * @module
 */

import { getRoomVersion } from "@myelin/types";
import { createMemoryLookup } from "../lookup.js";
import { resolveState } from "../resolve.js";
import { generateRoom } from "../testing/generate-room.js";

/** One measured case. */
export interface StateResBenchResult {
  readonly roomVersion: string;
  readonly algorithm: string;
  readonly stateEvents: number;
  readonly conflictRatio: number;
  /** Events the lookup holds (base room plus both branches). */
  readonly events: number;
  /** Mean wall time of one resolution, in milliseconds. */
  readonly msPerResolution: number;
  readonly runs: number;
}

/** Options for {@link runStateResBench}. */
export interface StateResBenchOptions {
  readonly sizes?: readonly number[];
  readonly conflictRatios?: readonly number[];
  readonly roomVersions?: readonly string[];
  /** Minimum time to spend measuring each case, in milliseconds. Default 1000. */
  readonly minMs?: number;
  /** Where lines go. Default `console.log`. */
  readonly log?: (line: string) => void;
}

/** Runs the benchmark and prints ms per resolution and growth from the smallest size. */
export async function runStateResBench(options: StateResBenchOptions = {}): Promise<StateResBenchResult[]> {
  const sizes = options.sizes ?? [1_000, 10_000];
  const ratios = options.conflictRatios ?? [0.1, 0.5];
  const versions = options.roomVersions ?? ["11", "12"];
  const minMs = options.minMs ?? 1_000;
  const log = options.log ?? ((line: string) => console.log(line));
  const results: StateResBenchResult[] = [];
  log("room  algo  state-events  conflicts  events   ms/resolution  runs  growth");
  for (const version of versions) {
    const rules = getRoomVersion(version);
    for (const conflictRatio of ratios) {
      let smallest: StateResBenchResult | undefined;
      for (const stateEvents of sizes) {
        const room = generateRoom({ rules, stateEvents, conflictRatio, seed: 42 });
        const lookup = createMemoryLookup(room.events);
        const resolve = () => resolveState({ rules, stateSets: room.stateSets, lookup });
        await resolve(); // warm-up (JIT)
        let runs = 0;
        const start = performance.now();
        do {
          await resolve();
          runs++;
        } while (performance.now() - start < minMs);
        const msPerResolution = (performance.now() - start) / runs;
        const result: StateResBenchResult = {
          roomVersion: version,
          algorithm: rules.stateResolution,
          stateEvents,
          conflictRatio,
          events: room.events.length,
          msPerResolution,
          runs,
        };
        smallest ??= result;
        const growth = msPerResolution / smallest.msPerResolution;
        const sizeGrowth = stateEvents / smallest.stateEvents;
        log(
          `${version.padEnd(5)} ${rules.stateResolution.padEnd(5)} ${String(stateEvents).padStart(12)} ${`${conflictRatio * 100}%`.padStart(10)} ${String(room.events.length).padStart(7)} ${msPerResolution.toFixed(2).padStart(14)} ${String(runs).padStart(5)}  x${growth.toFixed(1)} for x${sizeGrowth} events`,
        );
        results.push(result);
      }
    }
  }
  return results;
}
