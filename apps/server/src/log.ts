/**
 * The homeserver's log: one line per entry, `<time> <LEVEL> <message> key=value …`,
 * information to stdout and warnings and errors to stderr, filtered by level.
 *
 * @module
 */

/** Log levels, from the most to the least verbose. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/** A log level: entries below the configured one are dropped. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Extra fields of a log entry, printed as `key=value`. */
export type LogContext = Readonly<Record<string, unknown>>;

/** Where the homeserver writes what happens. */
export interface Logger {
  debug(message: string, context?: LogContext): void;
  info(message: string, context?: LogContext): void;
  warn(message: string, context?: LogContext): void;
  error(message: string, context?: LogContext): void;
}

/** A destination for lines of text (`process.stdout`, or a buffer in tests). */
export interface LineSink {
  write(text: string): unknown;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly level: LogLevel;
  /** Receives debug and info lines. */
  readonly stdout: LineSink;
  /** Receives warn and error lines. */
  readonly stderr: LineSink;
  /** The clock, ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
}

/** Whether `value` names a log level. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** A logger writing one line per entry at or above `level`. */
export function createLogger(options: LoggerOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level);
  const now = options.now ?? Date.now;
  const entry =
    (level: LogLevel, sink: LineSink) =>
    (message: string, context?: LogContext): void => {
      if (LOG_LEVELS.indexOf(level) < threshold) return;
      const fields = context === undefined ? "" : formatContext(context);
      sink.write(`${new Date(now()).toISOString()} ${level.toUpperCase()} ${oneLine(message)}${fields}\n`);
    };
  return {
    debug: entry("debug", options.stdout),
    info: entry("info", options.stdout),
    warn: entry("warn", options.stderr),
    error: entry("error", options.stderr),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function formatContext(context: LogContext): string {
  let text = "";
  for (const [key, value] of Object.entries(context)) {
    if (value === undefined) continue;
    text += ` ${key}=${formatValue(value)}`;
  }
  return text;
}

function formatValue(value: unknown): string {
  if (value instanceof Error) {
    // The cause chain tells which layer failed (e.g. a TLS error under a request error).
    const causes: string[] = [value.message];
    let cause: unknown = value.cause;
    while (cause instanceof Error && causes.length < 4) {
      causes.push(cause.message);
      cause = cause.cause;
    }
    return JSON.stringify(causes.join(": "));
  }
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  try {
    return oneLine(JSON.stringify(value) ?? String(value));
  } catch {
    return JSON.stringify(String(value));
  }
}

/** Keeps an entry on one line whatever a peer put in a path or header. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
