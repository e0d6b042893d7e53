/** One benchmark result: operations per second for us and, where measured, for Synapse's libraries. */
export interface Row {
  readonly name: string;
  readonly ours: number;
  readonly theirs?: number | undefined;
  readonly note?: string;
}

/**
 * Operations per second of `fn`, which performs `opsPerCall` operations per call:
 * warms up, then calls it repeatedly for at least `minMs` and reports the best of three rounds.
 */
export function measure(fn: () => void, opsPerCall: number, minMs = 700): number {
  fn();
  let best = 0;
  for (let round = 0; round < 3; round++) {
    let calls = 0;
    const start = performance.now();
    let elapsed = 0;
    do {
      fn();
      calls++;
      elapsed = performance.now() - start;
    } while (elapsed < minMs);
    best = Math.max(best, (calls * opsPerCall) / (elapsed / 1000));
  }
  return best;
}

function fmt(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString("en") : n.toFixed(1);
}

/** Prints a section as a Markdown table. */
export function printTable(section: string, rows: readonly Row[]): void {
  const lines = [
    "",
    `## ${section}`,
    "",
    "| operation | Myelin (ops/s) | Synapse's Python (ops/s) | ratio | note |",
    "| --- | ---: | ---: | ---: | --- |",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${fmt(r.ours)} | ${r.theirs === undefined ? "—" : fmt(r.theirs)} | ${
          r.theirs === undefined ? "—" : `${(r.ours / r.theirs).toFixed(2)}×`
        } | ${r.note ?? ""} |`,
    ),
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
