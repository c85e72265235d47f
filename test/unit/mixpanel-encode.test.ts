/** The Mixpanel destination's encoding: exactly the JSON of the documented update objects, for every operation. */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { mixpanelDestinationSchema } from "../../connectors/mixpanel/config.js";
import { createMixpanelDestination } from "../../connectors/mixpanel/destination.js";
import type { GroupOperation } from "../../src/model.js";

const TOKEN = 'tok"en\\1';

function destination(hierarchical: boolean) {
  return createMixpanelDestination(
    mixpanelDestinationSchema.parse({
      type: "mixpanel",
      project_token: TOKEN,
      api_host: "http://127.0.0.1:1",
      hierarchical,
    }),
  );
}

/** The update object as reference/mixpanel.md documents it. */
function expected(operation: GroupOperation, hierarchical: boolean): Record<string, unknown> {
  const update: Record<string, unknown> = {
    $token: TOKEN,
    $group_key: operation.ref.groupKey,
    $group_id: operation.ref.groupId,
  };
  if (hierarchical) update.$company_id = operation.ref.companyId;
  if (operation.kind === "set") update.$set = operation.properties;
  else if (operation.kind === "set_once") update.$set_once = operation.properties;
  else if (operation.kind === "unset") update.$unset = operation.names;
  else if (operation.kind === "union") update.$union = operation.lists;
  else if (operation.kind === "remove") update.$remove = { [operation.name]: operation.item };
  else update.$delete = "";
  return update;
}

test("encode gives the JSON of the update object, byte length included", async () => {
  const text = fc.string({ unit: "grapheme" });
  const operation = fc
    .record({ groupKey: text, companyId: text, groupId: text }, { requiredKeys: ["groupKey", "groupId"] })
    .chain((ref) =>
      fc.oneof(
        fc.record({
          kind: fc.constant("set" as const),
          ref: fc.constant(ref),
          properties: fc.dictionary(text, fc.jsonValue()),
        }),
        fc.record({
          kind: fc.constant("set_once" as const),
          ref: fc.constant(ref),
          properties: fc.dictionary(text, fc.jsonValue()),
        }),
        fc.record({ kind: fc.constant("unset" as const), ref: fc.constant(ref), names: fc.array(text) }),
        fc.record({
          kind: fc.constant("union" as const),
          ref: fc.constant(ref),
          lists: fc.dictionary(text, fc.array(fc.oneof(text, fc.integer()))),
        }),
        fc.record({
          kind: fc.constant("remove" as const),
          ref: fc.constant(ref),
          name: text,
          item: fc.oneof(text, fc.integer()),
        }),
        fc.record({ kind: fc.constant("delete" as const), ref: fc.constant(ref) }),
      ),
    );
  for (const hierarchical of [false, true]) {
    const mixpanel = destination(hierarchical);
    fc.assert(
      fc.property(operation, (op) => {
        const encoded = mixpanel.encode(op as GroupOperation);
        assert.deepEqual(
          JSON.parse(encoded.json.toString()),
          JSON.parse(JSON.stringify(expected(op as GroupOperation, hierarchical))),
        );
        assert.equal(encoded.bytes, Buffer.byteLength(encoded.json.toString()));
      }),
    );
    await mixpanel.close();
  }
});

test("encode keeps the documented key order: $token, $group_key, $group_id, $company_id, then the operation", async () => {
  const mixpanel = destination(true);
  const ref = { groupKey: "$company_id", companyId: "c1", groupId: "c1" };
  assert.equal(
    mixpanel.encode({ kind: "set", ref, properties: { plan: "pro" } }).json.toString(),
    `{"$token":"tok\\"en\\\\1","$group_key":"$company_id","$group_id":"c1","$company_id":"c1","$set":{"plan":"pro"}}`,
  );
  assert.equal(
    mixpanel.encode({ kind: "delete", ref }).json.toString(),
    `{"$token":"tok\\"en\\\\1","$group_key":"$company_id","$group_id":"c1","$company_id":"c1","$delete":""}`,
  );
  await mixpanel.close();
});
