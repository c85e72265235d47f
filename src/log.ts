/**
 * pino logs: JSON lines on stderr, pretty when stderr is a terminal. Every string that reaches a log line goes
 * through `redact()`, so a secret that slipped into a driver's message is still masked.
 */
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";
import { redact } from "./secret.js";

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return redact(value);
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  if (value instanceof Error) {
    return { type: value.name, message: redact(value.message), code: (value as { code?: unknown }).code };
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = scrub(item, depth + 1);
  return out;
}

export interface LoggerOptions {
  readonly level?: string;
  /** Pretty output; default: when stderr is a TTY. */
  readonly pretty?: boolean;
  /** Where lines go; default stderr. */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.GROUPSYNC_LOG_LEVEL ?? "info";
  const base = {
    level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { log: (object: Record<string, unknown>) => scrub(object) as Record<string, unknown> },
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger["info"]>, method: (...a: unknown[]) => void) {
        method.apply(
          this,
          (args as unknown[]).map((arg) => (typeof arg === "string" ? redact(arg) : arg)),
        );
      },
    },
  };
  const usePretty = options.pretty ?? Boolean(process.stderr.isTTY);
  const target = options.destination ?? process.stderr;
  if (usePretty) {
    return pino(
      base,
      pretty({
        destination: target,
        colorize: Boolean(process.stderr.isTTY),
        sync: true,
        ignore: "sync",
        messageFormat: "{if sync}[{sync}] {end}{msg}",
      }),
    );
  }
  return pino(base, options.destination ?? pino.destination({ dest: 2, sync: true }));
}
