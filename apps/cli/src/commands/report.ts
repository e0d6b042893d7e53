// The GOOD/WARN/BAD/SKIP lines that `myelin check` and `myelin keys` print, and the
// date and duration formats they use.

/**
 * GOOD: as it should be. WARN: works today, but something is off (explained). BAD: other
 * servers will fail to federate with this server (explained, with what to do). SKIP: not
 * checked, because an earlier check failed.
 */
export type Status = "GOOD" | "WARN" | "BAD" | "SKIP";

/** One line of a report. */
export interface Finding {
  /** What was checked (`discovery`, `tls`, `keys` ...). */
  readonly name: string;
  readonly status: Status;
  /** One sentence or two: what was found and, when it is not GOOD, what to do. */
  readonly message: string;
  /** Structured data for `--json`. */
  readonly details: Readonly<Record<string, unknown>>;
  /** Extra lines printed indented under the finding (not part of `--json`). */
  readonly notes?: readonly string[];
}

/** Builds a finding. */
export function finding(
  name: string,
  status: Status,
  message: string,
  details: Readonly<Record<string, unknown>> = {},
  notes?: readonly string[],
): Finding {
  return notes === undefined || notes.length === 0 ? { name, status, message, details } : { name, status, message, details, notes };
}

/** `GOOD name: message`, with its notes indented below. */
export function renderFinding(f: Finding): string {
  const notes = (f.notes ?? []).map((note) => `     ${note}\n`).join("");
  return `${f.status.padEnd(4)} ${f.name}: ${f.message}\n${notes}`;
}

/** The worst status among findings (SKIP counts as nothing). */
export function worstStatus(findings: readonly Finding[]): "GOOD" | "WARN" | "BAD" {
  if (findings.some((f) => f.status === "BAD")) return "BAD";
  if (findings.some((f) => f.status === "WARN")) return "WARN";
  return "GOOD";
}

/** `2026-01-01 00:00 UTC`: a date an operator reads, to the minute. */
export function formatDate(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** `3 days`, `5 h 12 min`, `7 min`, `40 s`: a duration rounded to what matters. */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const minutes = Math.floor(abs / 60_000);
  const hours = Math.floor(minutes / 60);
  const days = Math.floor(hours / 24);
  if (days >= 2) return `${days} days`;
  if (hours >= 1) return `${hours} h${minutes % 60 === 0 ? "" : ` ${minutes % 60} min`}`;
  if (minutes >= 1) return `${minutes} min`;
  return `${Math.floor(abs / 1000)} s`;
}

/** `in 3 days` or `5 h ago`. */
export function relative(ms: number, now: number): string {
  return ms >= now ? `in ${formatDuration(ms - now)}` : `${formatDuration(now - ms)} ago`;
}
