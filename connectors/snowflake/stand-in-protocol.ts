/** The stand-in's protocol pieces: Snowflake's answers and checks that need no state. */
import { createHash, createPublicKey, verify } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

export type Body = Record<string, unknown>;

/** A user the stand-in knows. */
export interface StandInUser {
  readonly name: string;
  readonly password?: string;
  /** PEM public key, for key-pair (JWT) logins. */
  readonly publicKey?: string;
  readonly oauthToken?: string;
  /** Roles granted; the first is the default role. */
  readonly roles?: readonly string[];
}

/** Snowflake's defaults for the settings that shape result text: the source must set its own. */
export const DEFAULT_PARAMS: Record<string, string> = {
  TIMEZONE: "America/Los_Angeles",
  TIMESTAMP_OUTPUT_FORMAT: "YYYY-MM-DD HH24:MI:SS.FF3 TZHTZM",
  TIMESTAMP_NTZ_OUTPUT_FORMAT: "YYYY-MM-DD HH24:MI:SS.FF3",
  TIMESTAMP_LTZ_OUTPUT_FORMAT: "",
  TIMESTAMP_TZ_OUTPUT_FORMAT: "",
  DATE_OUTPUT_FORMAT: "YYYY-MM-DD",
  TIME_OUTPUT_FORMAT: "HH24:MI:SS",
  BINARY_OUTPUT_FORMAT: "HEX",
  STATEMENT_TIMEOUT_IN_SECONDS: "172800",
  MULTI_STATEMENT_COUNT: "1",
  QUERY_TAG: "",
};

export function parameters(params: ReadonlyMap<string, string>): { name: string; value: string | number | boolean }[] {
  return [
    ...[...params].map(([name, value]) => ({ name, value })),
    { name: "CLIENT_RESULT_PREFETCH_SLOTS", value: 2 },
    { name: "CLIENT_SESSION_KEEP_ALIVE", value: false },
    { name: "JS_TREAT_INTEGER_AS_BIGINT", value: false },
  ];
}

export function gsError(code: string, message: string, extra: { sqlState?: string; queryId?: string } = {}): Body {
  return {
    success: false,
    code,
    message,
    data: {
      errorCode: code,
      internalError: false,
      age: 0,
      ...(extra.sqlState ? { sqlState: extra.sqlState } : {}),
      ...(extra.queryId ? { queryId: extra.queryId } : {}),
    },
  };
}

/**
 * A key-pair login's JWT: RS256 over header.payload with the user's key, `sub` ACCOUNT.USER, `iss` ACCOUNT.USER.
 * SHA256:<public key fingerprint>, not expired. https://docs.snowflake.com/en/user-guide/key-pair-auth
 */
export function jwtValid(token: string, user: StandInUser, account: string): boolean {
  const [header, payload, signature] = token.split(".");
  if (!header || !payload || !signature || !user.publicKey) return false;
  const key = createPublicKey(user.publicKey);
  if (!verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, "base64url")))
    return false;
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  const fingerprint = `SHA256:${createHash("sha256")
    .update(key.export({ format: "der", type: "spki" }))
    .digest("base64")}`;
  const subject = `${account.toUpperCase()}.${user.name.toUpperCase()}`;
  // snowflake-sdk writes exp in milliseconds; either unit is in the future.
  return claims.sub === subject && claims.iss === `${subject}.${fingerprint}` && Number(claims.exp) > Date.now() / 1000;
}

export function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    request.on("data", (part: Buffer) => parts.push(part));
    request.on("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    request.on("error", reject);
  });
}

export function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}
