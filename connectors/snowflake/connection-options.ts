/**
 * The source config as snowflake-sdk connection options. A private key is read and decrypted here, not by the driver,
 * so that a wrong path or passphrase is reported in our words, and every form of the key is registered for
 * redaction before the driver sees it.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { ConnectionOptions } from "snowflake-sdk";
import { SourceError } from "../../src/errors.js";
import { redact, registerSecretValue } from "../../src/secret.js";
import type { SnowflakeSourceConfig } from "./config.js";

export async function connectionOptions(config: SnowflakeSourceConfig, queryTag: string): Promise<ConnectionOptions> {
  const base: ConnectionOptions = {
    account: config.account,
    username: config.username,
    warehouse: config.warehouse,
    database: config.database,
    ...(config.schema !== undefined ? { schema: config.schema } : {}),
    ...(config.role !== undefined ? { role: config.role } : {}),
    ...(config.access_url !== undefined ? { accessUrl: config.access_url.replace(/\/+$/, "") } : {}),
    application: "groupsync",
    queryTag,
    // With fetchAsString the driver would otherwise turn NULL into the string "NULL".
    representNullAsStringNull: false,
    clientSessionKeepAlive: false,
  };
  // Not in the typings, but read by the driver (its "external" parameters): give up on an unreachable account sooner.
  const retries = { sfRetryMaxLoginRetries: 3 } as Partial<ConnectionOptions>;
  if (config.password) return { ...base, ...retries, password: config.password.reveal() };
  if (config.oauth_token) return { ...base, ...retries, authenticator: "OAUTH", token: config.oauth_token.reveal() };
  return { ...base, ...retries, authenticator: "SNOWFLAKE_JWT", privateKey: await privateKeyPem(config) };
}

/** The private key as unencrypted PKCS#8 PEM, from `private_key_file` or `private_key`. */
async function privateKeyPem(config: SnowflakeSourceConfig): Promise<string> {
  const setting = config.private_key_file !== undefined ? "private_key_file" : "private_key";
  let pem: string;
  if (config.private_key_file !== undefined) {
    try {
      pem = await readFile(config.private_key_file, "utf8");
    } catch (error) {
      throw new SourceError(
        `cannot read private_key_file ${JSON.stringify(config.private_key_file)}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`,
        {
          code: "SOURCE_KEY_FILE",
          action: "Check the path in private_key_file of the source config and that the file is readable.",
          cause: error,
        },
      );
    }
  } else {
    // A PEM in an environment variable often has its line breaks written as \n.
    pem = (config.private_key?.reveal() ?? "").replace(/\\n/g, "\n");
  }
  registerSecretValue(pem.trim());
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: "pem", passphrase: config.private_key_passphrase?.reveal() });
  } catch (error) {
    const message = redact((error as Error).message);
    const encrypted = /ENCRYPTED/.test(pem);
    throw new SourceError(
      encrypted
        ? `cannot decrypt the private key from ${setting}: the passphrase is wrong or missing (${message})`
        : `cannot read the private key from ${setting}: it is not a PEM private key (${message})`,
      {
        code: "SOURCE_AUTH",
        action: encrypted
          ? "Check private_key_passphrase in the source config (write it as ${ENV_VAR})."
          : `Check ${setting}: it must hold a PEM private key (-----BEGIN PRIVATE KEY----- …).`,
        cause: error,
      },
    );
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new SourceError(`the private key from ${setting} is ${key.asymmetricKeyType ?? "not"} an RSA key`, {
      code: "SOURCE_AUTH",
      action: "Snowflake key-pair authentication takes an RSA key (openssl genrsa 2048); check the key in the config.",
    });
  }
  const unencrypted = key.export({ format: "pem", type: "pkcs8" }).toString();
  registerSecretValue(unencrypted.trim());
  return unencrypted;
}
