/** Configuration of a Snowflake source (`type: snowflake`). */
import { z } from "zod";
import { duration, secretString } from "../../src/config/common.js";

/** The keys that choose how to log in; exactly one must be given. */
export const SNOWFLAKE_AUTH_KEYS = ["password", "private_key_file", "private_key", "oauth_token"] as const;

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** An object name from the config (warehouse, database, schema, role): written as Snowflake would take it unquoted. */
const objectName = (description: string) => z.string().regex(/\S/, "must not be empty").meta({ description });

export const snowflakeSourceSchema = z
  .strictObject({
    type: z.literal("snowflake"),
    account: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "expected an account identifier such as myorg-myaccount")
      .refine((value) => !/\.snowflakecomputing\.(com|cn)$/i.test(value), {
        message: "write the account identifier without .snowflakecomputing.com, e.g. myorg-myaccount",
      })
      .meta({
        description:
          "Account identifier: orgname-accountname (e.g. myorg-myaccount), or a legacy locator with its region (xy12345.eu-west-1).",
      }),
    username: z.string().min(1).meta({ description: "The user groupsync logs in as." }),
    password: secretString("Password of the user. Use ${SNOWFLAKE_PASSWORD}.").optional(),
    private_key_file: z
      .string()
      .min(1)
      .optional()
      .meta({ description: "Key-pair authentication: PEM file with the user's private key (PKCS#8 or PKCS#1)." }),
    private_key: secretString(
      "Key-pair authentication: the private key PEM itself, e.g. ${SNOWFLAKE_PRIVATE_KEY} (\\n escapes are accepted).",
    ).optional(),
    private_key_passphrase: secretString(
      "Passphrase of an encrypted private key. Use ${SNOWFLAKE_PRIVATE_KEY_PASSPHRASE}.",
    ).optional(),
    oauth_token: secretString("OAuth access token (authenticator OAUTH). Use ${SNOWFLAKE_OAUTH_TOKEN}.").optional(),
    warehouse: objectName("Warehouse that runs the queries; the role needs USAGE on it."),
    database: objectName("Database of the tables; `from: schema.table` and `from: table` resolve inside it."),
    schema: objectName("Schema that `from: table` (without a schema) resolves in.").optional(),
    role: objectName("Role to use; default: the user's default role.").optional(),
    query_tag: z.string().max(2000).optional().meta({
      description: "QUERY_TAG of every query, to find groupsync in the query history; default groupsync:<sync>.",
    }),
    access_url: z
      .url({ protocol: /^https?$/ })
      .refine(
        (value) => {
          const url = new URL(value);
          return url.protocol === "https:" || LOOPBACK_HOSTS.has(url.hostname);
        },
        { message: "plain http:// is only allowed to a loopback address; use https://" },
      )
      .optional()
      .meta({
        description:
          "Overrides https://<account>.snowflakecomputing.com: a proxy, PrivateLink host, or a test stand-in.",
      }),
    statement_timeout: duration(
      "Longest a query may run before Snowflake cancels it (STATEMENT_TIMEOUT_IN_SECONDS).",
    ).default(3_600_000),
    fetch_timeout: duration(
      "Longest wait for the next part of a result (one chunk download, retries included) before the read fails.",
    ).default(300_000),
    fetch_size: z
      .number()
      .int()
      .min(100)
      .max(100_000)
      .default(5000)
      .meta({ description: "Rows handed to the engine at a time (Snowflake itself sends results in chunks)." }),
  })
  .superRefine((value, context) => {
    const given = SNOWFLAKE_AUTH_KEYS.filter((key) => value[key] !== undefined);
    if (given.length === 0) {
      context.addIssue({
        code: "custom",
        path: [],
        message: `give one way to log in: ${SNOWFLAKE_AUTH_KEYS.join(", ")}`,
      });
    } else if (given.length > 1) {
      context.addIssue({
        code: "custom",
        path: [given[1] as string],
        message: `give only one way to log in; found ${given.join(" and ")}`,
      });
    }
    if (value.private_key_passphrase !== undefined && value.private_key === undefined && !value.private_key_file) {
      context.addIssue({
        code: "custom",
        path: ["private_key_passphrase"],
        message: "a passphrase needs private_key_file or private_key",
      });
    }
  })
  .meta({ description: "A Snowflake account." });

export type SnowflakeSourceConfig = z.output<typeof snowflakeSourceSchema>;
