/**
 * The records that flow through the engine, from mapped rows to destination operations.
 * Data flow: source rows → mapped group records → diff against the snapshot → operations → batches →
 * destination → acknowledgements → state.
 */

/** A JSON value as sent to a destination. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * Identifies one group profile in the destination. In hierarchical Mixpanel projects the same Group ID under two
 * Company IDs is two different profiles, so `companyId` is part of the identity.
 */
export interface GroupRef {
  /** The Group Key, e.g. `company`, `$company_id`, `$user_id`, `team_id`. Constant for a sync. */
  readonly groupKey: string;
  /** The bare Group ID value (never the `$company:` prefixed form). */
  readonly groupId: string;
  /** The bare Company ID; present only for hierarchical destinations. */
  readonly companyId?: string;
  /**
   * Not part of the identity: the user the destination attributes calls about this group to (Segment's `userId`),
   * from the mapping's `user_id` column. Present only for groups read this run whose column was not empty.
   */
  readonly userId?: string;
}

/**
 * One operation on one group profile; destinations send one operation per update object.
 * `set_once` sets only properties the profile does not hold yet; `union` adds the items a list lacks; `remove`
 * takes one item out of one list (one item per update, as Mixpanel's `$remove` requires).
 */
export type GroupOperation =
  | { readonly kind: "set"; readonly ref: GroupRef; readonly properties: Readonly<Record<string, JsonValue>> }
  | { readonly kind: "set_once"; readonly ref: GroupRef; readonly properties: Readonly<Record<string, JsonValue>> }
  | { readonly kind: "unset"; readonly ref: GroupRef; readonly names: readonly string[] }
  | {
      readonly kind: "union";
      readonly ref: GroupRef;
      readonly lists: Readonly<Record<string, readonly (string | number)[]>>;
    }
  | { readonly kind: "remove"; readonly ref: GroupRef; readonly name: string; readonly item: string | number }
  | { readonly kind: "delete"; readonly ref: GroupRef };

export type OperationKind = GroupOperation["kind"];
