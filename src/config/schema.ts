/**
 * The schemas of `sync.config.yaml` and of mapping files. Unknown keys are errors everywhere (strict objects): a
 * typo must not pass silently. Connector schemas live beside their connectors and are composed here.
 */
import cron from "node-cron";
import { z } from "zod";
import { mixpanelDestinationSchema } from "../../connectors/mixpanel/config.js";
import { postgresSourceSchema } from "../../connectors/postgres/config.js";
import { posthogDestinationSchema } from "../../connectors/posthog/config.js";
import { segmentDestinationSchema } from "../../connectors/segment/config.js";
import { snowflakeSourceSchema } from "../../connectors/snowflake/config.js";
import { duration, NAME } from "./common.js";

export const sourceSchema = z.discriminatedUnion("type", [postgresSourceSchema, snowflakeSourceSchema]);
export const destinationSchema = z.discriminatedUnion("type", [
  mixpanelDestinationSchema,
  posthogDestinationSchema,
  segmentDestinationSchema,
]);

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const nameKey = z.string().regex(NAME, "names use letters, digits, '_', '-' and '.'");

export const syncSchema = z
  .strictObject({
    source: z.string().meta({ description: "Name of a source under `sources`." }),
    destination: z.string().meta({ description: "Name of a destination under `destinations`." }),
    mapping: z.string().meta({ description: "Path of the mapping file, relative to this config file." }),
    mode: z
      .enum(["upsert", "mirror"])
      .default("upsert")
      .meta({ description: "upsert never deletes; mirror also removes groups that left the source (see on_delete)." }),
    schedule: z
      .string()
      .refine((value) => cron.validate(value), { message: 'expected a cron expression such as "*/30 * * * *"' })
      .optional()
      .meta({ description: "Cron expression for `groupsync start`." }),
    max_delete_share: z.number().min(0).max(1).default(0.5).meta({
      description:
        "Mirror mode deletes nothing when more than this share of the groups left the source (0.5 = 50 %), unless the run is forced.",
    }),
    timezone: z
      .string()
      .refine(isTimeZone, { message: 'expected an IANA time zone such as "UTC" or "Europe/Berlin"' })
      .default("UTC")
      .meta({ description: "Time zone the `schedule` is read in." }),
    full_every: duration(
      "Incremental mappings (with `cursor`): make a run a full pass (which also finds deleted groups) when the last one is this old, e.g. 24h.",
    ).optional(),
    hash_pushdown: z.boolean().default(true).meta({
      description:
        "Let the warehouse hash each row, so an unchanged row crosses the wire as its key and 8 bytes, and fetch full rows only for the keys that changed. Turn off when looking rows up by key is expensive (a slow view with no usable filter).",
    }),
  })
  .meta({ description: "A sync: reads a mapping's rows from a source and sends the changes to a destination." });

export const configSchema = z
  .strictObject({
    version: z.literal(1).meta({ description: "Config format version. Always 1." }),
    state_dir: z
      .string()
      .default(".groupsync")
      .meta({ description: "Folder for state, relative to this config file: one sub-folder per sync." }),
    sources: z.record(nameKey, sourceSchema).meta({ description: "Warehouses to read from, by name." }),
    destinations: z.record(nameKey, destinationSchema).meta({ description: "Where group profiles are sent, by name." }),
    syncs: z.record(nameKey, syncSchema).meta({ description: "Syncs, by name." }),
  })
  .meta({ description: "groupsync configuration (sync.config.yaml)." });

export const PROPERTY_TYPES = ["string", "number", "boolean", "datetime", "date", "list", "object"] as const;
export type PropertyType = (typeof PROPERTY_TYPES)[number];

/** A column name: blank ones are refused here so that the mapper never looks up a column named "". */
const columnName = z.string().regex(/\S/, "must name a column; it is empty or blank");

export const PROPERTY_OPS = ["set", "set_once", "union"] as const;
export type PropertyOp = (typeof PROPERTY_OPS)[number];

/** A constant: a scalar, or a list of scalars (for `op: union`). */
const constantValue = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.array(z.union([z.string(), z.number()])).min(1, "a constant list needs at least one item"),
]);

export const propertySchema = z.union([
  columnName.meta({ description: "The column holding the value; its type is kept." }),
  z
    .strictObject({
      column: columnName.optional().meta({ description: "The column holding the value (or give `value`)." }),
      value: constantValue.optional().meta({
        description: "A constant sent for every group instead of a column, e.g. `synced_by: { value: groupsync }`.",
      }),
      type: z.enum(PROPERTY_TYPES).optional().meta({ description: "Coerce the value to this type." }),
      op: z.enum(PROPERTY_OPS).optional().meta({
        description:
          "set (default): $set when the value changes. set_once: $set_once when the group first has a value; never overwritten or unset later. union (lists): $union the items added, $remove the items that left, so items another writer added survive.",
      }),
      keep_removed: z.boolean().optional().meta({
        description: "op: union only: never $remove an item that left the list.",
      }),
      nulls: z.enum(["unset", "keep"]).optional().meta({
        description:
          "unset (default): a NULL in the warehouse removes the property ($unset). keep: a NULL never removes it.",
      }),
    })
    .superRefine((spec, context) => {
      if ((spec.column === undefined) === (spec.value === undefined)) {
        context.addIssue({
          code: "custom",
          path: spec.column === undefined ? [] : ["value"],
          message: "give exactly one of `column` (a warehouse column) or `value` (a constant)",
        });
      }
      if (spec.keep_removed !== undefined && spec.op !== "union") {
        context.addIssue({
          code: "custom",
          path: ["keep_removed"],
          message: "only applies to op: union (items that left the list); remove it or set op: union",
        });
      }
      if (spec.op === "union" && spec.type !== undefined && spec.type !== "list") {
        context.addIssue({
          code: "custom",
          path: ["type"],
          message: "op: union sends list items: use type: list, or leave type out",
        });
      }
      if (spec.value !== undefined && spec.type !== undefined) {
        context.addIssue({
          code: "custom",
          path: ["type"],
          message: "a constant `value` is sent as written: remove `type`",
        });
      }
      if (spec.value !== undefined && (spec.op === "union") !== Array.isArray(spec.value)) {
        context.addIssue({
          code: "custom",
          path: ["value"],
          message:
            spec.op === "union"
              ? "op: union needs a list constant, e.g. value: [groupsync]"
              : "a list constant needs op: union (or write it as a column)",
        });
      }
    }),
]);

export const mappingSchema = z
  .strictObject({
    from: z.string().min(1).optional().meta({ description: "Table or view to read, e.g. analytics.dim_companies." }),
    query: z.string().min(1).optional().meta({ description: "A read-only SQL query to read instead of a table." }),
    group_key: z
      .string()
      .min(1)
      .meta({ description: "The Group Key, a constant (company, $company_id, $user_id, team_id…)." }),
    group_id: columnName.meta({ description: "Column holding the Group ID." }),
    company_id: columnName
      .optional()
      .meta({ description: "Column holding the Company ID; required for hierarchical Mixpanel projects." }),
    user_id: columnName.optional().meta({
      description:
        "Segment: column holding the userId each group call is attributed to (e.g. the account's owner); when empty, the destination's anonymous_id is used.",
    }),
    properties: z.record(z.string().min(1).max(255), propertySchema).default({}).meta({
      description: "Profile property name → column, or { column | value, type, op, keep_removed, nulls }.",
    }),
    cursor: columnName.optional().meta({
      description:
        "Incremental mode: a column whose value rises whenever a row changes (e.g. updated_at). Runs read only rows changed since the last one; a full pass (see the sync's full_every) finds deleted groups.",
    }),
    on_delete: z.enum(["delete", "unset", "ignore"]).default("delete").meta({
      description: "Mirror mode, for a group that left the source: $delete it, $unset its properties, or ignore it.",
    }),
  })
  .meta({ description: "A groupsync mapping file: which rows, which Group Key, Group ID, Company ID and properties." });

export type Config = z.output<typeof configSchema>;
export type SyncConfig = z.output<typeof syncSchema>;
export type SourceConfig = z.output<typeof sourceSchema>;
export type DestinationConfig = z.output<typeof destinationSchema>;
export type MappingConfig = z.output<typeof mappingSchema>;
export type PropertyConfig = z.output<typeof propertySchema>;
