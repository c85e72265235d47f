/** Configuration of a PostgreSQL source (`type: postgres`). */
import { z } from "zod";
import { duration, secretString } from "../../src/config/common.js";

export const postgresTlsSchema = z
  .strictObject({
    mode: z.enum(["disable", "require", "verify-ca", "verify-full"]).default("verify-full").meta({
      description:
        "TLS mode: `require` encrypts without checking the certificate; `verify-full` also checks the host name.",
    }),
    ca_file: z.string().optional().meta({ description: "PEM file with the CA certificate(s) to trust." }),
    cert_file: z.string().optional().meta({ description: "PEM client certificate, for certificate authentication." }),
    key_file: z.string().optional().meta({ description: "PEM private key of the client certificate." }),
  })
  .meta({ description: "TLS options. Without this block, TLS follows `sslmode` in the URL." });

export const postgresSourceSchema = z
  .strictObject({
    type: z.literal("postgres"),
    url: secretString(
      "Connection URL, e.g. postgres://user:password@host:5432/db. Use ${ENV_VAR}: it holds a password.",
    ),
    tls: postgresTlsSchema.optional(),
    statement_timeout: duration("Longest a query may run before PostgreSQL cancels it.").default(3_600_000),
    fetch_size: z
      .number()
      .int()
      .min(100)
      .max(100_000)
      .default(5000)
      .meta({ description: "Rows fetched from the cursor at a time." }),
    parallel_hash: z.boolean().default(true).meta({
      description:
        "Let PostgreSQL compute the hash pass with parallel workers (as many as the server's max_parallel_workers_per_gather allows). false: one process.",
    }),
  })
  .meta({ description: "A PostgreSQL database." });

export type PostgresSourceConfig = z.output<typeof postgresSourceSchema>;
