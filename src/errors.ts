/**
 * The error hierarchy. Every error the user can see carries a stable `code` and an `action` sentence
 * that says what to do; `cause` keeps the underlying error for the debug log.
 */

export interface GroupsyncErrorOptions {
  /** Stable machine-readable code, e.g. `CONFIG_INVALID`. */
  readonly code: string;
  /** One sentence telling the user what to do about it. */
  readonly action?: string;
  /** The underlying error, logged at debug level. */
  readonly cause?: unknown;
}

export class GroupsyncError extends Error {
  readonly code: string;
  readonly action: string | undefined;

  constructor(message: string, options: GroupsyncErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code;
    this.action = options.action;
  }
}

/** A mistake in `sync.config.yaml` or a mapping file. `issues` holds every problem found, not just the first. */
export class ConfigError extends GroupsyncError {
  readonly issues: readonly ConfigIssue[];
  /** Environment variables the files reference that are not set (when the loader was told to collect them). */
  readonly missingEnv: readonly string[];

  constructor(
    issues: readonly ConfigIssue[],
    options?: Partial<GroupsyncErrorOptions> & { readonly missingEnv?: readonly string[] },
  ) {
    super(issues.map(formatConfigIssue).join("\n"), {
      code: options?.code ?? "CONFIG_INVALID",
      action: options?.action ?? "Fix the file at the line shown, then run `groupsync validate`.",
      cause: options?.cause,
    });
    this.issues = issues;
    this.missingEnv = options?.missingEnv ?? [];
  }
}

/** One problem in a config or mapping file, located precisely. */
export interface ConfigIssue {
  /** Path of the file, as given by the user (relative paths stay relative). */
  readonly file: string;
  /** 1-based line, when the problem has a position. */
  readonly line?: number;
  /** 1-based column, when the problem has a position. */
  readonly column?: number;
  /** Dotted key path, e.g. `properties.arr.type`; empty for the document root. */
  readonly path: string;
  /** What is wrong and what is expected. */
  readonly message: string;
  /**
   * The value came from these environment variables, which are not set: the problem may be only that (offline
   * validation in CI reports them as needed rather than as errors).
   */
  readonly needsEnv?: readonly string[];
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.line === undefined ? issue.file : `${issue.file}:${issue.line}:${issue.column ?? 1}`;
  return issue.path === "" ? `${where} ${issue.message}` : `${where} ${issue.path}: ${issue.message}`;
}

/** The warehouse could not be reached, or a query failed. */
export class SourceError extends GroupsyncError {}

/** The destination refused us for a reason that retrying will not fix (bad token, forbidden). */
export class DestinationError extends GroupsyncError {}

/** A state file is missing, corrupt, foreign, locked or cannot be written. */
export class StateError extends GroupsyncError {}
