import { runStateResBench } from "../../packages/rooms/src/bench/state-res.bench.js";

/** State resolution on generated rooms (issue: no quadratic steps at the sizes that matter). */
export async function stateResolutionSection(): Promise<string> {
  const results = await runStateResBench({ log: () => {} });
  const lines = [
    "| room version (algorithm) | state events | conflicted keys | events in lookup | ms per resolution | growth vs 1,000 |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    const base = results.find(
      (b) => b.roomVersion === r.roomVersion && b.conflictRatio === r.conflictRatio && b.stateEvents === 1000,
    );
    lines.push(
      `| ${r.roomVersion} (${r.algorithm}) | ${r.stateEvents.toLocaleString("en")} | ${r.conflictRatio * 100}% | ${r.events.toLocaleString("en")} | ${r.msPerResolution.toFixed(1)} | ${base === undefined || base === r ? "baseline" : `${(r.msPerResolution / base.msPerResolution).toFixed(1)}× for ${r.stateEvents / base.stateEvents}× events`} |`,
    );
  }
  return lines.join("\n");
}
