/**
 * The schemas of `sync.config.yaml` and of mapping files. Unknown keys are errors everywhere (strict objects): a
 * typo must not pass silently. Connector schemas live beside their connectors and are composed here.
 */
import cron from "node-cron";
import { z } from "zod";
import { mixpanelDestinationSchema } from "../../connectors/mixpanel/config.js";
import { postgresSourceSchema } from "../../connectors/postgres/config.js";
import { NAME } from "./common.js";

export const sourceSchema = z.discriminatedUnion("type", [postgresSourceSchema]);
export const destinationSchema = z.discriminatedUnion("type", [mixpanelDestinationSchema]);

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

export const propertySchema = z.union([
  columnName.meta({ description: "The column holding the value; its type is kept." }),
  z.strictObject({
    column: columnName.meta({ description: "The column holding the value." }),
    type: z.enum(PROPERTY_TYPES).optional().meta({ description: "Coerce the value to this type." }),
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
    properties: z
      .record(z.string().min(1).max(255), propertySchema)
      .default({})
      .meta({ description: "Profile property name → column (or { column, type })." }),
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
