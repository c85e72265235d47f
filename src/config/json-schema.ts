/**
 * JSON Schemas of sync.config.yaml and of mapping files, for editors (autocomplete, hover descriptions, errors as
 * you type), derived from the zod schemas, never written twice. The input side is used: secrets are strings before
 * they become `Secret`s, durations are `"30s"` or milliseconds, keys with defaults are optional.
 */
import { z } from "zod";
import { configSchema, mappingSchema } from "./schema.js";

export type SchemaKind = "config" | "mapping";

/** `${VAR}` makes any value a string in the file: numbers and booleans may be written as a reference. */
const REFERENCE = { type: "string", pattern: "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}" };

export function jsonSchema(kind: SchemaKind): Record<string, unknown> {
  const schema = kind === "config" ? configSchema : mappingSchema;
  const generated = z.toJSONSchema(schema, {
    io: "input",
    unrepresentable: "any",
    override: ({ jsonSchema: json }) => {
      const node = json as Record<string, unknown>;
      if (node.type === "number" || node.type === "integer" || node.type === "boolean") {
        const { description, default: fallback, ...value } = node;
        for (const key of Object.keys(node)) delete node[key];
        Object.assign(node, {
          ...(description !== undefined ? { description } : {}),
          ...(fallback !== undefined ? { default: fallback } : {}),
          anyOf: [value, REFERENCE],
        });
      }
      if (node.secret === true) {
        delete node.secret;
        node.description = `${node.description ?? ""} A secret: write a \${ENV_VAR} reference, never the value.`.trim();
      }
    },
  }) as Record<string, unknown>;
  return {
    $schema: generated.$schema,
    title: kind === "config" ? "groupsync sync.config.yaml" : "groupsync mapping file",
    ...generated,
  };
}
